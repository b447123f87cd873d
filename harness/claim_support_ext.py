"""Helpers shared by the extended behavioural claim modules (geometry on generated tokens, rank correlations,
per-pair selections); the basic ones live in :mod:`harness.claim_support`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from harness.claims_registry import ClaimSpec
from harness.measurement_cache import MeasurementCache
from harness.models import LoadedModel
from harness.prompts.pairing import TransferPair
from harness.stats import bootstrap_ci, spearman
from harness.tokens import special_ids
from harness.transfer import ConditionRun
from harness.transfer_ext import ReplayedV, decode_step_positions, generated_positions, replay_v, window_rv

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
class Correlation:
    """A Spearman ρ with its bootstrap CI and one-sided p (``undefined_reason`` set when ρ is undefined)."""

    rho: float
    ci_low: float
    ci_high: float
    p_value: float | None
    n: int
    undefined_reason: str | None


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ, NaN for a constant sample (a bootstrap resample may be constant)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(sps.spearmanr(x, y).statistic)


def rank_correlation(
    x: Sequence[float], y: Sequence[float], *, alternative: str, level: float, rng: int | np.random.Generator,
    n_resamples: int = 9999,
) -> Correlation:
    """Spearman ρ(x, y) (:func:`harness.stats.spearman`, one-sided p in ``alternative``) with a BCa CI
    resampling (x, y) rows jointly (``n_resamples`` draws). Undefined (NaN, with the reason) when either
    sample is constant."""
    xa, ya = np.asarray(x, np.float64), np.asarray(y, np.float64)
    try:
        test = spearman(xa, ya, alternative=alternative)
    except ValueError as exc:
        return Correlation(math.nan, math.nan, math.nan, None, len(xa), str(exc))
    ci = bootstrap_ci(_rho, xa, ya, paired=True, level=level, n_resamples=n_resamples, rng=rng)
    return Correlation(test.statistic, ci.low, ci.high, test.p_value, len(xa), None)


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
    (:func:`harness.transfer_ext.decode_step_positions`); NaN where the decode never ran that step."""
    specials = special_ids(lm.tokenizer)

    def one(r: ReplayedV) -> float:
        positions = decode_step_positions(r, step, window, specials)
        return window_rv(r, lm.layers.early, lm.layers.late, positions) if positions is not None else math.nan

    return _per_pair(replays, one)


def replay_runs(
    lm: LoadedModel, pairs: Sequence[TransferPair], runs: Sequence[ConditionRun], *, run_seed: int,
    cache: MeasurementCache,
) -> list[list[list[ReplayedV]]]:
    """:func:`harness.transfer_ext.replay_v` of each run at the model's early and late layers."""
    layers = (lm.layers.early, lm.layers.late)
    return [replay_v(lm, pairs, run, layers, run_seed=run_seed, cache=cache) for run in runs]


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


def first_eligible(pairs: Sequence[TransferPair], keep: Callable[[TransferPair], bool], spec: ClaimSpec,
                   n_cap: int | None) -> tuple[list[TransferPair], int]:
    """The first ``min(planned_n, n_cap)`` pairs that satisfy ``keep``, and how many satisfy it in all."""
    eligible = [p for p in pairs if keep(p)]
    n = min(spec.planned_n, n_cap) if n_cap else spec.planned_n
    return eligible[:n], len(eligible)
