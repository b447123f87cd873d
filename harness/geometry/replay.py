"""V on the generated tokens, replayed, and the R_V measured on it (DESIGN §4.1, §4.6).

For one continuation of a natural or KV-patched condition, the recipient's prefix cache is rebuilt by the
same function the generation engine uses (:func:`harness.engine.kvcache.patched_prefix`: prefill of tokens
``0 … n−2``; for a KV patch, the donor's prefix patched in with the condition's resolved spec and the pair id
as row key), and the tokens the engine fed or produced — the recipient's last prompt token ``b_{n−1}`` at
position ``n−1``, then the generated ids ``g_0 … g_{k−1}`` at ``n … n+k−1`` — go through the model in one
teacher-forced forward over a clone of that cache (:func:`harness.engine.kvcache.teacher_force`), with ``v_proj``
hooks at the requested layers. Causal attention makes row ``p`` of that forward the V the decode loop
computed when it fed the token at ``p`` (tested against the engine's per-step capture:
``tests/engine/test_geometry_replay.py``); the replay also gives the V of the last generated token, which the loop
emits but never feeds. These are token ids, never re-tokenised text, and the cache is the patched one: the
replay keeps the patched state (the "re-encoded text" pitfall of the seed scripts does not arise).

A KV patch writes cache entries at prompt positions ``0 … n−2`` only; the V rows of positions ``≥ n−1`` are
computed afresh from the residual stream, so they lie downstream of the patch at every layer. For patched
conditions :class:`ReplayedV` therefore holds those rows only and refuses prompt positions; for natural runs
it also holds the prompt rows (the V the prefill computed).

Replays are stored in the :class:`~harness.runtime.measurement_store.MeasurementStore`, keyed by everything that
determines them, so re-runs are free. R_V here is PR(V late) / PR(V early) over chosen positions of one
replay (:func:`harness.geometry.metrics.r_v`): dimensionless, < 1 when the late layer is more contracted.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from harness.engine import kvcache
from harness.engine.hooks import TraceDict
from harness.engine.patch_specs import KVPatchSpec
from harness.engine.tokens import pad_id, special_ids
from harness.foundation.serialize import decode_array, encode_array, to_builtin
from harness.geometry import metrics
from harness.models import LoadedModel
from harness.models.architectures import select_columns
from harness.prompts.pairing import TransferPair
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
from harness.transfer import NOT_IN_ENGINE_KEY, ConditionRun, Intervention

__all__ = [
    "GENERATED_RV_TEXT",
    "ReplayedV",
    "decode_step_positions",
    "decode_step_rv",
    "generated_positions",
    "generated_rv",
    "generated_token_counts",
    "replay_capture_gap",
    "replay_fingerprint",
    "replay_runs",
    "replay_v",
    "window_rv",
]

GENERATED_RV_TEXT = (
    "R_V = PR(V at the late layer) / PR(V at the early layer), eigenvalue PR, uncentred, over the generated "
    "tokens g_0…g_{k−1} of each continuation (special tokens such as EOS excluded): exactly the tokens whose "
    "text the behaviour score reads. V is the v_proj output computed for those positions (≥ n, the prompt "
    "has n tokens) in a teacher-forced replay of the same token ids over the condition's own, patched, "
    "prefix cache; a KV patch writes only prompt positions 0…n−2, so these rows are downstream of it at "
    "every layer, the late layer included (its v_proj output at a new position reads the residual stream "
    "shaped by the patched layers below it, never its own patched cache entries)"
)
"""What the generated-token R_V measures, in words (put into claim details)."""


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
    if patch is None:
        with TraceDict(lm.model, paths) as traces:
            prefilled, _ = kvcache.patched_prefix(lm.model, [recipient_ids], None, None, pad_id=pad)
        prompt_rows = {layer: select_columns(traces[path].output[0], columns) for path, layer in paths.items()}
    else:
        prefilled, _ = kvcache.patched_prefix(
            lm.model, [recipient_ids], [donor_ids], patch, pad_id=pad, row_keys=[row_key]  # type: ignore[list-item]
        )
    with TraceDict(lm.model, paths, stop=True) as traces:
        kvcache.teacher_force(lm.model, prefilled, [recipient_ids[-1], *generated_ids])
    out = {}
    for path, layer in paths.items():
        new_rows = select_columns(traces[path].output[0], columns)
        rows = new_rows if patch is not None else torch.cat([prompt_rows[layer], new_rows])
        out[str(layer)] = encode_array(rows.to("cpu", torch.float32).numpy())
    return out


def replay_fingerprint() -> str:
    """sha256 over the code that determines a replay: this module and the harness modules it imports (cache
    surgery, hooks, patch specs, ...), docstrings and comments aside; the behaviour scorers are left out, as in
    the continuation key (:data:`harness.transfer.runner.NOT_IN_ENGINE_KEY`: a replay reads token ids, never
    scores). Computed once per process."""
    return code_fingerprint([sys.modules[__name__]], exclude=NOT_IN_ENGINE_KEY)


def replay_v(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    run: ConditionRun,
    layers: Sequence[int],
    *,
    run_seed: int,
    store: MeasurementStore | None = None,
    tokens_from: ConditionRun | None = None,
) -> list[list[ReplayedV]]:
    """Replay every continuation of ``run`` (per pair, per sample) and return its V at ``layers``.

    ``run`` must be a natural or KV-patch condition run on exactly ``pairs`` (same order) with the same
    ``run_seed`` (it seeds the shuffled and random controls). With ``tokens_from`` (another run on the same
    pairs), the generated ids of *that* run are teacher-forced over ``run``'s own (patched) prefix instead of
    ``run``'s continuations, so several conditions are measured on the very same tokens (the replay's
    ``condition`` then reads ``"<run> on <tokens_from> tokens"``). Raises ValueError otherwise.
    """
    condition = run.condition
    if condition.intervention not in (Intervention.NONE, Intervention.KV):
        raise ValueError(
            f"replay_v: condition {condition.name!r} patches {condition.intervention.value}; only natural and KV "
            "conditions can be replayed (an activation patch would have to be re-applied during the replay)"
        )
    for covering in (run, tokens_from or run):
        if covering.pair_ids != tuple(p.id for p in pairs):
            raise ValueError(f"replay_v: the run of {covering.condition.name!r} covers pairs {covering.pair_ids}, "
                             "not the given pairs")
    label = condition.name if tokens_from is None else f"{condition.name} on {tokens_from.condition.name} tokens"
    sources = (tokens_from or run).outcomes
    bad = [layer for layer in layers if not 0 <= layer < lm.shape.n_layers]
    if bad or not layers:
        raise ValueError(f"replay_v: {lm.name} has {lm.shape.n_layers} layers; cannot replay layers {list(layers)}")
    store = store or MeasurementStore(mode="off")
    fingerprint = replay_fingerprint()
    layers = tuple(sorted(set(layers)))
    out = []
    for pair, outcome in zip(pairs, sources):
        recipient_ids = pair.prompt(condition.recipient)[1]
        donor_ids = pair.prompt(condition.donor)[1] if condition.donor is not None else None
        patch = pair.aligned(condition.patch_for(lm, pair.id, run_seed), condition.recipient, condition.donor)
        per_sample = []
        for sample in outcome.samples:
            parts = {
                "model": lm.identity, "pair_id": pair.id, "recipient_ids": list(recipient_ids),
                "donor_ids": list(donor_ids) if donor_ids is not None else None, "patch": to_builtin(patch, nonfinite="keep"),
                "generated_ids": list(sample.generated_ids), "layers": list(layers), "code": fingerprint,
            }
            stored = store.get_or_compute(
                "replay_v", parts,
                lambda: _replay_one(lm, recipient_ids, donor_ids, patch, pair.id, sample.generated_ids, layers),
            )
            per_sample.append(
                ReplayedV(
                    pair_id=pair.id, condition=label, sample_index=sample.sample_index,
                    prompt_length=len(recipient_ids), token_ids=tuple(recipient_ids) + tuple(sample.generated_ids),
                    first_row=0 if patch is None else len(recipient_ids) - 1,
                    v={int(k): decode_array(v) for k, v in stored.items()},
                )
            )
        out.append(per_sample)
    return out


def _per_pair(replays: Sequence[Sequence[ReplayedV]], value: Callable[[ReplayedV], float]) -> np.ndarray:
    """Mean over a pair's samples of ``value`` (NaN when any sample's value is undefined)."""
    return np.asarray([float(np.mean([value(r) for r in samples])) for samples in replays], dtype=np.float64)


def generated_rv(
    lm: LoadedModel, replays: Sequence[Sequence[ReplayedV]], *, min_tokens: int
) -> np.ndarray:
    """Per pair, R_V over the generated tokens (see :data:`GENERATED_RV_TEXT`) at the model's early and late
    layers; NaN for a pair whose continuation has fewer than ``min_tokens`` non-special generated tokens."""
    specials = special_ids(lm.tokenizer)

    def one(r: ReplayedV) -> float:
        positions = generated_positions(r, specials)
        return window_rv(r, lm.layers.early, lm.layers.late, positions) if len(positions) >= min_tokens else math.nan

    return _per_pair(replays, one)


def generated_token_counts(lm: LoadedModel, replays: Sequence[Sequence[ReplayedV]]) -> list[float]:
    """Per pair, the mean over samples of the number of non-special generated tokens (0 = the model emitted EOS
    first: an empty continuation)."""
    specials = special_ids(lm.tokenizer)
    return _per_pair(replays, lambda r: float(len(generated_positions(r, specials)))).tolist()


def decode_step_rv(
    lm: LoadedModel, replays: Sequence[Sequence[ReplayedV]], *, step: int, window: int
) -> np.ndarray:
    """Per pair, R_V over the last ``window`` positions held when decode step ``step`` feeds its token
    (:func:`decode_step_positions`); NaN where the decode never ran that step."""
    specials = special_ids(lm.tokenizer)

    def one(r: ReplayedV) -> float:
        positions = decode_step_positions(r, step, window, specials)
        return window_rv(r, lm.layers.early, lm.layers.late, positions) if positions is not None else math.nan

    return _per_pair(replays, one)


def replay_runs(
    lm: LoadedModel, pairs: Sequence[TransferPair], runs: Sequence[ConditionRun], *, run_seed: int,
    store: MeasurementStore, tokens_from: ConditionRun | None = None,
) -> list[list[list[ReplayedV]]]:
    """:func:`replay_v` of each run at the model's early and late layers (``tokens_from``: every run replays
    that run's generated ids instead of its own)."""
    layers = (lm.layers.early, lm.layers.late)
    return [replay_v(lm, pairs, run, layers, run_seed=run_seed, store=store, tokens_from=tokens_from) for run in runs]


def replay_capture_gap(runs: Sequence[ConditionRun], replays: Sequence[Sequence[Sequence[ReplayedV]]]) -> float | None:
    """Max |replay V − the decode loop's own per-step V capture| over every (layer, row) both hold, across
    ``runs`` and their replays (same order); None when the runs captured no V. A runtime check that the
    replay reproduces the V the continuation was decoded with (capture row s = position n − 1 + s)."""
    gaps = []
    for run, per_run in zip(runs, replays):
        for outcome, per_pair in zip(run.outcomes, per_run):
            for sample, replay in zip(outcome.samples, per_pair):
                for layer, captured in sample.v.items():
                    if layer not in replay.v or not len(captured):
                        continue
                    start = replay.prompt_length - 1
                    rows = replay.rows(layer, list(range(start, start + captured.shape[0])))
                    gaps.append(float(np.max(np.abs(rows - captured))))
    return max(gaps) if gaps else None
