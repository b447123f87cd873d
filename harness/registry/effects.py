"""What a claim's estimate is: the statistic, its symbol and units (:class:`EffectType`), one row per ``effect_type``.

Every :class:`~harness.registry.spec.ClaimSpec` names one ``effect_type`` of :data:`EFFECT_TYPES`; the report
writes it beside every estimate (``effect_type``, ``effect_label``, ``effect_units``, ``effect_direction`` in
claims.json and claims.csv, a column in claims.md and claims.tex), so no number is read without knowing which
statistic it is. The direction a claim expects comes from its rule (:meth:`ClaimSpec.effect_direction`), not
from here. Definitions of each statistic: docs/METHODS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EFFECT_TYPES", "EffectType"]


@dataclass(frozen=True)
class EffectType:
    """One kind of estimate.

    ``label``: the statistic in words (table headers, methods text); ``symbol``: its short Unicode symbol;
    ``latex``: the same symbol as LaTeX math (without ``$``); ``units``: what one unit of the estimate means.
    """

    name: str
    label: str
    symbol: str
    latex: str
    units: str


EFFECT_TYPES: dict[str, EffectType] = {
    e.name: e
    for e in (
        EffectType("hedges_g", "Hedges g", "g", "g",
                   "pooled-SD units (bias-corrected standardized mean difference)"),
        EffectType("adjusted_hedges_g", "covariate-adjusted Hedges g", "g_adj", r"g_{\mathrm{adj}}",
                   "pooled within-group SD units of the statistic, at equal covariates (bias-corrected)"),
        EffectType("transfer_ratio", "transfer ratio T", "T", "T",
                   "fraction of the natural recursive − baseline behaviour gap (0 = recipient, 1 = donor)"),
        EffectType("transfer_difference", "difference of two transfer ratios", "ΔT", r"\Delta T",
                   "fraction of the natural recursive − baseline behaviour gap"),
        EffectType("geometry_transfer_ratio", "geometry transfer ratio G", "G", "G",
                   "fraction of the natural recursive − baseline R_V gap (0 = recipient, 1 = donor)"),
        EffectType("rv_gap_shrinkage", "shrinkage of the R_V gap", "S", "S",
                   "R_V units (|mean gap at step 0| − |mean gap at step 40|; > 0 = the gap shrank)"),
        EffectType("spearman_rho", "Spearman ρ", "ρ", r"\rho", "rank correlation, from −1 to 1"),
        EffectType("partial_spearman_rho", "partial Spearman ρ (prompt length partialled out)", "ρ_partial",
                   r"\rho_{\mathrm{partial}}", "rank correlation given prompt length, from −1 to 1"),
        EffectType("mean_block_spearman", "mean within-block Spearman ρ", "ρ̄", r"\bar{\rho}",
                   "rank correlation, from −1 to 1, averaged over blocks"),
        EffectType("accuracy_minus_random_weights", "accuracy above random-weight copies", "Δacc",
                   r"\Delta\mathrm{acc}",
                   "proportion correct, model minus random-weight copies, mean over (persona, wording) cells"),
        EffectType("accuracy", "classification accuracy", "acc", r"\mathrm{acc}", "proportion correct, from 0 to 1"),
        EffectType("mismatch_count", "mismatch count", "count", r"\mathrm{count}",
                   "(layer, K or V) cache entries that differ from the config"),
        EffectType("continuation_nll_reduction", "continuation loss reduction", "ΔL", r"\Delta L",
                   "nats per continuation token (mean NLL without context − with it; > 0 = the context helped)"),
        EffectType("max_abs_logit_diff", "max |Δ logit|", "max|Δlogit|", r"\max|\Delta\mathrm{logit}|",
                   "logits (natural-log odds units)"),
        EffectType("mean_kl_nats", "mean KL divergence", "KL̄", r"\overline{\mathrm{KL}}",
                   "nats (natural-log units), mean over prompts"),
    )
}
"""Every effect type a claim may name, by ``effect_type``."""
