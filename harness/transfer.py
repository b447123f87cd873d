"""The behavioural experiment layer: named conditions, cached batched runs, transfer T (DESIGN §4.3–4.8).

Vocabulary
----------
- A :class:`TransferPair` is a recursive prompt A and a baseline prompt B with exactly equal token counts
  under the model's tokenizer (BOS included, so positions align one to one), optionally with a second
  baseline B' of the same length (the cross-baseline donor).
- A :class:`Condition` is model-independent data: which prompt of the pair is the recipient, which the
  donor, and what is patched (KV over a :class:`LayerSet` and token :class:`~harness.patching.Span`, with
  α, components and a control; or a ``v_proj`` / residual activation patch). :meth:`Condition.patch_for`
  resolves it against a model into the exact :class:`~harness.patching.KVPatchSpec` /
  :class:`~harness.patching.ActivationPatchSpec` that runs. The catalogue below names the suite's
  conditions; :func:`kv_condition` and :func:`activation_condition` build new ones (layer ranges, token
  spans, the peak zone, explicit positions per pair).
- :func:`run_condition` generates one continuation per (pair, sample) with :func:`harness.generation.generate`
  in batches, scores it with :func:`harness.behaviour.score_continuations` (generated tokens only) and
  returns typed :class:`PairOutcome` s. Each pair's outcome is cached on disk through
  :class:`~harness.measurement_cache.MeasurementCache`, keyed by the model identity, the pair id (it seeds
  the shuffled and random controls), the recipient and donor texts, the resolved patch spec, the decoding
  regime, the capture spec and a fingerprint of the engine and scorer source; so claims that share a
  condition compute it once per model and re-runs are free. Greedy continuations do not depend on batch
  composition except at numerical near-ties (top-2 logit gap < 1e-4, see ``tests/test_generation.py``),
  so an outcome cached from one batch stands for any other.
- :func:`transfer` computes T = (mean score(B⊕A) − mean score(B)) / (mean score(A) − mean score(B)), paired
  by pair, with a bootstrap CI over pairs (:func:`harness.stats.transfer_ci`); T is undefined when the CI
  of the natural gap includes 0, and the result says why.

Pair order (fixed before any data were generated): the bank's recorded recursive/baseline pairs that are
exactly equal in length under the model's tokenizer, then live exact-length matches of the remaining
prompts (:func:`harness.prompts.equal_length_pairs` with ``rematch=True``); within that list the pairs are
interleaved by the recursive prompt's level (L1, L2, …, L5, L1, …, each level in pair-id order), so every
prefix of the list covers all levels evenly. A claim uses the first ``planned_n`` pairs (capped by ``--n``)
that have every prompt its conditions need.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from itertools import zip_longest
from types import ModuleType
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from harness import behaviour, generation, hooks, interventions, kvcache, patching, records, tokens
from harness.behaviour import BehaviourScore, degeneration, embedding, lexicon, score_continuations
from harness.claims_registry import BEHAVIOUR_SCORE, Decoding
from harness.generation import CaptureSpec, DecodingConfig, GenerationRequest, generate
from harness.measurement_cache import MeasurementCache, code_fingerprint
from harness.models import LoadedModel
from harness.patching import (
    ActivationPatchSpec,
    ActivationSite,
    Components,
    Control,
    ControlKind,
    DecodeSource,
    KVPatchSpec,
    PatchMode,
    Span,
)
from harness.prompts import Prompt, PromptBank, equal_length_pairs
from harness.records import GenerationRecord, to_builtin
from harness.seeds import derive_seed
from harness.stats import ConfidenceInterval, bootstrap_ci, transfer_ci
from harness.tokens import encode

__all__ = [
    "ALPHAS",
    "CATALOGUE",
    "CROSS_BASELINE",
    "KV_MAIN",
    "KV_SINGLE_LATE",
    "NATURAL_BASELINE",
    "NATURAL_RECURSIVE",
    "RANDOM_NORM_MATCHED",
    "REVERSE",
    "SHUFFLED",
    "V_PATCH_LATE",
    "Condition",
    "ConditionRun",
    "Continuation",
    "Intervention",
    "LayerSet",
    "PairOutcome",
    "Role",
    "TransferPair",
    "TransferResult",
    "activation_condition",
    "decoding_config",
    "kv_alpha",
    "kv_condition",
    "make_pair",
    "prompt_clusters",
    "run_condition",
    "select_pairs",
    "transfer",
    "transfer_pairs",
    "transfer_step_cis",
]


# ------------------------------------------------------------------------------------------------ pairs


class Role(str, Enum):
    """Which prompt of a :class:`TransferPair` plays a part: A (recursive), B (baseline) or B' (other baseline)."""

    RECURSIVE = "recursive"
    BASELINE = "baseline"
    OTHER_BASELINE = "other_baseline"


