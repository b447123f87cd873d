"""Additions to the transfer layer (:mod:`harness.transfer`) that the extended behavioural claims need.

Nothing here changes how a condition is run or cached; every continuation still comes from
:func:`harness.transfer.run_condition`. This module adds:

1. **V on the generated tokens, replayed** (:func:`replay_v`). For one continuation of a natural or
   KV-patched condition, the recipient's prefix cache is rebuilt exactly as the generation engine builds
   it (prefill of tokens ``0 … n−2``; for a KV patch, the donor's prefix and
   :func:`harness.kvcache.patch_kv` with the condition's resolved spec and the pair id as row key), and
   the tokens the engine fed or produced — the recipient's last prompt token ``b_{n−1}`` at position
   ``n−1``, then the generated ids ``g_0 … g_{k−1}`` at ``n … n+k−1`` — go through the model in one
   teacher-forced forward over a clone of that cache, with ``v_proj`` hooks at the requested layers.
   Causal attention makes row ``p`` of that forward the V the decode loop computed when it fed the token
   at ``p`` (tested against the engine's per-step capture: ``tests/test_ext_transfer.py``); the replay
   also gives the V of the last generated token, which the loop emits but never feeds. These are token
   ids, never re-tokenised text, and the cache is the patched one: the replay keeps the patched state
   (the "re-encoded text" pitfall of the seed scripts does not arise).
   A KV patch writes cache entries at prompt positions ``0 … n−2`` only; the V rows of positions
   ``≥ n−1`` are computed afresh from the residual stream, so they lie downstream of the patch at every
   layer. For patched conditions :class:`ReplayedV` therefore holds those rows only and refuses prompt
   positions; for natural runs it also holds the prompt rows (the V the prefill computed).
2. **Self-referential token positions** (:func:`self_referential_positions`): the positions of a prompt's
   tokens that overlap a span matched by the recursive lexicon (:mod:`harness.behaviour.lexicon`,
   DESIGN §4.7a) in the prompt's normalised text.
3. **Donor-level blocks** (:func:`donor_level_blocks`): a baseline recipient with a donor of each
   recursion level L1…L5 (see the function for the donor rule and the truncation it implies).
4. **Donor cached-V PR** (:func:`donor_cache_pr`): the participation ratio of the V that sits in the
   donor's prefix cache at one layer.

Replays and cache PRs are stored in the :class:`~harness.measurement_cache.MeasurementCache`, keyed by
everything that determines them, so re-runs are free.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness import hooks, kvcache, metrics, patching
from harness.behaviour import lexicon_matches, normalise
from harness.hooks import TraceDict
from harness.measurement_cache import MeasurementCache, code_fingerprint
from harness.metrics import participation_ratio
from harness.models import LoadedModel
from harness.patching import KVPatchSpec
from harness.prompts import Prompt, PromptBank
from harness.prompts.pairing import PairRole, TransferPair, transfer_pairs
from harness.records import to_builtin
from harness.tokens import encode, pad_id, special_ids
from harness.transfer import ConditionRun, Intervention

__all__ = [
    "LEVELS",
    "DonorLevelBlock",
    "ReplayedV",
    "decode_step_positions",
    "donor_cache_pr",
    "donor_level_blocks",
    "generated_positions",
    "replay_fingerprint",
    "replay_v",
    "self_referential_positions",
    "window_rv",
]

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Recursion levels, in the order the dose-response claims test them."""


# -------------------------------------------------------------------------------------- V replay


