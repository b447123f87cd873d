"""The registered claims, as data: one table per multiplicity family, read by :mod:`harness.registry`.

- **Headline**: R_V contraction, V-patch null, KV transfer, α dose-response and single-layer failure
  (multiplicity families: geometry, none, kv_transfer, alpha_monotone, none), with the specificity of the KV
  transfer (kv_transfer_specific, not a headline claim itself) beside KV transfer in its family.
- **Geometry**: R_V against confound controls, its gap from prompt to generation, over recursion levels, its
  transfer with the cache, and attention entropy (the 'geometry' family, with the headline R_V contraction).
- **Behaviour**: the 'behaviour' family (R_V vs behaviour, reverse patch, token-quarter localisation, level
  trends, donor PR) and the CI-only claims beside it (the random and cross-baseline nulls, the order ablation,
  layer-quarter localisation, peak zone, self-referential tokens). Transfer T: docs/METHODS.md §7.
- **Anatomy**: deterministic invariants of the KV cache (shapes, injection, RoPE re-rotation) and the persona
  signature (the 'anatomy' family).
"""

from __future__ import annotations

from typing import Any

from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING, BEHAVIOUR_SCORE
from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.registry.pilot import pilot_sd
from harness.registry.power_plans import (
    POWER,
    RANK_TEST_INFLATION,
    PowerPlan,
    alpha_ci,
    correlation_plan,
    coverage_plan,
    equivalence_plan,
    g_plan,
    paired_plan,
)
from harness.registry.rules import P_BELOW, Kind, ci, ci_outside, ci_within, contrasts_above, steps_at_least, value
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["ANATOMY_CLAIMS", "BEHAVIOUR_CLAIMS", "BEHAVIOUR_DECODING", "GEOMETRY_CLAIMS", "HEADLINE_CLAIMS"]

# ------------------------------------------------------------------------------------------- shared pieces

BEHAVIOURAL: dict[str, Any] = dict(decoding=BEHAVIOUR_DECODING, behaviour_score=BEHAVIOUR_SCORE)
"""The ClaimSpec fields every behavioural claim shares: its decoding regime and deciding score."""

RV_WORDS = ("R_V = PR(V at the model's late layer) / PR(V at its early layer) over the last W = 16 content tokens "
            "of each prompt, eigenvalue PR, uncentered (docs/METHODS.md §2)")
"""How R_V is computed, for estimator text."""
T_WORDS = ("transfer T (docs/METHODS.md §7) of the registered behaviour score (P(recursive) from the frozen "
           "classifier trained on content labels, degeneration-gated; docs/METHODS.md §6), defined when the natural "
           "gap's CI lies beyond the registered minimum 0.10")
"""What the transfer T is, for estimator text."""
PILOT_WORDS = "pilot SD on prompts/pilot, harness.registry.data/pilot.json"
"""Where a planned n's per-pair SD comes from, for plan assumptions (the committed run named in the pilot module)."""
RECBASE = ("recursive", "baseline")
"""The prompt groups most claims require."""

# ----------------------------------------------------------------------------------------- headline