@dataclass(frozen=True)
class TransferPair:
    """A recursive prompt and a baseline prompt of exactly equal token length (``ids`` = model token ids).

    ``other_baseline`` is a different baseline prompt of the same token length (the cross-baseline donor),
    or None when the bank has none.
    """

    id: str
    recursive: Prompt
    baseline: Prompt
    recursive_ids: tuple[int, ...]
    baseline_ids: tuple[int, ...]
    other_baseline: Prompt | None = None
    other_baseline_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.recursive_ids) != len(self.baseline_ids):
            raise ValueError(
                f"pair {self.id!r}: {self.recursive.id} has {len(self.recursive_ids)} tokens and "
                f"{self.baseline.id} {len(self.baseline_ids)}; a transfer pair needs exactly equal lengths"
            )
        if (self.other_baseline is None) != (self.other_baseline_ids is None):
            raise ValueError(f"pair {self.id!r}: other_baseline and other_baseline_ids go together")
        if self.other_baseline is not None:
            if self.other_baseline.id == self.baseline.id:
                raise ValueError(f"pair {self.id!r}: the other baseline must differ from the pair's baseline")
            if len(self.other_baseline_ids or ()) != len(self.baseline_ids):
                raise ValueError(f"pair {self.id!r}: the other baseline {self.other_baseline.id} differs in length")

    @property
    def n_tokens(self) -> int:
        """Token count of each prompt of the pair (BOS included)."""
        return len(self.baseline_ids)

    def has(self, role: Role) -> bool:
        """Whether the pair has a prompt for ``role``."""
        return role is not Role.OTHER_BASELINE or self.other_baseline is not None

    def prompt(self, role: Role) -> tuple[Prompt, tuple[int, ...]]:
        """The prompt playing ``role`` and its token ids."""
        if role is Role.RECURSIVE:
            return self.recursive, self.recursive_ids
        if role is Role.BASELINE:
            return self.baseline, self.baseline_ids
        if self.other_baseline is None or self.other_baseline_ids is None:
            raise ValueError(f"pair {self.id!r} has no other baseline of its length ({self.n_tokens} tokens)")
        return self.other_baseline, self.other_baseline_ids


def make_pair(lm: LoadedModel, recursive: Prompt, baseline: Prompt, *, pair_id: str | None = None,
              other_baseline: Prompt | None = None) -> TransferPair:
    """A :class:`TransferPair` from two prompts (e.g. a donor of another level onto a baseline recipient).

    Raises ValueError when the token lengths under ``lm``'s tokenizer differ.
    """
    other_ids = tuple(encode(lm.tokenizer, other_baseline.text)) if other_baseline is not None else None
    return TransferPair(
        id=pair_id or f"{recursive.id}~{baseline.id}",
        recursive=recursive,
        baseline=baseline,
        recursive_ids=tuple(encode(lm.tokenizer, recursive.text)),
        baseline_ids=tuple(encode(lm.tokenizer, baseline.text)),
        other_baseline=other_baseline,
        other_baseline_ids=other_ids,
    )


def _level_interleaved(pairs: list[TransferPair]) -> list[TransferPair]:
    by_level: dict[int, list[TransferPair]] = defaultdict(list)
    for p in pairs:
        by_level[p.recursive.level or 0].append(p)
    rounds = zip_longest(*(by_level[level] for level in sorted(by_level)))
    return [p for group in rounds for p in group if p is not None]


def transfer_pairs(lm: LoadedModel, bank: PromptBank) -> list[TransferPair]:
    """All exact-length recursive/baseline pairs of ``bank`` under ``lm``'s tokenizer, in the pre-registered
    order of the module docstring, each with its cross-baseline donor where one exists.

    The cross-baseline donor of baseline B is the next baseline prompt in id order (cyclically) with the
    same token count as B, B excluded.
    """
    baselines = bank.group("baseline")
    baseline_ids = {p.id: tuple(encode(lm.tokenizer, p.text)) for p in baselines}
    by_length: dict[int, list[Prompt]] = defaultdict(list)
    for p in baselines:
        by_length[len(baseline_ids[p.id])].append(p)
    out = []
    for rec_base in equal_length_pairs(bank, lm.tokenizer, rematch=True):
        recursive, baseline = bank.get(rec_base.first), bank.get(rec_base.second)
        same = by_length[len(baseline_ids[baseline.id])]
        other = None
        if len(same) > 1:
            other = same[(same.index(baseline) + 1) % len(same)]
        out.append(make_pair(lm, recursive, baseline, pair_id=rec_base.id, other_baseline=other))
    return _level_interleaved(out)


def select_pairs(
    lm: LoadedModel, bank: PromptBank, n: int, *, roles: Sequence[Role] = (Role.RECURSIVE, Role.BASELINE)
) -> list[TransferPair]:
    """The first ``n`` pairs of :func:`transfer_pairs` that have a prompt for every role in ``roles``."""
    if n < 1:
        raise ValueError(f"select_pairs: n must be >= 1, got {n}")
    eligible = [p for p in transfer_pairs(lm, bank) if all(p.has(r) for r in roles)]
    return eligible[:n]


