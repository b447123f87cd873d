"""The pilot behind the planned n of the transfer claims: per-pair SDs measured by a committed run.

A power calculation for a mean over pairs needs the per-pair SD of the statistic. The first registry (v1) assumed
SDs (0.25 to 0.6 in T units) that the first full run contradicted (kv_transfer: 0.5 assumed, 0.96 / 0.69 implied),
so its planned n were too small and its CIs too wide to decide. From version 2 the plans use the SD that run
implied, stated here as the pilot: SD = CI half-width / z × √n (z = 1.96 for a 95 % CI, 1.645 for 90 %), the larger
of the two embedded models, rounded up to two decimals. Where the bank cannot supply the n this gives, the claim
is INCONCLUSIVE with "n = … < planned …" in its explanation, which is the n a replication would need.

The pilot scored continuations with the v1 behaviour score; a change of the score (issue 10) needs a new pilot.
Claims whose v2 estimator differs from the pilot's (geometry_transfers) keep their assumed SD and say so.
"""

from __future__ import annotations

__all__ = ["PILOT_RUN", "PILOT_SD", "pilot_sd"]

PILOT_RUN = "reports/example-embedded-cpu at commit 4c796d3 (2026-12-05; smollm2-135m and gemma3-270m, 4c796d3 code)"
"""The committed run the pilot SDs come from."""

PILOT_SD: dict[str, float] = {
    "v_patch_null": 0.44,  # T, 90% CI; smollm2 0.316, gemma3 0.440
    "kv_transfer": 0.97,  # T; 0.964 / 0.691
    "single_layer_fails": 0.63,  # T; 0.628 / 0.040
    "reverse_patch_necessity": 0.48,  # T_rev; 0.479 / 0.166
    "order_ablated_T": 0.98,  # T of the order-ablated (shuffled) patch, 90% CI; recorded as control_shuffled_null; 0.976 / 0.702
    "control_random_null": 0.51,  # 0.509 / 0.288
    "control_cross_baseline_null": 0.31,  # 0.308 / 0.257
    "layer_quarter_localisation": 0.74,  # D; 0.709 / 0.734
    "token_quarter_localisation": 0.49,  # D; 0.482 / 0.315
    "peak_zone_vs_half": 1.66,  # D; 1.654 / 0.743
    "self_ref_token_patch": 0.16,  # T; 0.154 / 0.122
    "alpha_monotone": 1.21,  # largest adjacent-step SD; smollm2 steps 0.244 0.762 0.456 1.203, gemma3 up to 0.959
    "donor_level_transfer_trend": 0.33,  # per-block ρ; 0.321 / 0.269
}
"""Per-pair (per-block) SD of each claim's statistic in the pilot, in the statistic's own units, keyed by claim id;
``order_ablated_T`` is the T of the order-ablated patch, which the pilot run estimated as claim control_shuffled_null
(v2) and which no registered claim estimates alone now (kv_order_ablation estimates T(main) − T(order-ablated))."""

ORDER_ABLATION_D_SD = 1.38
"""Assumed per-pair SD of D = T(main) − T(order-ablated) (T units) for kv_order_ablation: no run measured D; the
pilot's SDs of the two T's (kv_transfer 0.97, order_ablated_T 0.98) combined as if uncorrelated,
√(0.97² + 0.98²) = 1.379, rounded up. Both share the recipient B and its natural scores, so their correlation is
expected positive and the true SD smaller; a negative correlation would make it larger (at most 1.95)."""


def pilot_sd(key: str) -> float:
    """The pilot SD of ``key``, a claim id or a quantity named in :data:`PILOT_SD` (KeyError without a pilot)."""
    return PILOT_SD[key]
