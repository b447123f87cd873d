"""Training a :class:`~harness.exchange.projector.model.CacheProjector` with the receiver's next-token loss, both models
frozen, and keeping the result on disk keyed by everything that determines it.

Loss: for a training text, :func:`~harness.exchange.projector.model.continuation_nll` (nats/token) of the receiver's
continuation given the projected cache of the sharer's context. ``pairing="matched"`` pairs each text's context
with its own continuation; ``"mismatched"`` pairs text i's context with the continuation of text π(i), π a fixed
derangement (the mismatched-pairs baseline: a projector that learns whatever helps without the context's content).
Adam over :attr:`TrainingSettings.steps` steps of :attr:`TrainingSettings.batch` texts each (drawn without
replacement per epoch, seeded); the curve is the mean loss of each step's batch.

Storage: ``<cache root>/projectors/<key>/`` holds ``projector.safetensors`` and ``training.json`` (curve, gates,
wall time, the key's parts). The key is the sha256 of the sharer's and receiver's identities (weights sha256, dtype,
device), the text set's sha256, the settings, the code fingerprint of this module's closure and the software
versions (:func:`harness.runtime.measurement_store.measurement_key`).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from harness.exchange.projector.model import (
    CacheGeometry,
    CacheProjector,
    ReceiverFrame,
    SharerContext,
    continuation_nll,
    projected_snapshot,
    receiver_frame,
    receiver_own_snapshot,
    sharer_context,
)
from harness.exchange.projector.texts import ProjectorText, TextSet
from harness.foundation.seeds import derive_seed
from harness.models import LoadedModel
from harness.runtime.measurement_store import code_fingerprint, measurement_key
from harness.runtime.progress import emit
from harness.runtime.storage import cache_root

__all__ = [
    "PROGRESS_EVERY", "Pairing", "TrainedProjector", "TrainingExample", "TrainingSettings", "continuation_ids",
    "derangement", "load_projector", "obtain_projector", "prepare_examples", "projector_dir", "projector_key", "save_projector",
    "train_projector",
]

Pairing = Literal["matched", "mismatched"]
PROGRESS_EVERY = 20
"""A progress line (step, loss, ETA) every this many steps."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a projector is trained. Fixed before any real-model run; changing one trains (and keys) a new projector.

    ``steps`` Adam steps of ``batch`` texts at learning rate ``lr``. The defaults (150 × 2 forward-backward passes
    of a 12-token continuation, 1.5 epochs of the 200 training texts) fit the issue's budget of a few CPU minutes
    per direction: one pass took 0.32 s with smollm2-135m and 0.62 s with gemma3-270m as the receiver (one CPU
    thread); 5e-4 keeps an Adam step's change of a projected key (≈ lr × the sum of |standardized input|) well
    below the keys' own scale. ``seed`` fixes batch order and the mismatched derangement; ``pairing`` as in the
    module docstring.
    """

    steps: int = 150
    batch: int = 2
    lr: float = 5e-4
    seed: int = 0
    pairing: Pairing = "matched"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or not self.lr > 0:
            raise ValueError(f"training settings need steps ≥ 1, batch ≥ 1 and lr > 0, got {self}")
        if self.pairing not in ("matched", "mismatched"):
            raise ValueError(f"pairing must be matched or mismatched, got {self.pairing!r}")


@dataclass(frozen=True)
class TrainingExample:
    """One training pair: the sharer context (projector input) and the receiver continuation ids it is scored on."""

    text_id: str
    context: SharerContext
    continuation: tuple[int, ...]


@dataclass
class TrainedProjector:
    """A trained projector and its record: ``curve`` (mean batch loss per step, nats/token), ``seconds`` (training
    wall time), ``key`` (the storage key), ``from_cache`` (read back rather than trained now)."""

    projector: CacheProjector
    curve: list[float]
    seconds: float
    key: str
    settings: TrainingSettings
    from_cache: bool = False
    parts: dict[str, Any] = field(default_factory=dict)


def continuation_ids(receiver: LoadedModel, continuation: str) -> tuple[int, ...]:
    """The receiver's ids of a continuation text (no special tokens)."""
    return tuple(int(i) for i in receiver.tokenizer(continuation, add_special_tokens=False)["input_ids"])