HEADLINE_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="rv_contraction", version=2, title="R_V contraction", headline=True,
        statement="Recursive self-observation prompts have lower R_V than baseline factual prompts.",
        estimator=f"Hedges g of R_V, recursive − baseline (independent prompts); {RV_WORDS}. CI: 95% BCa "
                  "bootstrap, each group resampled by prompt. p: Welch t, one-sided (recursive lower).",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -1.0), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="geometry", power=g_plan(-1.8, -1.0, "geometry"),
        n_unit="prompts per group", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="v_patch_null", version=5, title="V-patch null", headline=True, **BEHAVIOURAL,
        statement="Patching V (v_proj output) at the late layer, persistently during decoding, does not "
                  "transfer recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = baseline recipient with the recursive donor's V patched at the late layer "
                  "on aligned positions. CI: 90% BCa bootstrap over pairs (= TOST at α = 0.05).",
        effect_type="transfer_ratio", kind=Kind.EQUIVALENCE,
        criteria=(ci_within(-0.10, 0.10),),
        ci_level=0.90, significance_level=0.05, family=None, power=equivalence_plan(0.10, pilot_sd("v_patch_null"), 0.90, PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="kv_transfer", version=5, title="KV transfer (second half)", headline=True, **BEHAVIOURAL,
        statement="Patching the recursive donor's K and V over the second half of the layers into a "
                  "baseline recipient's cache transfers recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = KV patch, layers [L/2, L), all shared positions, α = 1. CI: 95% BCa "
                  "bootstrap over pairs. p: paired Wilcoxon signed-rank, score(B⊕A) > score(B), one-sided.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.80), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="kv_transfer",
        power=paired_plan(1.0, 0.80, pilot_sd("kv_transfer"), 0.95, "T", "kv_transfer", sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="kv_transfer_specific", version=3, title="KV transfer is specific to the recursive donor", **BEHAVIOURAL,
        statement="The second-half KV patch transfers at least half of the natural recursive − baseline gap beyond "
                  "what a non-recursive donor of the same token length transfers.",
        estimator="T_spec = (mean score(B⊕A) − mean score(B⊕C)) / (mean score(A) − mean score(B)), C = another "
                  "baseline prompt of B's token length (the cross-baseline donor), both patches second-half KV, "
                  f"all shared positions, α = 1; the difference T(B⊕A) − T(B⊕C) of two {T_WORDS}. CI: 95% BCa "
                  "bootstrap over pairs (clustered by prompt where a prompt recurs), numerator and gap resampled "
                  "together. p: paired Wilcoxon signed-rank, score(B⊕A) > score(B⊕C), one-sided. Details: T of the "
                  "norm-matched random and cross-baseline patches, and each patched condition's disruption size "
                  "(first-step KL(natural B ‖ patched), nats).",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.50), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="kv_transfer",
        power=paired_plan(1.0, 0.50, pilot_sd("kv_transfer_specific"), 0.95, "T_spec", "kv_transfer",
                          sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
        notes="the rule (at least half the natural gap beyond a same-length non-recursive donor) was fixed on "
              "2026-12-05, before any T_spec was computed",
    ),
    ClaimSpec(
        id="alpha_monotone", version=5, title="α dose-response", headline=True, delta=0.10, **BEHAVIOURAL,
        statement="Recursive behaviour rises monotonically with the mixing weight α ∈ {0, .25, .5, .75, 1} "
                  "of the second-half KV patch.",
        estimator=f"adjacent steps ΔT_k = T(α_k+1) − T(α_k) of the {T_WORDS}, each with a 95% BCa bootstrap CI "
                  "over pairs; the reported estimate is the weakest step (the one whose CI lower bound is lowest, "
                  "which the steps criterion tests) with its CI; T(1) − T(0) and every step in the details. "
                  "p: Page's L over pairs (blocks) × α (ordered increasing) on the per-pair behaviour scores.",
        effect_type="transfer_difference", kind=Kind.TREND,
        criteria=(P_BELOW, steps_at_least(-0.10)),
        ci_level=0.95, significance_level=0.01, family="alpha_monotone",
        power=PowerPlan(
            assumptions="Page's L approximated by a one-sample t on each pair's linear α contrast with "
                        "standardized mean 0.8 (n inflated by π/3 for a rank test); steps: true step +0.25 "
                        f"(T from 0 to 1 linearly), per-pair step SD {pilot_sd('alpha_monotone'):g} ({PILOT_WORDS}), "
                        "all four steps jointly at power 0.8",
            parts=(
                part("Page's L p < alpha_test", "one-sample-t", 0.8, MULTIPLICITY_FAMILIES["alpha_monotone"].alpha_per_test,
                     POWER, RANK_TEST_INFLATION),
                part("each step CI ≥ −0.10", "one-sample-t", (0.25 + 0.10) / pilot_sd("alpha_monotone"), alpha_ci(0.95),
                     POWER ** 0.25),
            ),
        ),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="single_layer_fails", version=5, title="Single-layer KV patch fails", headline=True, **BEHAVIOURAL,
        statement="Patching only the late layer's K and V does not transfer recursive behaviour.",
        estimator=f"{T_WORDS}, B⊕A = KV patch at the late layer only, all shared positions, α = 1. "
                  "CI: 95% BCa bootstrap over pairs.",
        effect_type="transfer_ratio", kind=Kind.NON_SUPERIORITY,
        criteria=(ci("<", 0.20),),
        ci_level=0.95, significance_level=None, family=None, power=paired_plan(0.0, 0.20, pilot_sd("single_layer_fails"), 0.95, "T", sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
)

# ----------------------------------------------------------------------------------------- geometry

GEOMETRY_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="rv_gap_fades_in_generation", version=3, title="R_V gap fades in generation", **BEHAVIOURAL,
        statement="The recursive − baseline R_V gap present over the prompt's last tokens (decode step 0) shrinks "
                  "once the window holds generated tokens only (decode step 40).",
        estimator="per exact-length pair, d(s) = R_V(recursive, s) − R_V(baseline, s), R_V at decode step s over "
                  "the last 16 non-special positions held then (step 0: the prompt's last 16 tokens; step 40: "
                  "generated tokens g_24…g_39), natural continuations; S = |mean d(0)| − |mean d(40)| (R_V "
                  "units) over pairs whose two continuations reach step 40, defined when the step-0 gap lies in the "
                  "registered direction (recursive lower R_V: the 95% t-interval of mean d(0) below 0). CI: 95% BCa "
                  "over pairs. p: exact sign-flip permutation test of the paired change d(40) − d(0) (swapping d(0) "
                  "and d(40) within a pair flips it, so it is exchangeable when the gap does not change), one-sided "
                  "(the gap moves up toward 0).",
        effect_type="rv_gap_shrinkage", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="geometry",
        power=paired_plan(0.5, 0.0, 1.0, 0.95, "S in units of its per-pair SD", "geometry", p_dz=0.5),
        n_unit="prompt pairs", required_groups=RECBASE,
        notes="replaces geometry_at_encoding (v1), whose step-0 estimate was rv_contraction's again",
    ),
    ClaimSpec(
        id="level_rv_trend", version=2, title="R_V dose-response over recursion levels",
        statement="R_V falls as the recursion level of the prompt rises from L1 to L5.",
        estimator=f"partial Spearman ρ between level (1–5) and R_V over recursive prompts, prompt length in "
                  f"tokens partialled out; {RV_WORDS}. CI: 95% BCa over prompts. p: t-test of the partial ρ, "
                  "one-sided (ρ < 0), n − 3 df. The plain Spearman ρ is reported beside it.",
        effect_type="partial_spearman_rho", kind=Kind.TREND,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="geometry", power=correlation_plan(-0.6, -0.3, "geometry"),
        n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
    ),
    ClaimSpec(
        id="attention_entropy_differs", version=2, title="Attention entropy differs",
        statement="Mean attention entropy at the late layer differs between recursive and baseline prompts.",
        estimator="Hedges g of per-prompt attention entropy (nats, averaged over the late layer's query heads "
                  "and the last 16 query positions), recursive − baseline; per-head g in details. CI: 95% BCa "
                  "by prompt. p: Welch t, two-sided.",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci_outside(-0.5, 0.5), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="geometry", power=g_plan(1.3, 0.5, "geometry", two_sided_p=True),
        n_unit="prompts per group", required_groups=RECBASE,
    ),
    *(
        ClaimSpec(
            id=f"rv_survives_{name}", version=2, title=f"R_V contraction vs {label}",
            statement=f"Recursive prompts have lower R_V than {label} prompts ({why}).",
            estimator=f"Hedges g of R_V, recursive − {group}; {RV_WORDS}. CI: 95% BCa by prompt. p: Welch t, one-sided.",
            effect_type="hedges_g", kind=Kind.SUPERIORITY,
            criteria=(ci("<", -0.50), P_BELOW),
            ci_level=0.95, significance_level=0.01, family="geometry", power=g_plan(-1.3, -0.5, "geometry"),
            n_unit="prompts per group", required_groups=("recursive", group),
            notes=note,
        )
        for name, group, label, why, note in (
            ("long_control", "long_control", "length-matched long non-recursive",
             "length confound", "recursive side restricted to L4–L5, the levels long_control is matched to"),
            ("repetition", "repetitive", "repetitive-structure", "repetition confound", ""),
            ("about_recursion", "about_recursion", "third-person 'about recursion'",
             "topic confound: talk about recursion without self-observation", ""),
        )
    ),
    ClaimSpec(
        id="geometry_transfers", version=3, title="Geometry transfers with the cache", **BEHAVIOURAL,
        statement="After a second-half KV patch, R_V on the recipient's own continuation moves toward the donor's.",
        estimator="G = (R_V(B⊕A) − R_V(B)) / (R_V(A) − R_V(B)), all three R_V on the same token ids: B's natural "
                  "continuation teacher-forced through B's cache, the patched B⊕A cache and A's cache (V downstream "
                  "of the patch, generated positions only); a pair is kept when B's continuation has ≥ 16 tokens. "
                  "CI: 95% BCa over pairs. p: paired Wilcoxon of R_V(B⊕A) − R_V(B), one-sided in the direction of "
                  "the natural gap R_V(A) − R_V(B).",
        effect_type="geometry_transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.25), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="geometry", power=paired_plan(0.6, 0.25, 0.5, 0.95, "G", "geometry"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
)

# ---------------------------------------------------------------------------------------- behaviour

BEHAVIOUR_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="rv_behaviour_correlation", version=4, title="R_V vs behaviour", **BEHAVIOURAL,
        statement="Within recursive prompts, lower R_V goes with more recursive behaviour in the natural "
                  "continuation.",
        estimator="Spearman ρ between per-prompt R_V (prompt window) and the behaviour score of its natural "
                  "continuation, within the recursive group only (no pooling across groups). CI: 95% BCa over "
                  "prompts. p: Spearman, one-sided (ρ < 0).",
        effect_type="spearman_rho", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="behaviour", power=correlation_plan(-0.6, -0.3, "behaviour"),
        n_unit="recursive prompts", required_groups=("recursive",),
    ),
    ClaimSpec(
        id="reverse_patch_necessity", version=5, title="Reverse patch removes recursion", **BEHAVIOURAL,
        statement="Patching a baseline donor's K and V (second half of layers) into a recursive recipient "
                  "removes at least half of its recursive behaviour, and more than the cache of a recursive donor of "
                  "the same token length does (a fluent foreign cache that disrupts the recipient alike).",
        estimator="reverse transfer T_rev = (mean score(A⊕B) − mean score(A)) / (mean score(B) − mean score(A)) "
                  "with A recursive recipient, B baseline donor. CI: 95% BCa over pairs. p: paired Wilcoxon, "
                  "score(A⊕B) < score(A), one-sided. Contrasts C_X = (mean score(A⊕X) − mean score(A⊕B)) / "
                  "(mean score(A) − mean score(B)) = T_rev(B) − T_rev(X) for X = A' (another recursive prompt of "
                  "A's token length as donor: recursive_donor, the disruption-matched control), a 95% BCa paired "
                  "bootstrap over pairs (clustered by prompt where a prompt recurs), numerator and gap resampled "
                  "together. Details, never deciding: the same for X = R (Gaussian K/V with the baseline donor's norm "
                  "per layer, KV head and position, whose gibberish the score puts near 0) and each condition's "
                  "first-step disruption.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.50), P_BELOW, contrasts_above(0.0, ("recursive_donor",))),
        ci_level=0.95, significance_level=0.01, family="behaviour",
        power=PowerPlan(
            assumptions=f"true T_rev = 0.9, per-pair SD {pilot_sd('reverse_patch_necessity'):g} ({PILOT_WORDS}); "
                        "paired score difference d_z = 0.8 (rank-test n inflated by π/3); the contrast's true "
                        "value 0.6 (a foreign recursive cache removes 0.3 of the gap) with per-pair SD "
                        f"{pilot_sd('reverse_contrast'):g} ({PILOT_WORDS}), at power 0.8",
            parts=(
                *paired_plan(0.9, 0.5, pilot_sd("reverse_patch_necessity"), 0.95, "T_rev", "behaviour").parts,
                part("contrast 95% CI above 0", "one-sample-t", 0.6 / pilot_sd("reverse_contrast"), alpha_ci(0.95), POWER),
            ),
        ),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    *(
        ClaimSpec(
            id=f"control_{name}_null", version=5, title=f"{label} control transfers no behaviour", **BEHAVIOURAL,
            statement=f"The {label.lower()} control patch (docs/METHODS.md §4), a null that carries none of the "
                      "recursive donor's content, transfers no recursive behaviour: T stays below +0.10 (a control "
                      "that lowers the score is not a transfer).",
            estimator=f"{T_WORDS}, B⊕A = second-half KV patch with {how}; normalized by the same pair's natural "
                      "recursive − baseline gap. CI: 90% BCa bootstrap over pairs; its upper bound is a one-sided "
                      "95% bound (non-superiority at α = 0.05).",
            effect_type="transfer_ratio", kind=Kind.NON_SUPERIORITY,
            criteria=(ci("<", 0.10),),
            ci_level=0.90, significance_level=None, family=None,
            power=paired_plan(0.0, 0.10, pilot_sd(f"control_{name}_null"), 0.90, "T", sd_source=PILOT_WORDS),
            n_unit="prompt pairs", required_groups=RECBASE,
        )
        for name, label, how in (
            ("random", "Norm-matched random", "Gaussian K/V matched to the donor's norm per layer, head and position"),
            ("cross_baseline", "Cross-baseline", "a different baseline prompt of the same token length as donor"),
        )
    ),
    ClaimSpec(
        id="kv_order_ablation", version=3, title="Transfer does not depend on position order", **BEHAVIOURAL,
        statement="The donor's cache transfers about as much whatever the order of its positions: permuting the "
                  "donor's K/V positions (K and V jointly, keys re-rotated) changes T by less than 0.20.",
        estimator=f"D = T(main) − T(order-ablated), each a {T_WORDS}; order-ablated = the second-half KV patch with "
                  "the recursive donor's positions permuted within the span by a seeded derangement per pair (one "
                  "permutation for K and V and every layer, keys re-rotated to their new positions), which keeps "
                  "the donor's whole set of K/V vectors. CI: 90% BCa bootstrap over pairs, numerator and gap "
                  "resampled together (= TOST at α = 0.05).",
        effect_type="transfer_difference", kind=Kind.EQUIVALENCE,
        criteria=(ci_within(-0.20, 0.20),),
        ci_level=0.90, significance_level=0.05, family=None,
        power=equivalence_plan(0.20, pilot_sd("kv_order_ablation"), 0.90, PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
        notes="replaces control_shuffled_null (v2), which treated an order ablation as a null",
    ),
    ClaimSpec(
        id="layer_quarter_localisation", version=5, title="Layer-quarter localisation", **BEHAVIOURAL,
        statement="The transfer is carried by the later layers: the best late quarter (Q3 or Q4) transfers "
                  "more than the best early quarter (Q1 or Q2).",
        estimator=f"D = max(T_Q3, T_Q4) − max(T_Q1, T_Q2), each T a {T_WORDS} for a KV patch of that layer quarter; "
                  "all four T are reported. CI: 95% percentile bootstrap over pairs.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0),),
        ci_level=0.95, significance_level=None, family=None, power=paired_plan(0.5, 0.0, pilot_sd("layer_quarter_localisation"), 0.95, "D", sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="token_quarter_localisation", version=5, title="Token-quarter localisation", **BEHAVIOURAL,
        statement="Patching the last 25 % of prompt positions transfers more than patching the first 25 %.",
        estimator=f"D = T(last 25 %) − T(first 25 %), second-half layers, each a {T_WORDS}. CI: 95% BCa over pairs. "
                  "p: paired Wilcoxon on per-pair scores, last > first, one-sided.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="behaviour", power=paired_plan(0.3, 0.0, pilot_sd("token_quarter_localisation"), 0.95, "D", "behaviour", p_dz=0.6,
                                                                     sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="level_behaviour_trend", version=4, title="Behaviour dose-response over recursion levels", **BEHAVIOURAL,
        statement="The recursive behaviour of natural continuations rises with the prompt's recursion level.",
        estimator="partial Spearman ρ between level (1–5) and the behaviour score of the natural continuation, "
                  "prompt length in tokens partialled out. CI: 95% BCa over prompts. p: t-test of the partial ρ, "
                  "one-sided (ρ > 0), n − 3 df. The plain Spearman ρ is reported beside it.",
        effect_type="partial_spearman_rho", kind=Kind.TREND,
        criteria=(ci(">", 0.30), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="behaviour", power=correlation_plan(0.6, 0.3, "behaviour"),
        n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
    ),
    ClaimSpec(
        id="donor_level_transfer_trend", version=5, title="Transfer grows with donor level", **BEHAVIOURAL,
        statement="KV transfer onto the same baselines grows with the donor's recursion level L1…L5.",
        estimator="per baseline recipient (block), the behaviour score after a second-half KV patch from a "
                  "donor of each level L1…L5; estimate = mean within-block Spearman ρ(level, score), CI 95% "
                  "BCa over blocks; p: Page's L (levels ordered increasing).",
        effect_type="mean_block_spearman", kind=Kind.TREND,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="behaviour",
        power=PowerPlan(
            assumptions=f"per-block ρ mean 0.5 with SD {pilot_sd('donor_level_transfer_trend'):g} ({PILOT_WORDS}); "
                        "Page's L approximated by a one-sample t on the "
                        "per-block linear contrast with standardized mean 0.8 (n inflated by π/3)",
            parts=(
                part("95% CI above 0", "one-sample-t", 0.5 / pilot_sd("donor_level_transfer_trend"), alpha_ci(0.95), POWER),
                part("Page's L p < alpha_test", "one-sample-t", 0.8, MULTIPLICITY_FAMILIES["behaviour"].alpha_per_test, POWER,
                     RANK_TEST_INFLATION),
            ),
        ),
        n_unit="baseline recipients", required_groups=RECBASE, requires_levels=True,
    ),
    ClaimSpec(
        id="peak_zone_vs_half", version=5, title="Peak zone vs second half", **BEHAVIOURAL,
        statement="A KV patch of the peak zone alone (late layer ± 2) transfers less than the full second half.",
        estimator=f"D = T(second half) − T(late ± 2 layers), each a {T_WORDS}. CI: 95% BCa over pairs.",
        effect_type="transfer_difference", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0),),
        ci_level=0.95, significance_level=None, family=None, power=paired_plan(0.4, 0.0, pilot_sd("peak_zone_vs_half"), 0.95, "D", sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="self_ref_token_patch", version=5, title="Self-referential tokens carry transfer", **BEHAVIOURAL,
        statement="Patching only the positions of self-referential tokens (second-half layers) transfers at "
                  "least half of the natural gap.",
        estimator=f"{T_WORDS}, B⊕A = KV patch restricted to positions whose donor token is self-referential "
                  "(the lexicon of docs/METHODS.md §6 applied to the donor prompt), over every pair of the bank whose "
                  "donor has such a position (planned n is a floor, not a cap). CI: 95% BCa over pairs.",
        effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
        criteria=(ci(">=", 0.50),),
        ci_level=0.95, significance_level=None, family=None, power=paired_plan(0.8, 0.5, pilot_sd("self_ref_token_patch"), 0.95, "T", sd_source=PILOT_WORDS),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
    ClaimSpec(
        id="donor_pr_predicts_transfer", version=4, title="Donor PR predicts transfer", **BEHAVIOURAL,
        statement="Donors whose cached V has a lower participation ratio transfer more.",
        estimator="Spearman ρ over pairs between the donor's PR of cached V (late layer, prompt window) and the "
                  "pair's transfer (score(B⊕A) − score(B)), second-half KV patch. CI: 95% BCa over pairs. "
                  "p: Spearman, one-sided (ρ < 0).",
        effect_type="spearman_rho", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="behaviour", power=correlation_plan(-0.6, -0.3, "behaviour"),
        n_unit="prompt pairs", required_groups=RECBASE,
    ),
)

# ------------------------------------------------------------------------------------------ anatomy

ANATOMY_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="cache_shapes_match_config", version=1, title="Cache shapes and bytes per token",
        statement="Every layer's K and V cache has the shape and bytes per token that the model config implies.",
        estimator="number of (layer, K|V) entries whose shape (batch, n_kv_heads, tokens, head_dim) or bytes "
                  "per token differ from the config (sliding-window layers: tokens capped at the window).",
        effect_type="mismatch_count", kind=Kind.INVARIANT,
        criteria=(value("<=", 0),),
        ci_level=None, significance_level=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
    ),
    ClaimSpec(
        id="cache_injection_equals_text", version=2, title="Injected cache equals fed text",
        statement="Decoding from an injected (copied) cache gives the same next-token logits as feeding the text.",
        estimator="max |Δ logit| over prompts and vocabulary between decoding from a cloned, re-injected cache "
                  "and a fresh forward pass over the full text (fp32). On a model with sliding-window layers the "
                  "prompts include one longer than the window (config sliding_window) by at least 64 tokens "
                  "(baseline texts joined in id order), so the injected cache holds evicted positions.",
        effect_type="max_abs_logit_diff", kind=Kind.INVARIANT,
        criteria=(value("<=", 1e-4),),
        ci_level=None, significance_level=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
        notes="tolerance is for float32; a bf16/fp16 run needs a new version with a dtype tolerance",
    ),
    ClaimSpec(
        id="rope_rerotation", version=1, title="RoPE re-rotation moves a cache",
        statement="Re-rotating cached keys by Δ positions gives the cache that encoding at the shifted "
                  "positions would give.",
        estimator="max |Δ logit| between decoding from the re-rotated cache and from a cache computed with "
                  "position ids shifted by Δ (fp32).",
        effect_type="max_abs_logit_diff", kind=Kind.INVARIANT,
        criteria=(value("<=", 1e-3),),
        ci_level=None, significance_level=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
    ),
    ClaimSpec(
        id="persona_signature", version=2, title="Persona signature in the cache",
        statement="The KV cache of the user turn identifies which persona preceded it across paraphrases of the "
                  "persona's system prompt, better than the same readout of random-weight copies of the model "
                  "(all system prompts of equal token length).",
        estimator="items: a persona's system prompt in one of ≥ 2 wordings (paraphrases) + a user prompt (first 5 "
                  "user prompts per persona × wording cell). Feature: the user turn's cached V (late layer, mean "
                  "over the positions after the system prompt), centred per user prompt. Readout: nearest centroid "
                  "(Euclidean) trained on the other wordings and the other user prompts. The same pipeline runs on "
                  "2 random-weight copies (from_config of the model's config, seeds derived from the claim seed, "
                  "same tokenizer). Unit: the (persona, wording) cell. estimate = mean over cells of accuracy(model) "
                  "− mean accuracy(copies). CI: 95% Student t over cells. p: the larger of two exact one-sided "
                  "sign-flip permutation tests over cells (model accuracy > chance 1/k; model > copies), an "
                  "intersection-union test. Chance, the copies' and a length-only baseline's accuracy are in the "
                  "details. Needs ≥ 2 wordings per persona and equal system-segment token counts.",
        effect_type="accuracy_minus_random_weights", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.0), P_BELOW),
        ci_level=0.95, significance_level=0.01, family="anatomy",
        power=PowerPlan(
            assumptions="pilot: this design's first runs on the shipped bank (random copies seeded 101 and 102, "
                        "5 users per cell) gave per-cell differences d with mean 0.54 and SD 0.50 on smollm2-135m "
                        "(0.78 and 0.36 on gemma3-270m); planned on SmolLM2's, one-sample t approximating the "
                        "permutation test. The pilot used the same bank, so it is not independent of later runs",
            parts=(
                part("95% CI above 0", "one-sample-t", 0.54 / 0.50, alpha_ci(0.95), POWER),
                part("permutation p < alpha_test", "one-sample-t", 0.54 / 0.50,
                     MULTIPLICITY_FAMILIES["anatomy"].alpha_per_test, POWER),
            ),
        ),
        n_unit="persona × wording cells", required_groups=("persona",),
    ),
)
