"""Extended behavioural patching claims: the 'behaviour' multiplicity family (reverse patch, geometry transfer,
token-quarter localisation, level trends, donor PR) and the CI-only claims beside it (controls, layer-quarter
localisation, peak zone, self-referential tokens). Transfer T follows DESIGN §4.8: (mean score(B⊕A) −
mean score(B)) / (mean score(A) − mean score(B)) over prompt pairs, BCa bootstrap CIs over pairs."""

from __future__ import annotations

from harness.registry.multiplicity import FAMILIES
from harness.registry.power_plans import (
    POWER,
    RANK_TEST_INFLATION,
    PowerPlan,
    alpha_ci,
    correlation_plan,
    equivalence_plan,
    paired_plan,
)
from harness.registry.rules import P_BELOW, Kind, ci, ci_within
from harness.registry.shared import BEHAVIOURAL, RECBASE, T_WORDS
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["BEHAVIOUR_CLAIMS"]

BEHAVIOUR_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="reverse_patch_necessity", version=1, title="Reverse patch removes recursion", **BEHAVIOURAL,
        statement="Patching a baseline donor's K and V (second half of layers) into a recursive recipient "
                  "removes at least half of its recursive behaviour.",
        estimator="reverse transfer T_rev = (mean score(A⊕B) − mean score(A)) / (mean score(B) − mean score(A)) "
                  "with A recursive recipient, B baseline donor. CI: 95% BCa over pairs. p: paired Wilcoxon, "
                  "score(A⊕B) < score(A), one-sided.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.50), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour", power=paired_plan(0.9, 0.5, 0.5, 0.95, "T_rev", "behaviour"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    *(
        ClaimSpec(
            id=f"control_{name}_null", version=1, title=f"{label} control ≈ no transfer", **BEHAVIOURAL,
            statement=f"The {label.lower()} control patch (DESIGN §4.4) transfers no recursive behaviour.",
            estimator=f"{T_WORDS}, B⊕A = second-half KV patch with {how}; normalized by the same pair's natural "
                      "recursive − baseline gap. CI: 90% BCa bootstrap over pairs (= TOST at α = 0.05).",
            effect_type="transfer_ratio", kind=Kind.EQUIVALENCE,
            criteria=(ci_within(-0.10, 0.10),),
            ci_level=0.90, alpha=0.05, family=None, power=equivalence_plan(0.10, 0.25, 0.90),
            n_unit="prompt pairs", required_groups=RECBASE,
        )
        for name, label, how in (
            ("shuffled", "Shuffled", "the donor's K/V positions permuted within the span (one permutation for K and V)"),
            ("random", "Norm-matched random", "Gaussian K/V matched to the donor's norm per layer, head and position"),
            ("cross_baseline", "Cross-baseline", "a different baseline prompt as donor"),
        )
    ),
    ClaimSpec(
        id="geometry_transfers", version=1, title="Geometry transfers with the cache", **BEHAVIOURAL,
        statement="After a second-half KV patch, R_V of the patched generation moves toward the donor's.",
        estimator="G = (R_V(B⊕A) − R_V(B)) / (R_V(A) − R_V(B)), R_V on the same generated tokens the behaviour "
                  "score uses, V captured downstream of the patch (new positions only). CI: 95% BCa over "
                  "pairs. p: paired Wilcoxon, R_V(B⊕A) < R_V(B), one-sided.",
        effect_type="geometry_transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.25), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour", power=paired_plan(0.6, 0.25, 0.5, 0.95, "G", "behaviour"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="layer_quarter_localisation", version=1, title="Layer-quarter localisation", **BEHAVIOURAL,
        statement="The transfer is carried by the later layers: the best late quarter (Q3 or Q4) transfers "
                  "more than the best early quarter (Q1 or Q2).",
        estimator=f"D = max(T_Q3, T_Q4) − max(T_Q1, T_Q2), each T a {T_WORDS} for a KV patch of that layer quarter; "
                  "all four T are reported. CI: 95% percentile bootstrap over pairs.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0),),
        ci_level=0.95, alpha=None, family=None, power=paired_plan(0.5, 0.0, 0.6, 0.95, "D"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="token_quarter_localisation", version=1, title="Token-quarter localisation", **BEHAVIOURAL,
        statement="Patching the last 25 % of prompt positions transfers more than patching the first 25 %.",
        estimator=f"D = T(last 25 %) − T(first 25 %), second-half layers, each a {T_WORDS}. CI: 95% BCa over pairs. "
                  "p: paired Wilcoxon on per-pair scores, last > first, one-sided.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour", power=paired_plan(0.3, 0.0, 0.5, 0.95, "D", "behaviour", p_dz=0.6),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="level_behaviour_trend", version=1, title="Behaviour dose-response over recursion levels", **BEHAVIOURAL,
        statement="The recursive behaviour of natural continuations rises with the prompt's recursion level.",
        estimator="Spearman ρ between level (1–5) and the behaviour score of the natural continuation. CI: 95% "
                  "BCa over prompts. p: Spearman, one-sided (ρ > 0).",
        effect_type="spearman_rho", kind=Kind.TREND,
        criteria=(ci(">", 0.30), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour", power=correlation_plan(0.6, 0.3, "behaviour"),
        n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
    ),
    ClaimSpec(
        id="donor_level_transfer_trend", version=1, title="Transfer grows with donor level", **BEHAVIOURAL,
        statement="KV transfer onto the same baselines grows with the donor's recursion level L1…L5.",
        estimator="per baseline recipient (block), the behaviour score after a second-half KV patch from a "
                  "donor of each level L1…L5; estimate = mean within-block Spearman ρ(level, score), CI 95% "
                  "BCa over blocks; p: Page's L (levels ordered increasing).",
        effect_type="mean_block_spearman", kind=Kind.TREND,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour",
        power=PowerPlan(
            assumptions="per-block ρ mean 0.5 with SD 0.5; Page's L approximated by a one-sample t on the "
                        "per-block linear contrast with standardized mean 0.8 (n inflated by π/3)",
            parts=(
                part("95% CI above 0", "one-sample-t", 1.0, alpha_ci(0.95), POWER),
                part("Page's L p < alpha_test", "one-sample-t", 0.8, FAMILIES["behaviour"].alpha_per_test, POWER,
                     RANK_TEST_INFLATION),
            ),
        ),
        n_unit="baseline recipients", required_groups=RECBASE, requires_levels=True,
    ),
    ClaimSpec(
        id="peak_zone_vs_half", version=1, title="Peak zone vs second half", **BEHAVIOURAL,
        statement="A KV patch of the peak zone alone (late layer ± 2) transfers less than the full second half.",
        estimator=f"D = T(second half) − T(late ± 2 layers), each a {T_WORDS}. CI: 95% BCa over pairs.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0),),
        ci_level=0.95, alpha=None, family=None, power=paired_plan(0.4, 0.0, 0.5, 0.95, "D"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="self_ref_token_patch", version=1, title="Self-referential tokens carry transfer", **BEHAVIOURAL,
        statement="Patching only the positions of self-referential tokens (second-half layers) transfers at "
                  "least half of the natural gap.",
        estimator=f"{T_WORDS}, B⊕A = KV patch restricted to positions whose donor token is self-referential "
                  "(the lexicon of DESIGN §4.7a applied to the donor prompt). CI: 95% BCa over pairs.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.50),),
        ci_level=0.95, alpha=None, family=None, power=paired_plan(0.8, 0.5, 0.5, 0.95, "T"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="donor_pr_predicts_transfer", version=1, title="Donor PR predicts transfer", **BEHAVIOURAL,
        statement="Donors whose cached V has a lower participation ratio transfer more.",
        estimator="Spearman ρ over pairs between the donor's PR of cached V (late layer, prompt window) and the "
                  "pair's transfer (score(B⊕A) − score(B)), second-half KV patch. CI: 95% BCa over pairs. "
                  "p: Spearman, one-sided (ρ < 0).",
        effect_type="spearman_rho", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, alpha=0.01, family="behaviour", power=correlation_plan(-0.6, -0.3, "behaviour"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
)
