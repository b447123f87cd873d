"""The five headline claims with the decision rules of DESIGN §5: R_V contraction, V-patch null, KV transfer,
α dose-response and single-layer failure (their multiplicity families: geometry, none, kv_transfer,
alpha_monotone, none)."""

from __future__ import annotations

from harness.registry.multiplicity import FAMILIES
from harness.registry.power_plans import (
    POWER,
    RANK_TEST_INFLATION,
    PowerPlan,
    alpha_ci,
    equivalence_plan,
    g_plan,
    paired_plan,
)
from harness.registry.rules import P_BELOW, Kind, ci, ci_within, steps_at_least
from harness.registry.shared import BEHAVIOURAL, RECBASE, RV_WORDS, T_WORDS
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["HEADLINE_CLAIMS"]

HEADLINE_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="rv_contraction", version=1, title="R_V contraction", headline=True,
        statement="Recursive self-observation prompts have lower R_V than baseline factual prompts.",
        estimator=f"Hedges g of R_V, recursive − baseline (independent prompts); {RV_WORDS}. CI: 95% BCa "
                  "bootstrap, each group resampled by prompt. p: Welch t, one-sided (recursive lower).",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -1.0), P_BELOW),
        ci_level=0.95, alpha=0.01, family="geometry", power=g_plan(-1.8, -1.0, "geometry"),
        n_unit="prompts per group", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="v_patch_null", version=1, title="V-patch null", headline=True, **BEHAVIOURAL,
        statement="Patching V (v_proj output) at the late layer, persistently during decoding, does not "
                  "transfer recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = baseline recipient with the recursive donor's V patched at the late layer "
                  "on aligned positions. CI: 90% BCa bootstrap over pairs (= TOST at α = 0.05).",
        effect_type="transfer_ratio", kind=Kind.EQUIVALENCE,
        criteria=(ci_within(-0.10, 0.10),),
        ci_level=0.90, alpha=0.05, family=None, power=equivalence_plan(0.10, 0.25, 0.90),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="kv_transfer", version=1, title="KV transfer (second half)", headline=True, **BEHAVIOURAL,
        statement="Patching the recursive donor's K and V over the second half of the layers into a "
                  "baseline recipient's cache transfers recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = KV patch, layers [L/2, L), all shared positions, α = 1. CI: 95% BCa "
                  "bootstrap over pairs. p: paired Wilcoxon signed-rank, score(B⊕A) > score(B), one-sided.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.80), P_BELOW),
        ci_level=0.95, alpha=0.01, family="kv_transfer",
        power=paired_plan(1.0, 0.80, 0.5, 0.95, "T", "kv_transfer"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="alpha_monotone", version=1, title="α dose-response", headline=True, delta=0.10, **BEHAVIOURAL,
        statement="Recursive behaviour rises monotonically with the mixing weight α ∈ {0, .25, .5, .75, 1} "
                  "of the second-half KV patch.",
        estimator=f"{T_WORDS} at each α; Page's L over pairs (blocks) × α (ordered increasing) gives p; "
                  "adjacent steps T(α_k+1) − T(α_k) each get a 95% BCa bootstrap CI over pairs. The estimate "
                  "is T(1) − T(0).",
        effect_type="page_L_with_steps", kind=Kind.TREND,
        criteria=(P_BELOW, steps_at_least(-0.10)),
        ci_level=None, alpha=0.01, family="alpha_monotone",
        power=PowerPlan(
            assumptions="Page's L approximated by a one-sample t on each pair's linear α contrast with "
                        "standardized mean 0.8 (n inflated by π/3 for a rank test); steps: true step +0.25 "
                        "(T from 0 to 1 linearly), per-pair step SD 0.25, all four steps jointly at power 0.8",
            parts=(
                part("Page's L p < alpha_test", "one-sample-t", 0.8, FAMILIES["alpha_monotone"].alpha_per_test,
                     POWER, RANK_TEST_INFLATION),
                part("each step CI ≥ −0.10", "one-sample-t", (0.25 + 0.10) / 0.25, alpha_ci(0.95),
                     POWER ** 0.25),
            ),
        ),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="single_layer_fails", version=1, title="Single-layer KV patch fails", headline=True, **BEHAVIOURAL,
        statement="Patching only the late layer's K and V does not transfer recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = KV patch at the late layer only, all shared positions, α = 1. "
                  "CI: 95% BCa bootstrap over pairs.",
        effect_type="transfer_ratio", kind=Kind.NON_SUPERIORITY,
        criteria=(ci("<", 0.20),),
        ci_level=0.95, alpha=None, family=None, power=paired_plan(0.0, 0.20, 0.25, 0.95, "T"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
)
