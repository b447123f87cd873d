"""The cache-exchange claims (issue 14), as data: what a KV cache carries when it leaves its model.

One section per claim, each registered before any of its data existed:

- **Packets**: compressed cache packets keep the receiver's next-token distribution (``compressed_packet_fidelity``).
- **Partial transfer**: fidelity of a cache with only a fraction of its layers transferred
  (``partial_layer_fidelity``).
- **Cross-model projector**: a sharer model's cache, projected into a receiver model, carries the context
  (``projector_transfers_context``).
- **Confabulation signature**: cache statistics of grounded-fact vs confabulation-inducing prompts after
  length and token-frequency control (``confabulation_signature``).

Rule language, planned n and families: :mod:`harness.registry.rules`, :mod:`harness.registry.power_plans`,
:mod:`harness.registry.multiplicity`.
"""

from __future__ import annotations

from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.registry.power_plans import POWER, PowerPlan, alpha_ci
from harness.registry.rules import P_BELOW, Kind, ci_differs
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["EXCHANGE_CLAIMS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- partial transfer
PARTIAL_CLAIMS: tuple[ClaimSpec, ...] = ()

# ---------------------------------------------------------------------------------------- projector
PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- confabulation
# Registered 2026-12-05 before any cache statistic of a grounding prompt was measured on any model. The numbers:
# - margin ±0.5 g_adj: half a within-group SD of R_V across prompts, Cohen's "medium" effect and the suite's existing
#   bound for a meaningful geometry difference (attention_entropy_differs); rv_contraction claims |g| ≥ 1, so a
#   shift under half of that is what this claim calls "no difference".
# - CI 90%: the two one-sided tests of TOST at α = 0.05 (as v_patch_null); "differ" is decided by the p criterion
#   (two-sided t, α_test of the 'exchange' family, 0.01 / m), which is stricter than the 90% CI excluding 0.
# - planned n: per-pair SD of the adjusted difference assumed equal to s_w, i.e. a within-pair correlation of the
#   (covariate-adjusted) statistic of 0.5 (pair members share the question's frame but not its entity; no pilot
#   exists). CONFAB_DESIGN_INFLATION is the variance factor of the OLS intercept, n · [(XᵀX)⁻¹]₀₀ with X = [1, Δtokens,
#   Δzipf] of the bank's 20 pairs (4.06, computed from the SmolLM2 tokenizer shipped in harness/data and wordfreq,
#   no model run): controlling for the covariates extrapolates each pair difference to Δtokens = Δzipf = 0, because
#   the invented names make every confabulation prompt longer and rarer-worded than its counterpart.
# - assumed true effect for the "differ" part: g_adj = 0.8 (Cohen's "large"), the smallest signature a cache-level
#   confabulation detector could use on single prompts.
CONFAB_DESIGN_INFLATION = 4.06
"""Variance factor of the adjusted difference (OLS intercept over pair differences) vs a plain paired mean."""
CONFAB_MARGIN = 0.5
"""Equivalence band ±0.5 g_adj (pooled within-group SD units of the statistic)."""

CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="confabulation_signature", version=1, title="Confabulation signature in the V cache",
        statement="R_V of the prompt's V cache differs between grounded-fact prompts and matched "
                  "confabulation-inducing prompts at equal token length and word frequency.",
        estimator="g_adj = J(2n − 2) · β / s_w over the bank's grounded/confabulation pairs (harness.exchange."
                  "confabulation): β = intercept of the OLS of ΔR_V (confabulation − grounded, per pair) on Δ content "
                  "tokens (the model's tokenizer) and Δ mean word Zipf frequency (wordfreq, English), i.e. the "
                  "difference at equal length and frequency; s_w = pooled within-group SD of R_V over prompts. R_V = "
                  "PR(V at the late layer) / PR(V at the early layer) over the last W = 16 content tokens, eigenvalue "
                  "PR, uncentred. CI: 90% BCa bootstrap resampling pairs. p: two-sided t-test of β = 0, n − 3 df. "
                  "Details: the same for PR(late) and PR(early) alone, the unadjusted paired difference, and Hedges g "
                  "of residuals after a pooled regression without a group term.",
        effect_type="adjusted_hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci_differs(-CONFAB_MARGIN, CONFAB_MARGIN), P_BELOW),
        ci_level=0.90, alpha=0.01, family="exchange",
        power=PowerPlan(
            assumptions=f"per-pair SD of the adjusted difference = s_w (within-pair correlation 0.5); intercept "
                        f"variance factor {CONFAB_DESIGN_INFLATION:g} from the bank's covariate differences; FAIL part "
                        f"at true g_adj = 0 (both TOST bounds, joint power ≥ {POWER:g}); PASS part at true g_adj = 0.8",
            parts=(
                part(f"90% CI inside ±{CONFAB_MARGIN:g}", "one-sample-t", CONFAB_MARGIN, alpha_ci(0.90),
                     1.0 - (1.0 - POWER) / 2.0, CONFAB_DESIGN_INFLATION),
                part("two-sided t p < alpha_test", "one-sample-t", 0.8,
                     MULTIPLICITY_FAMILIES["exchange"].alpha_per_test / 2.0, POWER, CONFAB_DESIGN_INFLATION),
            ),
        ),
        n_unit="prompt pairs", required_groups=("grounded", "confabulation"),
        notes="primary statistic R_V chosen a priori: V is what the cache stores for every layer (v_proj output, no "
              "RoPE), and R_V is the suite's registered V-geometry measure, shared with rv_contraction's cache",
    ),
)

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