@dataclass(frozen=True)
class ReplayedV:
    """V of one continuation at some layers, one row per absolute token position (see the module docstring).

    ``token_ids`` are the recipient's prompt ids followed by the generated ids (positions ``0 … n+k−1``);
    ``v[layer]`` is float32 ``[n + k − first_row, n_kv_heads·head_dim]`` for positions
    ``first_row … n+k−1``: ``first_row`` is 0 for a natural run and ``n − 1`` for a KV-patched run.
    """

    pair_id: str
    condition: str
    sample_index: int
    prompt_length: int
    token_ids: tuple[int, ...]
    first_row: int
    v: dict[int, np.ndarray]

    @property
    def n_generated(self) -> int:
        """k: number of generated tokens (the continuation the behaviour score reads)."""
        return len(self.token_ids) - self.prompt_length

    def rows(self, layer: int, positions: Sequence[int]) -> np.ndarray:
        """V rows ``[len(positions), D]`` at ``layer`` for absolute ``positions``.

        Raises ValueError for a layer that was not replayed, a position past the continuation, or, in a
        patched run, a prompt position before ``n − 1`` (its cache entries may be the donor's: V there is
        not a measurement downstream of the patch).
        """
        if layer not in self.v:
            raise ValueError(f"layer {layer} was not replayed for pair {self.pair_id!r} (have {sorted(self.v)})")
        bad = [p for p in positions if not self.first_row <= p < len(self.token_ids)]
        if bad:
            why = (f"positions before {self.first_row} are prompt positions of the patched condition "
                   f"{self.condition!r}, not downstream of its patch" if self.first_row else "")
            raise ValueError(
                f"pair {self.pair_id!r}, condition {self.condition!r}: positions {bad} are outside the replayed "
                f"rows {self.first_row}…{len(self.token_ids) - 1}" + (f"; {why}" if why else "")
            )
        return self.v[layer][[p - self.first_row for p in positions]]


def generated_positions(replay: ReplayedV, specials: frozenset[int]) -> list[int]:
    """Absolute positions of the generated tokens ``g_0 … g_{k−1}`` that are not special tokens (e.g. EOS):
    exactly the tokens whose decoded text the behaviour score reads."""
    n = replay.prompt_length
    return [p for p in range(n, len(replay.token_ids)) if replay.token_ids[p] not in specials]


def decode_step_positions(replay: ReplayedV, step: int, window: int, specials: frozenset[int]) -> list[int] | None:
    """The last ``window`` non-special positions the model holds when decode step ``step`` feeds its token.

    Step ``s`` feeds the token at position ``n − 1 + s`` (step 0: the last prompt token; step ``s ≥ 1``:
    ``g_{s−1}``), so the window is the last ``window`` non-special positions ``≤ n − 1 + s``. Returns None when
    the decode loop never ran step ``s`` (it runs steps ``0 … k−1``), or when fewer than ``window``
    non-special positions exist.
    """
    if step < 0 or window < 2:
        raise ValueError(f"decode_step_positions: need step >= 0 and window >= 2, got {step}, {window}")
    if step > replay.n_generated - 1:
        return None
    last = replay.prompt_length - 1 + step
    held = [p for p in range(0, last + 1) if replay.token_ids[p] not in specials]
    return held[-window:] if len(held) >= window else None


def window_rv(replay: ReplayedV, early: int, late: int, positions: Sequence[int]) -> float:
    """R_V = PR(V at ``late``) / PR(V at ``early``) over the same ``positions`` (eigenvalue PR, uncentred)."""
    return metrics.r_v(replay.rows(early, positions), replay.rows(late, positions))


