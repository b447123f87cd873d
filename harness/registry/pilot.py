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
    "control_shuffled_null": 0.98,  # T, 90% CI; 0.976 / 0.702
    "control_random_null": 0.51,  # 0.509 / 0.288
    "control_cross_baseline_null": 0.31,  # 0.308 / 0.257
    "layer_quarter_localisation": 0.74,  # D; 0.709 / 0.734
    "token_quarter_localisation": 0.49,  # D; 0.482 / 0.315
    "peak_zone_vs_half": 1.66,  # D; 1.654 / 0.743
    "self_ref_token_patch": 0.16,  # T; 0.154 / 0.122
    "alpha_monotone": 1.21,  # largest adjacent-step SD; smollm2 steps 0.244 0.762 0.456 1.203, gemma3 up to 0.959
    "donor_level_transfer_trend": 0.33,  # per-block ρ; 0.321 / 0.269
}
"""Per-pair (per-block) SD of each claim's statistic in the pilot, in the statistic's own units."""


def pilot_sd(claim_id: str) -> float:
    """The pilot SD of ``claim_id`` (KeyError for a claim without a pilot)."""
    return PILOT_SD[claim_id]
