"""Claims layer_quarter_localisation, token_quarter_localisation and peak_zone_vs_half: where the KV transfer lives.

All three patch the recursive donor A's K and V into the baseline recipient B's cache (α = 1, exact-length
pairs, registered decoding regime) over a part of the layers or of the prompt positions, and compare
transfers T (DESIGN §4.8, registered behaviour score (degeneration-gated classifier P(recursive), docs/METHODS.md §6), normalised by the same pairs' natural A − B
gap; undefined, hence INCONCLUSIVE, when that gap's CI includes 0).

- layer_quarter_localisation: four patches, layers [q·L/4, (q+1)·L/4) for q = 0…3 (integer division), all
  shared positions. D = max(T_Q3, T_Q4) − max(T_Q1, T_Q2); 95 % percentile bootstrap over pairs (pairs
  resampled jointly across the six runs). Every T_Q with its 95 % BCa CI, and the second-half patch (the
  kv_transfer condition) for reference, go to ``details["transfer_by_range"]``.
- token_quarter_localisation: second-half layers, positions in the first 25 % vs the last 25 % of the shared
  prompt positions 0…n−2 (``Span.first_quarter`` / ``Span.last_quarter``: [0, ⌊(n−1)/4⌋) and
  [n−1−⌊(n−1)/4⌋, n−1)). D = T(last) − T(first) = mean(s_last − s_first) / gap, 95 % BCa over pairs
  resampling numerator and gap together; p: one-sided paired Wilcoxon on per-pair scores, last > first.
- peak_zone_vs_half: the peak zone is the late layer ± 2 (clipped to the stack), all shared positions.
  D = T(second half) − T(peak zone), 95 % BCa over pairs as above.

Rules and planned n: the registry entries.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import behaviour_details, paired_p, run_conditions
from harness.engine.patch_specs import Span
from harness.stats import bootstrap_ci, transfer_ratio
from harness.transfer import (
    KV_MAIN,
    NATURAL_BASELINE,
    NATURAL_RECURSIVE,
    Condition,
    LayerSet,
    estimate_transfer,
    kv_condition,
    transfer_step_cis,
)

LAYER_QUARTERS = tuple(kv_condition(f"kv_layer_quarter_{q + 1}", layers=LayerSet.quarter_of(q)) for q in range(4))
TOKENS_FIRST = kv_condition("kv_tokens_first_quarter", span=Span.first_quarter())
TOKENS_LAST = kv_condition("kv_tokens_last_quarter", span=Span.last_quarter())
PEAK_ZONE = kv_condition("kv_peak_zone", layers=LayerSet.around_late(2))


def _quarter_difference(q1, q2, q3, q4, recipient, donor) -> float:
    """max(T_Q3, T_Q4) − max(T_Q1, T_Q2) from per-pair score arrays (T's share the natural gap)."""
    t = [transfer_ratio(q, recipient, donor) for q in (q1, q2, q3, q4)]
    return float(max(t[2], t[3]) - max(t[0], t[1]))


@pytest.mark.claim("layer_quarter_localisation")
def test_layer_quarter_localisation(claim: ClaimContext) -> None:
    lm, spec = claim.lm, claim.spec
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, *LAYER_QUARTERS, KV_MAIN))
    pairs = runs.pairs
    natural_b, natural_a = runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name]
    rng = np.random.default_rng(claim.seed)
    ranges = (*LAYER_QUARTERS, KV_MAIN)
    per_range = [estimate_transfer(runs[c.name], natural_b, natural_a, level=0.95, rng=rng) for c in ranges]
    columns = [runs[c.name].scores() for c in LAYER_QUARTERS] + [natural_b.scores(), natural_a.scores()]
    ci = bootstrap_ci(_quarter_difference, *columns, paired=True, level=spec.ci_level, method="percentile", rng=rng)
    layers = [c.layers.resolve(lm) for c in ranges]
    labels = [f"Q{q + 1} (layers {ls[0]}–{ls[-1]})" for q, ls in enumerate(layers[:4])]
    labels.append(f"second half (layers {layers[4][0]}–{layers[4][-1]})")
    result = claim.evaluate(
        estimate=_quarter_difference(*columns), ci_low=ci.low, ci_high=ci.high,
        n=len(pairs), undefined_reason=per_range[0].undefined_reason,
        details=behaviour_details(
            claim, runs,
            quarter_layers={f"Q{q + 1}": list(ls) for q, ls in enumerate(layers[:4])},
            transfer_by_range={
                "labels": labels,
                "estimate": [t.estimate for t in per_range],
                "ci_low": [t.ci.low for t in per_range],
                "ci_high": [t.ci.high for t in per_range],
            },
            transfer={c.name: t.describe() for c, t in zip(ranges, per_range)},
        ),
    )
    claim.conclude(result)


def _difference_claim(claim: ClaimContext, lower: Condition, upper: Condition, p_alternative: str | None,
                      **extra: object) -> None:
    """D = T(upper) − T(lower) with a paired BCa CI over pairs (and, when asked, a Wilcoxon p on upper vs lower)."""
    spec = claim.spec
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, lower, upper))
    pairs = runs.pairs
    natural_b, natural_a = runs[NATURAL_BASELINE.name], runs[NATURAL_RECURSIVE.name]
    rng = np.random.default_rng(claim.seed)
    step = transfer_step_cis([runs[lower.name], runs[upper.name]], natural_b, natural_a, level=spec.ci_level,
                             rng=rng)[0]
    each = {c.name: estimate_transfer(runs[c.name], natural_b, natural_a, level=spec.ci_level, rng=rng) for c in (lower, upper)}
    p = p_note = None
    if p_alternative is not None:
        p, p_note = paired_p(runs[upper.name].scores(), runs[lower.name].scores(), p_alternative)
    result = claim.evaluate(
        estimate=step.estimate, ci_low=step.low, ci_high=step.high, p_value=p, n=len(pairs),
        undefined_reason=each[lower.name].undefined_reason,
        details=behaviour_details(
            claim, runs, transfer={k: t.describe() for k, t in each.items()},
            difference=f"T({upper.name}) − T({lower.name})", p_note=p_note, **extra,
        ),
    )
    claim.conclude(result)


@pytest.mark.claim("token_quarter_localisation")
def test_token_quarter_localisation(claim: ClaimContext) -> None:
    lm = claim.lm
    _difference_claim(claim, TOKENS_FIRST, TOKENS_LAST, "greater", patched_layers=list(KV_MAIN.layers.resolve(lm)))


@pytest.mark.claim("peak_zone_vs_half")
def test_peak_zone_vs_half(claim: ClaimContext) -> None:
    lm = claim.lm
    _difference_claim(claim, PEAK_ZONE, KV_MAIN, None, peak_zone_layers=list(PEAK_ZONE.layers.resolve(lm)),
                      second_half_layers=list(KV_MAIN.layers.resolve(lm)))