def _pack(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


@torch.no_grad()
def _replay_one(
    lm: LoadedModel,
    recipient_ids: Sequence[int],
    donor_ids: Sequence[int] | None,
    patch: KVPatchSpec | None,
    row_key: str,
    generated_ids: Sequence[int],
    layers: Sequence[int],
) -> dict[str, str]:
    """V rows (packed) per layer: natural runs positions 0 … n+k−1, patched runs n−1 … n+k−1."""
    pad = pad_id(lm.tokenizer)
    paths = {lm.path(layer, "v_proj"): layer for layer in sorted(layers)}
    columns = lm.v_columns
    prefix = list(recipient_ids[:-1])
    with TraceDict(lm.model, paths) as traces:
        prefilled = kvcache.prefill(lm.model, [prefix], pad_id=pad)
    prompt_rows = {layer: traces[path].output[0, :, columns] for path, layer in paths.items()}
    if patch is not None:
        donor = kvcache.prefill(lm.model, [list(donor_ids[: len(prefix)])], pad_id=pad)  # type: ignore[index]
        prefilled, _ = kvcache.patch_kv(prefilled, donor, patch, row_keys=[row_key])
    state = kvcache.clone(prefilled)
    fed = [recipient_ids[-1], *generated_ids]
    device = kvcache.input_device(lm.model)
    start = len(prefix)
    with TraceDict(lm.model, paths, stop=True) as traces:
        lm.model.base_model(
            input_ids=torch.tensor([fed], dtype=torch.long, device=device),
            attention_mask=torch.ones((1, start + len(fed)), dtype=torch.long, device=device),
            position_ids=torch.arange(start, start + len(fed), device=device)[None],
            past_key_values=state.cache,
            use_cache=True,
        )
    out = {}
    for path, layer in paths.items():
        new_rows = traces[path].output[0, :, columns]
        rows = new_rows if patch is not None else torch.cat([prompt_rows[layer], new_rows])
        out[str(layer)] = _pack(rows.to("cpu", torch.float32).numpy())
    return out


REPLAY_MODULES = (kvcache, hooks, patching)


@functools.cache
def replay_fingerprint() -> str:
    """sha256 over the source that determines a replay: the cache surgery, hooks, patch specs and the replay
    function (computed once per process)."""
    text = code_fingerprint(REPLAY_MODULES) + inspect.getsource(_replay_one)
    return hashlib.sha256(text.encode()).hexdigest()


def replay_v(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    run: ConditionRun,
    layers: Sequence[int],
    *,
    run_seed: int,
    cache: MeasurementCache | None = None,
) -> list[list[ReplayedV]]:
    """Replay every continuation of ``run`` (per pair, per sample) and return its V at ``layers``.

    ``run`` must be a natural or KV-patch condition run on exactly ``pairs`` (same order) with the same
    ``run_seed`` (it seeds the shuffled and random controls). Raises ValueError otherwise.
    """
    condition = run.condition
    if condition.intervention not in (Intervention.NONE, Intervention.KV):
        raise ValueError(
            f"replay_v: condition {condition.name!r} patches {condition.intervention.value}; only natural and KV "
            "conditions can be replayed (an activation patch would have to be re-applied during the replay)"
        )
    if run.pair_ids != tuple(p.id for p in pairs):
        raise ValueError(f"replay_v: the run of {condition.name!r} covers pairs {run.pair_ids}, not the given pairs")
    bad = [layer for layer in layers if not 0 <= layer < lm.geometry.n_layers]
    if bad or not layers:
        raise ValueError(f"replay_v: {lm.name} has {lm.geometry.n_layers} layers; cannot replay layers {list(layers)}")
    cache = cache or MeasurementCache(mode="off")
    fingerprint = replay_fingerprint()
    layers = tuple(sorted(set(layers)))
    out = []
    for pair, outcome in zip(pairs, run.outcomes):
        recipient_ids = pair.prompt(condition.recipient)[1]
        donor_ids = pair.prompt(condition.donor)[1] if condition.donor is not None else None
        patch = condition.patch_for(lm, pair.id, run_seed)
        per_sample = []
        for sample in outcome.samples:
            parts = {
                "model": lm.identity, "pair_id": pair.id, "recipient_ids": list(recipient_ids),
                "donor_ids": list(donor_ids) if donor_ids is not None else None, "patch": to_builtin(patch),
                "generated_ids": list(sample.generated_ids), "layers": list(layers), "code": fingerprint,
            }
            stored = cache.get_or_compute(
                "replay_v", parts,
                lambda: _replay_one(lm, recipient_ids, donor_ids, patch, pair.id, sample.generated_ids, layers),
            )
            per_sample.append(
                ReplayedV(
                    pair_id=pair.id, condition=condition.name, sample_index=sample.sample_index,
                    prompt_length=len(recipient_ids), token_ids=tuple(recipient_ids) + tuple(sample.generated_ids),
                    first_row=0 if patch is None else len(recipient_ids) - 1,
                    v={int(k): _unpack(v) for k, v in stored.items()},
                )
            )
        out.append(per_sample)
    return out


# ------------------------------------------------------------------------------ self-referential tokens


def self_referential_positions(tokenizer: Any, text: str, token_ids: Sequence[int]) -> tuple[int, ...]:
    """Positions of the tokens of ``text`` that overlap a recursive-lexicon match (DESIGN §4.7a).

    The lexicon runs on the normalised text (:func:`harness.behaviour.normalise`); token ``i`` with
    character offsets ``[s, e)`` covers the normalised characters
    ``[len(normalise(text[:s])), len(normalise(text[:e])))``, and is self-referential when that range
    overlaps a matched span. Special tokens (empty offsets, e.g. BOS) never are. ``token_ids`` must be the
    ids :func:`harness.tokens.encode` gives for ``text`` (checked). Raises ValueError when the tokenizer
    gives no offsets, or when normalisation is not prefix-stable for this text (exotic Unicode).
    """
    encoded = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    if list(encoded["input_ids"]) != list(token_ids):
        raise ValueError("self_referential_positions: token_ids are not this tokenizer's encoding of the text")
    if "offset_mapping" not in encoded:
        raise ValueError("self_referential_positions: the tokenizer gives no character offsets (needs a fast tokenizer)")
    full = normalise(text)
    spans = lexicon_matches(text)
    positions = []
    for i, (s, e) in enumerate(encoded["offset_mapping"]):
        if e <= s:
            continue
        lo, hi = normalise(text[:s]), normalise(text[:e])
        if not (full.startswith(lo) and full.startswith(hi)):
            raise ValueError(f"self_referential_positions: normalising a prefix of {text[:40]!r}… is not a prefix "
                             "of the normalised text; token offsets cannot be mapped")
        if any(len(lo) < b and len(hi) > a for a, b in spans):
            positions.append(i)
    return tuple(positions)


# ---------------------------------------------------------------------------------- donor-level blocks


@dataclass(frozen=True)
class DonorLevelBlock:
    """A baseline recipient with one donor pair per level: ``pairs[ℓ − 1]`` has the level-ℓ donor as its
    recursive prompt. ``used_fraction[ℓ − 1]`` is the share of that donor's tokens the patch can use
    (the recipient's length over the donor's)."""

    baseline: Prompt
    pairs: tuple[TransferPair, ...]
    used_fraction: tuple[float, ...]


def _truncated_pair(lm: LoadedModel, donor: Prompt, recipient: Prompt) -> TransferPair:
    donor_ids = tuple(encode(lm.tokenizer, donor.text))
    recipient_ids = tuple(encode(lm.tokenizer, recipient.text))
    return TransferPair(f"level:{recipient.id}<-{donor.id}", donor, recipient, donor_ids[: len(recipient_ids)],
                        recipient_ids)


def donor_level_blocks(lm: LoadedModel, bank: PromptBank, n: int) -> tuple[list[DonorLevelBlock], int]:
    """The first ``n`` baseline recipients (in :func:`harness.prompts.pairing.transfer_pairs` order) that have a
    donor of every level, and how many baselines qualified in all.

    Token positions align one to one, and no recursive prompt of every level has a baseline's exact length,
    so a donor must be at least as long as the recipient: the patch then covers every recipient prefix
    position with the donor's first ``n − 1`` tokens (the shared-prefix alignment of DESIGN §4.3; the
    donor's later tokens are not used). Donor rule, fixed before any data: at the level of the
    baseline's own pair, its exact-length recorded partner (that pair itself, id unchanged, so its run is
    shared with kv_transfer); at every other level ℓ, among the level-ℓ prompts at least as long as the
    recipient, in id order, the one at index ``(block index) mod (their number)``, so donors rotate across
    blocks instead of one prompt serving every block. Such a donor's pair carries the donor's first
    ``len(recipient)`` token ids as ``recursive_ids`` (id ``level:<baseline>~<donor>``).
    """
    if n < 1:
        raise ValueError(f"donor_level_blocks: n must be >= 1, got {n}")
    lengths = {p.id: len(encode(lm.tokenizer, p.text)) for p in bank.group("recursive")}
    by_level = {level: bank.group("recursive", level=level) for level in LEVELS}
    blocks: list[DonorLevelBlock] = []
    qualified = 0
    for pair in transfer_pairs(lm, bank):
        own = pair.recursive.level
        need = pair.n_tokens
        eligible = {level: [p for p in by_level[level] if lengths[p.id] >= need] for level in LEVELS}
        if own not in LEVELS or not all(eligible.values()):
            continue
        qualified += 1
        if len(blocks) == n:
            continue
        index = len(blocks)
        chosen = []
        for level in LEVELS:
            if level == own:
                chosen.append(pair)
            else:
                donors = eligible[level]
                chosen.append(_truncated_pair(lm, donors[index % len(donors)], pair.baseline))
        fractions = tuple(need / lengths[c.recursive.id] for c in chosen)
        blocks.append(DonorLevelBlock(pair.baseline, tuple(chosen), fractions))
    return blocks, qualified


# --------------------------------------------------------------------------------- donor cached-V PR


def _cache_pr(lm: LoadedModel, donor_ids: Sequence[int], layer: int, window: int) -> float:
    prefix = list(donor_ids[:-1])
    prefilled = kvcache.prefill(lm.model, [prefix], pad_id=pad_id(lm.tokenizer))
    values = kvcache.layer_kv(prefilled, layer)[1][0]  # [n_kv_heads, stored, head_dim]
    lo, hi = kvcache.held_range(prefilled, layer)
    rows = values.permute(1, 0, 2).reshape(values.shape[1], -1)  # [stored, n_kv_heads·head_dim], v_proj layout
    specials = special_ids(lm.tokenizer)
    held = [p for p in range(lo, hi) if prefix[p] not in specials]
    if len(held) < window:
        raise metrics.PromptTooShortError(
            f"the donor's cached prefix holds {len(held)} content positions at layer {layer}; the window needs {window}"
        )
    chosen = torch.tensor([p - lo for p in held[-window:]])
    return participation_ratio(rows.index_select(0, chosen))


def donor_cache_pr(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    layer: int,
    *,
    window: int = metrics.DEFAULT_WINDOW,
    role: PairRole = PairRole.RECURSIVE,
    cache: MeasurementCache | None = None,
) -> list[float]:
    """Per pair, the eigenvalue PR (uncentred) of the V held in the donor's prefix cache at ``layer``.

    The donor's prefix cache is what a KV patch copies from: tokens ``0 … n−2`` (the engine never caches the
    last prompt token). The window is its last ``window`` content (non-special) positions, read from the
    cache tensor itself (``[n_kv_heads, positions, head_dim]``, laid out as ``v_proj``'s columns).
    Dimensionless, 1 ≤ PR ≤ window.
    """
    if not 0 <= layer < lm.geometry.n_layers:
        raise ValueError(f"donor_cache_pr: {lm.name} has {lm.geometry.n_layers} layers, not {layer}")
    cache = cache or MeasurementCache(mode="off")
    code = hashlib.sha256((code_fingerprint((kvcache, metrics)) + inspect.getsource(_cache_pr)).encode()).hexdigest()
    out = []
    for pair in pairs:
        ids = pair.prompt(role)[1]
        parts = {"model": lm.identity, "ids": list(ids), "layer": layer, "window": window, "code": code}
        out.append(float(cache.get_or_compute("donor_cache_pr", parts, lambda: _cache_pr(lm, ids, layer, window))))
    return out