# ------------------------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class LayerSet:
    """A model-independent choice of layers, resolved per model by :meth:`resolve`.

    Kinds: ``patch_set`` (the model's registered KV patch layers, the second half by default), ``late``
    (the registered late layer), ``around_late`` (late ± ``radius``, clipped to the stack: the peak zone),
    ``quarter`` (layers ``[q·L/4, (q+1)·L/4)`` for ``quarter`` q = 0..3, integer division), ``explicit``.
    """

    kind: Literal["patch_set", "late", "around_late", "quarter", "explicit"]
    radius: int = 0
    quarter: int = 0
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("patch_set", "late", "around_late", "quarter", "explicit"):
            raise ValueError(f"unknown layer-set kind {self.kind!r}")
        if self.kind == "around_late" and self.radius < 1:
            raise ValueError(f"around_late needs radius >= 1, got {self.radius}")
        if self.kind == "quarter" and self.quarter not in (0, 1, 2, 3):
            raise ValueError(f"quarter must be 0..3, got {self.quarter}")
        if self.kind == "explicit" and not self.layers:
            raise ValueError("an explicit layer set needs at least one layer")

    @classmethod
    def patch_set(cls) -> LayerSet:
        return cls("patch_set")

    @classmethod
    def late(cls) -> LayerSet:
        return cls("late")

    @classmethod
    def around_late(cls, radius: int = 2) -> LayerSet:
        return cls("around_late", radius=radius)

    @classmethod
    def quarter_of(cls, quarter: int) -> LayerSet:
        return cls("quarter", quarter=quarter)

    @classmethod
    def explicit(cls, layers: Sequence[int]) -> LayerSet:
        return cls("explicit", layers=tuple(sorted(set(layers))))

    def resolve(self, lm: LoadedModel) -> tuple[int, ...]:
        """The concrete layer indices for ``lm``."""
        n = lm.geometry.n_layers
        if self.kind == "patch_set":
            return tuple(lm.layers.patch_layers)
        if self.kind == "late":
            return (lm.layers.late,)
        if self.kind == "around_late":
            return tuple(range(max(0, lm.layers.late - self.radius), min(n, lm.layers.late + self.radius + 1)))
        if self.kind == "quarter":
            lo, hi = self.quarter * n // 4, (self.quarter + 1) * n // 4
            if hi <= lo:
                raise ValueError(f"{lm.name} has {n} layers: quarter {self.quarter} is empty")
            return tuple(range(lo, hi))
        bad = [layer for layer in self.layers if layer >= n]
        if bad:
            raise ValueError(f"{lm.name} has {n} layers; layers {bad} do not exist")
        return self.layers


class Intervention(str, Enum):
    """What a condition changes: nothing (natural run), the KV cache, ``v_proj`` output or the residual stream."""

    NONE = "none"
    KV = "kv"
    V_PROJ = "v_proj"
    RESIDUAL = "residual"


@dataclass(frozen=True)
class Condition:
    """A named experimental condition as data (see the module docstring). Build with the constructors.

    ``pair_positions`` (KV only) lists explicit token positions per pair id, overriding ``span`` for those
    pairs (e.g. the positions of self-referential donor tokens); a pair not listed uses ``span``.
    ``control`` is a :class:`~harness.patching.ControlKind`; its roles follow
    :func:`harness.patching.assign_roles`. The name labels reports; the cache key ignores it.
    """

    name: str
    recipient: Role
    donor: Role | None = None
    intervention: Intervention = Intervention.NONE
    layers: LayerSet | None = None
    span: Span = Span()
    pair_positions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    alpha: float = 1.0
    components: Components = Components.KV
    control: ControlKind | None = None
    mode: PatchMode = PatchMode.PERSISTENT
    decode_source: DecodeSource = DecodeSource.DONOR_LAST

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a condition needs a name")
        natural = self.intervention is Intervention.NONE
        if natural != (self.donor is None):
            raise ValueError(f"condition {self.name!r}: a donor is needed exactly when something is patched")
        if not natural and self.layers is None:
            raise ValueError(f"condition {self.name!r}: a patch needs a LayerSet")
        if self.intervention not in (Intervention.KV,) and (self.control is not None or self.pair_positions):
            raise ValueError(f"condition {self.name!r}: controls and per-pair positions apply to KV patches only")
        if self.control is not None and self.donor is not None:
            expected = _roles_for(self.control)
            if (self.recipient, self.donor) != expected:
                raise ValueError(
                    f"condition {self.name!r}: the {self.control.value} control needs recipient/donor "
                    f"{expected[0].value}/{expected[1].value}"
                )
        if self.control is None and self.donor is not None and (self.recipient, self.donor) != (Role.BASELINE, Role.RECURSIVE):
            raise ValueError(f"condition {self.name!r}: without a control the recipient is baseline and the donor recursive")

    @property
    def natural(self) -> bool:
        """True for an unpatched run."""
        return self.intervention is Intervention.NONE

    def patch_for(self, lm: LoadedModel, pair_id: str, run_seed: int) -> KVPatchSpec | ActivationPatchSpec | None:
        """The exact patch spec this condition runs for ``pair_id`` on ``lm`` (None for a natural run).

        The shuffled and random controls get ``Control.seed = derive_seed(run_seed, "control", kind)``;
        kvcache combines it with the pair id, so each pair has its own, reproducible draw.
        """
        if self.natural:
            return None
        layers = self.layers.resolve(lm)  # type: ignore[union-attr]
        if self.intervention is Intervention.KV:
            control = None
            if self.control is not None:
                transforms = self.control in (ControlKind.SHUFFLED, ControlKind.RANDOM_NORM_MATCHED)
                seed = derive_seed(run_seed, "control", self.control.value) if transforms else 0
                control = Control(self.control, seed=seed)
            positions = dict(self.pair_positions).get(pair_id)
            span = Span.at(positions) if positions is not None else self.span
            return KVPatchSpec(layers=layers, span=span, alpha=self.alpha, components=self.components, control=control)
        if len(layers) != 1:
            raise ValueError(f"condition {self.name!r}: an activation patch writes one layer, got {layers}")
        site = ActivationSite.V_PROJ if self.intervention is Intervention.V_PROJ else ActivationSite.RESIDUAL
        return ActivationPatchSpec(site=site, layer=layers[0], span=self.span, mode=self.mode,
                                   decode_source=self.decode_source)

    def describe(self) -> dict[str, Any]:
        """The condition as builtins (for reports)."""
        return to_builtin(self)