def derangement(n: int, seed: int) -> tuple[int, ...]:
    """A permutation of range(n) without fixed points (n ≥ 2), fixed by ``seed``: a seeded shuffle, then a cyclic
    shift by one of the shuffled order."""
    if n < 2:
        raise ValueError(f"a derangement needs n ≥ 2, got {n}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    result = [0] * n
    for i, src in enumerate(order):
        result[src] = order[(i + 1) % n]
    return tuple(result)


def prepare_examples(sharer: LoadedModel, receiver: LoadedModel, texts: tuple[ProjectorText, ...],
                     pairing: Pairing, seed: int) -> list[TrainingExample]:
    """The training examples: sharer contexts aligned to the receiver, each with its own continuation (matched) or
    that of text π(i) (mismatched, π = :func:`derangement` of the texts)."""
    contexts = [sharer_context(sharer, receiver, t.context) for t in texts]
    partner = range(len(texts)) if pairing == "matched" else derangement(len(texts), derive_seed(seed, "mismatched"))
    return [TrainingExample(t.id, ctx, continuation_ids(receiver, texts[j].continuation))
            for t, ctx, j in zip(texts, contexts, partner)]


def _initialise(projector: CacheProjector, receiver: LoadedModel, texts: tuple[ProjectorText, ...],
                examples: list[TrainingExample], frame: ReceiverFrame) -> None:
    """Input standardization from the training contexts' sharer features; biases at the receiver's own mean
    pre-RoPE key and value over the training contexts' content tokens (weights stay 0)."""
    from harness.engine.kv_math import rotate_keys

    feats = torch.cat([e.context.features for e in examples], dim=1)              # [S, N, 2·width_s]
    gathered = feats[list(projector.layers)]
    projector.input_mean.copy_(gathered.mean(dim=1))
    projector.input_scale.copy_(gathered.std(dim=1).clamp_min(1e-6))
    keys, values = [], []
    with torch.no_grad():
        for example, text in zip(examples, texts):
            own = receiver_own_snapshot(receiver, example.context.receiver)
            n = len(example.context.receiver.ids)
            positions = torch.arange(n)
            per_layer_k, per_layer_v = [], []
            for layer, (k, v) in enumerate(zip(own.keys, own.values)):
                k0 = rotate_keys(k[0].float().cpu(), -positions, frame.rope_inv_freq[layer])
                per_layer_k.append(k0.transpose(0, 1).reshape(n, -1)[frame.n_special:])
                per_layer_v.append(v[0].float().cpu().transpose(0, 1).reshape(n, -1)[frame.n_special:])
            keys.append(torch.stack(per_layer_k))
            values.append(torch.stack(per_layer_v))
        projector.bias_k.copy_(torch.cat(keys, dim=1).mean(dim=1))
        projector.bias_v.copy_(torch.cat(values, dim=1).mean(dim=1))


def train_projector(sharer: LoadedModel, receiver: LoadedModel, text_set: TextSet, settings: TrainingSettings,
                    *, key: str = "") -> TrainedProjector:
    """Train a projector from ``sharer`` to ``receiver`` on ``text_set.train`` (both models frozen: only the
    projector's parameters receive gradients), emitting a progress line every :data:`PROGRESS_EVERY` steps."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    texts = text_set.train
    examples = prepare_examples(sharer, receiver, texts, settings.pairing, settings.seed)
    frame = receiver_frame(receiver)
    projector = CacheProjector(CacheGeometry.of(sharer), CacheGeometry.of(receiver))
    _initialise(projector, receiver, texts, examples, frame)
    optimizer = torch.optim.Adam(projector.parameters(), lr=settings.lr)
    order_rng = random.Random(derive_seed(settings.seed, "batches"))
    queue: list[int] = []
    curve: list[float] = []
    label = f"[kvclaims] projector {sharer.name} → {receiver.name} ({settings.pairing})"
    frozen = [p for p in receiver.model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        for step in range(settings.steps):
            if len(queue) < settings.batch:
                fresh = list(range(len(examples)))
                order_rng.shuffle(fresh)
                queue.extend(fresh)
            batch, queue = queue[:settings.batch], queue[settings.batch:]
            optimizer.zero_grad()
            total = 0.0
            for i in batch:
                example = examples[i]
                loss = continuation_nll(receiver, projected_snapshot(projector, frame, example.context.features),
                                        list(example.continuation)) / len(batch)
                loss.backward()
                total += loss.item()
            optimizer.step()
            curve.append(total)
            if (step + 1) % PROGRESS_EVERY == 0 or step + 1 == settings.steps:
                elapsed = time.perf_counter() - started
                recent = curve[-PROGRESS_EVERY:]
                emit(f"{label}: step {step + 1}/{settings.steps}, loss {sum(recent) / len(recent):.3f} nats/token "
                     f"(mean of the last {len(recent)}), {elapsed:.0f} s")
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return TrainedProjector(projector=projector, curve=curve, seconds=time.perf_counter() - started, key=key,
                            settings=settings)


def projector_key(sharer: LoadedModel, receiver: LoadedModel, text_set: TextSet,
                  settings: TrainingSettings) -> tuple[str, dict[str, Any]]:
    """The storage key of the projector these inputs determine, and the parts it hashes."""
    parts = {
        "what": "cache projector",
        "sharer": sharer.identity,
        "receiver": receiver.identity,
        "texts_sha256": text_set.sha256,
        "settings": asdict(settings),
        # The command line only calls train_projector; its text must not move the key.
        "code": code_fingerprint([train_projector], exclude=("harness.exchange.projector.cli",)),
    }
    return measurement_key(parts), parts


def projector_dir(key: str, root: Path | None = None) -> Path:
    """Where the projector with ``key`` lives: ``<cache root>/projectors/<key>/``."""
    return (root or cache_root()) / "projectors" / key


def any_projector_stored(root: Path | None = None) -> bool:
    """Whether any trained projector is stored under ``<cache root>/projectors/`` (a cheap check that needs no model:
    when it is False, no pair of models has one)."""
    store = (root or cache_root()) / "projectors"
    return store.is_dir() and any((entry / "projector.safetensors").is_file() for entry in store.iterdir())


def save_projector(trained: TrainedProjector, root: Path | None = None) -> Path:
    """Write ``projector.safetensors`` and ``training.json`` into :func:`projector_dir` (the directory appears
    whole: it is written under a temporary name and renamed)."""
    target = projector_dir(trained.key, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{trained.key[:12]}-", dir=target.parent))
    state = {k: v.detach().contiguous() for k, v in trained.projector.state_dict().items()}
    save_file(state, str(staging / "projector.safetensors"))
    record = {"key": trained.key, "curve": trained.curve, "seconds": trained.seconds,
              "settings": asdict(trained.settings), "gates": trained.projector.gates, "parts": trained.parts,
              "sharer_geometry": asdict(trained.projector.sharer),
              "receiver_geometry": asdict(trained.projector.receiver)}
    (staging / "training.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / "training.json").is_file():
            raise
    return target


def load_projector(key: str, root: Path | None = None) -> TrainedProjector | None:
    """The stored projector with ``key``, or None when there is none."""
    where = projector_dir(key, root)
    if not (where / "training.json").is_file() or not (where / "projector.safetensors").is_file():
        return None
    record = json.loads((where / "training.json").read_text(encoding="utf-8"))
    projector = CacheProjector(CacheGeometry(**record["sharer_geometry"]), CacheGeometry(**record["receiver_geometry"]))
    projector.load_state_dict(load_file(str(where / "projector.safetensors")))
    return TrainedProjector(projector=projector, curve=list(record["curve"]), seconds=float(record["seconds"]),
                            key=key, settings=TrainingSettings(**record["settings"]), from_cache=True,
                            parts=record.get("parts", {}))


def obtain_projector(sharer: LoadedModel, receiver: LoadedModel, text_set: TextSet, settings: TrainingSettings,
                     *, train: bool, root: Path | None = None) -> TrainedProjector | None:
    """The stored projector for these inputs; when none is stored, train and store it if ``train``, else None."""
    key, parts = projector_key(sharer, receiver, text_set, settings)
    found = load_projector(key, root)
    if found is not None or not train:
        return found
    trained = train_projector(sharer, receiver, text_set, settings, key=key)
    trained.parts = parts
    save_projector(trained, root)
    return trained
