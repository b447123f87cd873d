"""Claim geometry_at_encoding: the recursive − baseline R_V difference is already present at decode step 0.

Method: the recursive and baseline prompts of the first planned-n exact-length pairs, each decoded naturally
under the registered regime (the same continuations the behaviour claims use). At decode step s the model
feeds the token at position n − 1 + s (step 0: the prompt's last token; step s ≥ 1: generated token
g_{s−1}); R_V at step s = PR(V at the late layer) / PR(V at the early layer) (eigenvalue PR, uncentred) over
the last W (``--window``, 16) non-special positions held at that moment. At step 0 that window is the
prompt's last W content tokens; at step 40 it is generated tokens g_24…g_39 only. V is the ``v_proj`` output
of each position in the run (prefill rows and a teacher-forced replay of the generated ids over the same
cache, ``harness.geometry.replay.replay_v``; nothing is patched). A continuation that stopped (EOS) before step
40 ran has no step-40 R_V and is left out of the step-40 numbers only.
Estimate: Hedges g of step-0 R_V, recursive − baseline, 95 % BCa CI resampling prompts within each group;
p: one-sided Welch t (recursive lower). Hedges g at step 40 with its CI is reported beside it (no verdict).
Rule and planned n: the registry entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim_context import ClaimContext
from harness.claim_support import behaviour_details, claim_pairs, pairing_details, run_conditions
from harness.geometry.replay import decode_step_rv, replay_capture_gap, replay_runs
from harness.stats import bootstrap_ci, hedges_g, welch_t
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE

pytestmark = pytest.mark.claim("geometry_at_encoding")
CONDITIONS = (NATURAL_RECURSIVE, NATURAL_BASELINE)
STEPS = (0, 40)


def _g_or_nan(rec: np.ndarray, base: np.ndarray) -> float:
    """Hedges g for a bootstrap resample; NaN when the resample has both groups constant."""
    try:
        return hedges_g(rec, base)
    except ValueError:
        return float("nan")


def _g_with_ci(rec: np.ndarray, base: np.ndarray, level: float, rng: np.random.Generator) -> dict:
    """Hedges g (recursive − baseline) of the finite R_V values, its BCa CI and one-sided Welch p; ``g`` is None
    with a ``reason`` when it is undefined (fewer than 2 values in a group, or both groups constant)."""
    rec, base = rec[np.isfinite(rec)], base[np.isfinite(base)]
    out = {"g": None, "ci_low": None, "ci_high": None, "p": None, "n_recursive": int(rec.size),
           "n_baseline": int(base.size), "reason": None}
    if min(rec.size, base.size) < 2:
        return out | {"reason": "fewer than 2 prompts per group have an R_V at this step"}
    try:
        g = hedges_g(rec, base)
    except ValueError as exc:
        return out | {"reason": str(exc)}
    ci = bootstrap_ci(_g_or_nan, rec, base, level=level, rng=rng)
    return out | {"g": g, "ci_low": ci.low, "ci_high": ci.high, "p": welch_t(rec, base, "less").p,
                  "mean_rv_recursive": float(rec.mean()), "mean_rv_baseline": float(base.mean())}


def test_geometry_at_encoding(claim: ClaimContext) -> None:
    lm = claim.lm
    selection = claim_pairs(claim)
    pairs = selection.pairs
    runs = run_conditions(claim, pairs, CONDITIONS)
    rep_rec, rep_base = replay_runs(lm, pairs, [runs[c.name] for c in CONDITIONS], run_seed=claim.settings.seed,
                                    cache=claim.cache)
    rng = np.random.default_rng(claim.seed)
    rv = {step: (decode_step_rv(lm, rep_rec, step=step, window=claim.settings.window),
                 decode_step_rv(lm, rep_base, step=step, window=claim.settings.window)) for step in STEPS}
    by_step = {step: _g_with_ci(*rv[step], claim.spec.ci_level, rng) for step in STEPS}
    head = by_step[0]
    result = claim.evaluate(
        estimate=head["g"], ci_low=head["ci_low"], ci_high=head["ci_high"],
        p_value=head["p"], n=min(head["n_recursive"], head["n_baseline"]),
        undefined_reason=head["reason"],
        details=behaviour_details(
            claim, runs,
            measured=("R_V at decode step s over the last W non-special positions held when step s feeds its "
                      "token (step 0: the prompt's last W content tokens; step 40: generated tokens g_24…g_39), "
                      "natural continuations, V from the run's own prefill and a teacher-forced replay"),
            window=claim.settings.window,
            replay_vs_decode_capture_max_abs=replay_capture_gap([runs[c.name] for c in CONDITIONS],
                                                                [rep_rec, rep_base]),
            hedges_g_by_step={str(step): by_step[step] for step in STEPS},
            rv_by_group={f"{name} (step {step})": values[np.isfinite(values)].tolist()
                         for step in STEPS for name, values in zip(("recursive", "baseline"), rv[step])},
            pairing=pairing_details(selection),
        ),
    )
    claim.conclude(result)