def _roles_for(control: ControlKind) -> tuple[Role, Role]:
    recipient, donor = patching.assign_roles(
        Control(control), recursive=Role.RECURSIVE, baseline=Role.BASELINE, other_baseline=Role.OTHER_BASELINE
    )
    return recipient, donor


def kv_condition(
    name: str,
    *,
    layers: LayerSet = LayerSet.patch_set(),
    span: Span = Span(),
    alpha: float = 1.0,
    components: Components = Components.KV,
    control: ControlKind | None = None,
    pair_positions: Mapping[str, Sequence[int]] | None = None,
) -> Condition:
    """A KV-patch condition (default: K+V over the patch set, all shared positions, α = 1).

    Roles follow the control: main and tensor controls patch recursive → baseline, ``REVERSE`` baseline →
    recursive, ``CROSS_BASELINE`` other baseline → baseline.
    """
    recipient, donor = _roles_for(control) if control is not None else (Role.BASELINE, Role.RECURSIVE)
    positions = tuple(sorted((k, tuple(v)) for k, v in (pair_positions or {}).items()))
    return Condition(name, recipient, donor, Intervention.KV, layers, span, positions, alpha, components, control)


def activation_condition(
    name: str,
    *,
    site: ActivationSite = ActivationSite.V_PROJ,
    layer: LayerSet = LayerSet.late(),
    span: Span = Span(),
    mode: PatchMode = PatchMode.PERSISTENT,
    decode_source: DecodeSource = DecodeSource.DONOR_LAST,
) -> Condition:
    """An activation-patch condition at one layer (default: V at the late layer, persistent during decoding)."""
    intervention = Intervention.V_PROJ if site is ActivationSite.V_PROJ else Intervention.RESIDUAL
    return Condition(name, Role.BASELINE, Role.RECURSIVE, intervention, layer, span, mode=mode,
                     decode_source=decode_source)


NATURAL_BASELINE = Condition("natural_baseline", Role.BASELINE)
"""B: the baseline prompt, unpatched."""
NATURAL_RECURSIVE = Condition("natural_recursive", Role.RECURSIVE)
"""A: the recursive prompt, unpatched."""
KV_MAIN = kv_condition("kv_main")
"""B⊕A: K and V of the patch set (second half of the layers), all shared positions, α = 1."""
KV_SINGLE_LATE = kv_condition("kv_single_late", layers=LayerSet.late())
"""B⊕A at the late layer only."""
V_PATCH_LATE = activation_condition("v_patch_late")
"""B with A's ``v_proj`` output at the late layer: prompt positions aligned, and on every decode step A's last-token V."""
REVERSE = kv_condition("reverse", control=ControlKind.REVERSE)
"""A⊕B: the baseline's K/V over the patch set into the recursive recipient."""
SHUFFLED = kv_condition("control_shuffled", control=ControlKind.SHUFFLED)
"""B⊕A with A's positions permuted by a seeded derangement (keys re-rotated to their new positions)."""
RANDOM_NORM_MATCHED = kv_condition("control_random", control=ControlKind.RANDOM_NORM_MATCHED)
"""B⊕noise: Gaussian K/V with A's norm per layer, KV head and position."""
CROSS_BASELINE = kv_condition("control_cross_baseline", control=ControlKind.CROSS_BASELINE)
"""B⊕B': another baseline prompt of the same length as donor."""

ALPHAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The registered mixing weights of the dose-response claim."""


def kv_alpha(alpha: float) -> Condition:
    """The second-half KV patch at mixing weight α; α = 0 is :data:`NATURAL_BASELINE` (mixing with weight 0
    leaves the recipient's cache bit for bit unchanged, tested) and α = 1 is :data:`KV_MAIN`."""
    if alpha == 0.0:
        return NATURAL_BASELINE
    if alpha == 1.0:
        return KV_MAIN
    return kv_condition(f"kv_alpha_{alpha:g}", alpha=alpha)


CATALOGUE: dict[str, Condition] = {
    c.name: c
    for c in (
        NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN, *(kv_alpha(a) for a in ALPHAS[1:-1]), KV_SINGLE_LATE,
        V_PATCH_LATE, REVERSE, SHUFFLED, RANDOM_NORM_MATCHED, CROSS_BASELINE,
    )
}
"""The suite's named conditions (model-independent)."""


# ------------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Continuation:
    """One generated continuation and its behaviour scores (:class:`~harness.behaviour.BehaviourScore`).

    ``v`` maps a captured layer to float32 ``[steps, n_kv_heads·head_dim]`` V of each fed token (step 0 is
    the recipient's last prompt token); ``entropy`` maps a layer to ``[steps, n_heads]`` attention entropy
    in nats. Both are empty unless a capture was requested. Equality (``==``) ignores these two arrays;
    compare them with ``np.array_equal``.
    """

    sample_index: int
    text: str
    generated_ids: tuple[int, ...]
    stopped_at_eos: bool
    min_top2_gap: float
    score: BehaviourScore
    v: dict[int, np.ndarray] = field(default_factory=dict, compare=False)
    entropy: dict[int, np.ndarray] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PairOutcome:
    """A condition's result on one pair: its continuations (one per sample) and what the patch did.

    ``not_applicable``: KV patches only, ``{layer: positions}`` a sliding-window layer no longer held.
    ``intervention_counts``: activation patches only, activation elements changed per phase.
    """

    pair_id: str
    condition: str
    recipient_id: str
    donor_id: str | None
    first_position: int
    samples: tuple[Continuation, ...]
    not_applicable: dict[int, tuple[int, ...]] = field(default_factory=dict)
    intervention_counts: dict[str, int] | None = None

    def score(self, measure: str = BEHAVIOUR_SCORE) -> float:
        """Mean over samples of one :class:`~harness.behaviour.BehaviourScore` field (default: the registered score)."""
        return float(np.mean([getattr(s.score, measure) for s in self.samples]))

    @property
    def degenerate_share(self) -> float:
        """Share of this pair's continuations the degeneration gate marked degenerate."""
        return float(np.mean([s.score.degenerate for s in self.samples]))


@dataclass(frozen=True)
class ConditionRun:
    """All pairs' outcomes for one condition on one model, in pair order."""

    condition: Condition
    model: str
    outcomes: tuple[PairOutcome, ...]

    @property
    def pair_ids(self) -> tuple[str, ...]:
        return tuple(o.pair_id for o in self.outcomes)

    def scores(self, measure: str = BEHAVIOUR_SCORE) -> np.ndarray:
        """Per-pair behaviour score (mean over samples), float64 ``[pairs]``."""
        return np.asarray([o.score(measure) for o in self.outcomes], dtype=np.float64)

    @property
    def degenerate_share(self) -> float:
        """Share of all continuations of this condition marked degenerate (NaN with no outcomes)."""
        flags = [s.score.degenerate for o in self.outcomes for s in o.samples]
        return float(np.mean(flags)) if flags else math.nan

    @property
    def empty_share(self) -> float:
        """Share of all continuations with no words (e.g. the model emitted EOS at once; scored 0, not degenerate)."""
        flags = [s.score.n_words == 0 for o in self.outcomes for s in o.samples]
        return float(np.mean(flags)) if flags else math.nan

    @property
    def n_continuations(self) -> int:
        return sum(len(o.samples) for o in self.outcomes)

    def examples(self, k: int = 3) -> list[str]:
        """The first ``k`` continuations (sample 0 of the first pairs), for the report's Examples section."""
        return [o.samples[0].text for o in self.outcomes[:k]]

    def summary(self, measure: str = BEHAVIOUR_SCORE) -> dict[str, Any]:
        """Builtin summary for claim details: mean scores (gated, raw embedding, raw lexicon), degenerate and empty
        shares, mean distinct-2, counts, and how many pairs had sliding-window positions it could not patch."""
        return {
            "mean_score": float(np.mean(self.scores(measure))) if self.outcomes else None,
            "mean_embedding_raw": float(np.mean(self.scores("embedding_raw"))) if self.outcomes else None,
            "mean_lexicon_raw": float(np.mean(self.scores("lexicon_raw"))) if self.outcomes else None,
            "degenerate_share": self.degenerate_share,
            "empty_share": self.empty_share,
            "mean_distinct_2": float(np.mean(self.scores("distinct_2"))) if self.outcomes else None,
            "n_pairs": len(self.outcomes),
            "n_continuations": self.n_continuations,
            "not_applicable_pairs": sum(1 for o in self.outcomes if o.not_applicable),
        }


# ----------------------------------------------------------------------------------------- running


def decoding_config(decoding: Decoding) -> DecodingConfig:
    """The engine's :class:`~harness.generation.DecodingConfig` for a registered decoding regime."""
    penalty = decoding.repetition_penalty if decoding.repetition_penalty is not None else 1.0
    if decoding.mode == "greedy":
        return DecodingConfig(generation.DecodingMode.GREEDY, decoding.max_new_tokens, repetition_penalty=penalty)
    if decoding.temperature is None:
        raise ValueError("a sampling regime needs a temperature")
    return DecodingConfig(generation.DecodingMode.SAMPLING, decoding.max_new_tokens,
                          temperature=decoding.temperature, repetition_penalty=penalty)


ENGINE_MODULES: tuple[ModuleType, ...] = (
    generation, kvcache, patching, interventions, hooks, records, tokens,
    behaviour, degeneration, embedding, lexicon, behaviour.references, behaviour.text,
)
"""Modules whose source determines an outcome; their fingerprint is part of every cache key."""


def engine_fingerprint() -> str:
    """sha256 over the source of :data:`ENGINE_MODULES` and of this module's functions that turn a condition
    into requests, decode and store outcomes (editing any of them invalidates cached outcomes)."""
    local = (decoding_config, Condition.patch_for, _generate_missing, _stored, _outcome)
    text = code_fingerprint(ENGINE_MODULES) + "".join(inspect.getsource(f) for f in local)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode_array(x: torch.Tensor | np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    return {"shape": list(arr.shape), "f32": base64.b64encode(arr.tobytes()).decode("ascii")}


def _decode_array(obj: Mapping[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(obj["f32"]), dtype=np.float32).reshape(obj["shape"]).copy()


def _pair_parts(lm: LoadedModel, pair: TransferPair, condition: Condition, patch: Any, decoding: Decoding,
                run_seed: int, capture: CaptureSpec, fingerprint: str) -> dict[str, Any]:
    _, recipient_ids = pair.prompt(condition.recipient)
    donor = pair.prompt(condition.donor)[1] if condition.donor is not None else None
    return {
        "model": lm.identity,
        "pair_id": pair.id,
        "recipient_ids": list(recipient_ids),
        "donor_ids": list(donor) if donor is not None else None,
        "patch": to_builtin(patch),
        "decoding": to_builtin(decoding),
        "run_seed": run_seed if decoding.mode == "sample" else None,
        "capture": to_builtin(capture),
        "code": fingerprint,
    }


def _stored(records_: Sequence[GenerationRecord], scores: Sequence[BehaviourScore], recipient_id: str,
            donor_id: str | None) -> dict[str, Any]:
    first = records_[0]
    return {
        "recipient_id": recipient_id,
        "donor_id": donor_id,
        "first_position": first.first_position,
        "not_applicable": {str(k): list(v) for k, v in first.not_applicable.items()},
        "intervention_counts": first.intervention_counts,
        "samples": [
            {
                "sample_index": r.sample_index,
                "text": r.text,
                "generated_ids": list(r.generated_ids),
                "stopped_at_eos": r.stopped_at_eos,
                "min_top2_gap": r.min_gap() if r.top2_gaps else None,
                "score": asdict(s),
                "v": {str(k): _encode_array(v) for k, v in r.v_captures.items()},
                "entropy": {str(k): _encode_array(v) for k, v in r.attention_entropy.items()},
            }
            for r, s in zip(records_, scores)
        ],
    }


def _outcome(pair_id: str, condition: Condition, stored: Mapping[str, Any]) -> PairOutcome:
    samples = tuple(
        Continuation(
            sample_index=s["sample_index"],
            text=s["text"],
            generated_ids=tuple(s["generated_ids"]),
            stopped_at_eos=s["stopped_at_eos"],
            min_top2_gap=math.inf if s["min_top2_gap"] is None else float(s["min_top2_gap"]),
            score=BehaviourScore(**s["score"]),
            v={int(k): _decode_array(v) for k, v in s["v"].items()},
            entropy={int(k): _decode_array(v) for k, v in s["entropy"].items()},
        )
        for s in stored["samples"]
    )
    return PairOutcome(
        pair_id=pair_id,
        condition=condition.name,
        recipient_id=stored["recipient_id"],
        donor_id=stored["donor_id"],
        first_position=stored["first_position"],
        samples=samples,
        not_applicable={int(k): tuple(v) for k, v in stored["not_applicable"].items()},
        intervention_counts=stored["intervention_counts"],
    )


class _Missing(Exception):
    """Raised inside a cache lookup to learn that an entry is absent (without computing it there)."""


def _lookup(cache: MeasurementCache, parts: dict[str, Any]) -> dict[str, Any] | None:
    def absent() -> dict[str, Any]:
        raise _Missing

    try:
        return cache.get_or_compute("transfer_outcome", parts, absent)
    except _Missing:
        return None


def _generate_missing(
    lm: LoadedModel,
    jobs: Sequence[tuple[TransferPair, Any]],
    condition: Condition,
    decoding: Decoding,
    run_seed: int,
    capture: CaptureSpec,
    batch_size: int,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Generate and score every (pair, sample) of ``jobs``; returns the storable outcome per pair id."""
    config = decoding_config(decoding)
    by_patch: dict[str, list[tuple[TransferPair, Any]]] = defaultdict(list)
    for pair, patch in jobs:
        by_patch[repr(to_builtin(patch))].append((pair, patch))
    batches: list[tuple[Any, list[GenerationRequest]]] = []
    for group in by_patch.values():
        patch = group[0][1]
        requests = [
            GenerationRequest(
                pair.id,
                pair.prompt(condition.recipient)[1],
                pair.prompt(condition.donor)[1] if condition.donor is not None else None,
                sample,
            )
            for pair, _ in group
            for sample in range(decoding.samples_per_pair)
        ]
        batches.extend((patch, requests[i : i + batch_size]) for i in range(0, len(requests), batch_size))
    generated: list[GenerationRecord] = []
    bar = tqdm(batches, desc=f"{lm.name} {condition.name}", unit="batch", disable=not progress, leave=False)
    for patch, requests in bar:
        generated.extend(generate(lm, requests, decoding=config, patch=patch, capture=capture,
                                  condition=condition.name, run_seed=run_seed, batch_size=len(requests)))
    scores = score_continuations([r.text for r in generated])
    per_pair: dict[str, list[tuple[GenerationRecord, BehaviourScore]]] = defaultdict(list)
    for r, s in zip(generated, scores):
        per_pair[r.pair_id].append((r, s))
    out = {}
    for pair, _ in jobs:
        rows = sorted(per_pair[pair.id], key=lambda rs: rs[0].sample_index)
        recipient = pair.prompt(condition.recipient)[0].id
        donor = pair.prompt(condition.donor)[0].id if condition.donor is not None else None
        out[pair.id] = _stored([r for r, _ in rows], [s for _, s in rows], recipient, donor)
    return out


def run_condition(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    condition: Condition,
    *,
    decoding: Decoding,
    run_seed: int,
    cache: MeasurementCache | None = None,
    capture: CaptureSpec | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> ConditionRun:
    """Run ``condition`` on every pair (``decoding.samples_per_pair`` continuations each) and score them.

    Pairs already in ``cache`` are read back; the rest are generated in batches of ``batch_size`` requests
    (a tqdm bar per condition) and written. Raises ValueError for duplicate pair ids or a pair lacking a
    prompt the condition needs (e.g. no other baseline of its length).
    """
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"run_condition: duplicate pair ids in {ids}")
    for pair in pairs:
        for role in (condition.recipient, condition.donor):
            if role is not None and not pair.has(role):
                raise ValueError(f"condition {condition.name!r} needs the {role.value} prompt; pair {pair.id!r} has none")
    cache = cache or MeasurementCache(mode="off")
    capture = capture or CaptureSpec()
    fingerprint = engine_fingerprint()
    patches = {p.id: condition.patch_for(lm, p.id, run_seed) for p in pairs}
    parts = {p.id: _pair_parts(lm, p, condition, patches[p.id], decoding, run_seed, capture, fingerprint) for p in pairs}
    found = {p.id: _lookup(cache, parts[p.id]) for p in pairs}
    missing = [(p, patches[p.id]) for p in pairs if found[p.id] is None]
    if missing:
        fresh = _generate_missing(lm, missing, condition, decoding, run_seed, capture, batch_size, progress)
        for pair, _ in missing:
            found[pair.id] = cache.get_or_compute("transfer_outcome", parts[pair.id], lambda v=fresh[pair.id]: v)
    return ConditionRun(condition, lm.name, tuple(_outcome(p.id, condition, found[p.id]) for p in pairs))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ transfer


@dataclass(frozen=True)
class TransferResult:
    """T with its bootstrap CI over pairs (see :func:`transfer`); ``undefined_reason`` is None when T is defined.

    ``gap`` is the CI of the natural donor − recipient gap (the denominator), in score units; the means are
    the per-condition mean scores. T is in units of that gap: 0 = recipient's behaviour, 1 = donor's.
    """

    estimate: float
    ci: ConfidenceInterval
    gap: ConfidenceInterval
    undefined_reason: str | None
    n: int
    patched_mean: float
    recipient_mean: float
    donor_mean: float

    def describe(self) -> dict[str, Any]:
        """Builtin summary for claim details."""
        return {
            "T": self.estimate, "ci_low": self.ci.low, "ci_high": self.ci.high, "ci_level": self.ci.level,
            "gap": self.gap.estimate, "gap_ci": [self.gap.low, self.gap.high], "undefined_reason": self.undefined_reason,
            "n": self.n, "mean_patched": self.patched_mean, "mean_recipient": self.recipient_mean,
            "mean_donor": self.donor_mean,
        }


def _aligned(*runs: ConditionRun) -> None:
    first = runs[0].pair_ids
    for run in runs[1:]:
        if run.pair_ids != first:
            raise ValueError(
                f"conditions {runs[0].condition.name!r} and {run.condition.name!r} cover different pairs; "
                "transfer is paired by pair and needs the same pairs in the same order"
            )
    if len(first) < 2:
        raise ValueError(f"transfer needs at least 2 pairs, got {len(first)}")


def prompt_clusters(*runs: ConditionRun) -> list[int] | None:
    """Cluster labels over pairs for the bootstrap when a prompt recurs across pairs, else None.

    Two pairs fall in one cluster when any run gives them a prompt in common (as recipient or donor), e.g.
    the cross-baseline donor of one pair is another pair's baseline; clusters are the connected components,
    so every resample keeps such pairs together (the registry's "clustered by prompt where a prompt recurs").
    """
    _aligned(*runs)
    n = len(runs[0].outcomes)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for run in runs:
        for i, o in enumerate(run.outcomes):
            for prompt_id in (o.recipient_id, o.donor_id):
                if prompt_id is None:
                    continue
                j = first_seen.setdefault(prompt_id, i)
                parent[root(i)] = root(j)
    labels = [root(i) for i in range(n)]
    return labels if len(set(labels)) < n else None


def transfer(
    patched: ConditionRun,
    recipient: ConditionRun,
    donor: ConditionRun,
    *,
    level: float,
    rng: int | np.random.Generator,
    measure: str = BEHAVIOUR_SCORE,
    method: str = "BCa",
    n_resamples: int = 9999,
) -> TransferResult:
    """T = (mean s(patched) − mean s(recipient)) / (mean s(donor) − mean s(recipient)), paired by pair.

    ``recipient`` and ``donor`` are the natural runs of the patched run's recipient and donor prompts (for
    the main condition B and A; for the reverse patch A and B). CI: ``method`` bootstrap over pairs at
    ``level`` (:func:`harness.stats.transfer_ci`), resampling clusters of pairs that share a prompt
    (:func:`prompt_clusters`); undefined when the gap's CI includes 0.
    """
    _aligned(patched, recipient, donor)
    p, r, d = patched.scores(measure), recipient.scores(measure), donor.scores(measure)
    est = transfer_ci(p, r, d, clusters=prompt_clusters(patched, recipient, donor), level=level, method=method,
                      n_resamples=n_resamples, rng=rng)
    return TransferResult(est.estimate, est.ci, est.denominator, est.undefined_reason, len(p),
                          float(np.mean(p)), float(np.mean(r)), float(np.mean(d)))


def _step_ratio(upper: np.ndarray, lower: np.ndarray, donor: np.ndarray, recipient: np.ndarray) -> float:
    gap = float(np.mean(donor) - np.mean(recipient))
    return float(np.mean(upper - lower)) / gap if gap != 0 else math.nan


def transfer_step_cis(
    ordered: Sequence[ConditionRun],
    recipient: ConditionRun,
    donor: ConditionRun,
    *,
    level: float,
    rng: int | np.random.Generator,
    measure: str = BEHAVIOUR_SCORE,
    method: str = "BCa",
    n_resamples: int = 9999,
) -> list[ConfidenceInterval]:
    """CIs of the adjacent steps T(c_k+1) − T(c_k) = mean(s_k+1 − s_k) / (mean s(donor) − mean s(recipient)) over
    ordered conditions, each a paired bootstrap over pairs (clustered as in :func:`transfer`) that resamples
    numerator and gap together."""
    if len(ordered) < 2:
        raise ValueError("transfer_step_cis needs at least two ordered conditions")
    clusters = prompt_clusters(*ordered, recipient, donor)
    gen = np.random.default_rng(rng)
    d, r = donor.scores(measure), recipient.scores(measure)
    return [
        bootstrap_ci(_step_ratio, hi.scores(measure), lo.scores(measure), d, r, paired=True, clusters=clusters,
                     level=level, method=method, n_resamples=n_resamples, rng=gen)
        for lo, hi in zip(ordered[:-1], ordered[1:])
    ]

