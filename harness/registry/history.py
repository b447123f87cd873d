"""Why each claim's version moved: the registry's change log, one entry per version above 1.

A claim's ``version`` (:class:`~harness.registry.spec.ClaimSpec`) must equal 1 + the number of its entries here
(checked when the registry is built), so a change that can move a verdict cannot be made without its reason.
Each entry is (version, date, reason); the report prints them in methods.md, a reader can see in claims.json which
version produced a verdict.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["VERSION_HISTORY", "VersionChange", "changes_of", "version_history_problem"]


class VersionChange(NamedTuple):
    """One version step of a claim: the version it introduced, the date (ISO, UTC) and the reason in words."""

    version: int
    date: str
    reason: str


DECISION_LOGIC = ("three-valued decisions: a p criterion with p ≥ α_test is no longer false by itself (that made "
                  "FAIL out of a CI straddling the bound); FAIL needs the CI clearly outside the claimed region or "
                  "the claimed direction contradicted (one-sided p ≥ 1 − α_test); otherwise INCONCLUSIVE "
                  "(issue 11, item 1; harness.claim.verdicts)")
"""The decision-logic change of 2026-12-05: it can move the verdict of every claim with a p criterion."""

LENGTH_COVARIATE = ("recursion level is confounded with prompt length in the bank (L1–L3 prompts 26–28 words, "
                    "L4–L5 39–42): the estimate becomes the partial Spearman ρ(level, outcome | prompt length in "
                    "tokens), the plain ρ is reported beside it (issue 11, item 6)")

SAME_TOKENS = ("v1 compared R_V of three different generated texts, dropped pairs by condition (a pair left when any "
               "of its three continuations had < 16 tokens) and always tested R_V(B⊕A) < R_V(B), which FAILed a "
               "model whose natural gap is positive; v2 teacher-forces B's natural continuation through all three "
               "caches (same tokens), keeps pairs by B's continuation alone, tests in the direction of the natural "
               "gap and moves the claim to the geometry family, where its R_V measure belongs: α_test 0.01/6 → 0.01/8, planned "
               "n re-solved from the same assumptions (issue 11, items 2, 8)")

PILOT = ("planned n re-solved from the per-pair SD the committed run measured (harness.registry.pilot) instead of an "
         "assumed SD the data contradicted; where the bank cannot supply that n the claim is INCONCLUSIVE and its "
         "explanation states the n it needs (issue 11, item 8)")

SCORE_AND_DECODING = ("registered behaviour score replaced by the specific classifier score (P(recursive | text), "
                      "trained on a hash-fixed split, validated on held-out disruption negatives; the clipped "
                      "embedding margin gave word salad and random-KV gibberish 0.07–0.35) and EOS suppressed on "
                      "the first 16 decode steps (empty continuations were 31–70 % of some conditions) (issue 10)")
"""The issue-10 change of 2026-12-05: it moves every behavioural number (new score, new continuations)."""

SPECIFIC_JOINS_FAMILY = ("kv_transfer_specific joined the kv_transfer multiplicity family: m 1 → 2, α_test "
                         "0.01 → 0.005, planned n re-solved from the same assumptions (issue 10)")

REVERSE_CONTRASTS = ("the reverse patch must also beat a recursive donor of the same token length (A⊕A') and "
                     "random KV with the baseline donor's norms (A⊕noise): each contrast C_X = (mean s(A⊕X) − mean "
                     "s(A⊕B)) / (mean s(A) − mean s(B)) needs its 95% BCa CI above 0, since v2 passed whenever any "
                     "foreign cache disrupted the recursive recipient; pairs now need another recursive prompt of "
                     "their length, and the planned n adds the contrasts' power part (issue 10)")

TODAY = "2026-12-05"


def _v2(*reasons: str) -> tuple[VersionChange, ...]:
    return (VersionChange(2, TODAY, "; ".join(reasons)),)


def _then(earlier: tuple[VersionChange, ...], *reasons: str, date: str = TODAY) -> tuple[VersionChange, ...]:
    """``earlier`` plus the next version, for ``reasons``."""
    version = 2 + len(earlier)
    return (*earlier, VersionChange(version, date, "; ".join(reasons)))


BEHAVIOURAL_CLAIMS = (
    "v_patch_null", "kv_transfer", "alpha_monotone", "single_layer_fails", "rv_gap_fades_in_generation",
    "geometry_transfers", "rv_behaviour_correlation", "reverse_patch_necessity", "control_random_null",
    "control_cross_baseline_null", "layer_quarter_localisation", "token_quarter_localisation",
    "level_behaviour_trend", "donor_level_transfer_trend", "peak_zone_vs_half", "self_ref_token_patch",
    "donor_pr_predicts_transfer",
)
"""The claims registered with the behavioural decoding regime and score that existed before issue 10 (the new
kv_transfer_specific and kv_order_ablation start at version 1 under them)."""


_BEFORE_ISSUE_10: dict[str, tuple[VersionChange, ...]] = {
    **{claim: _v2(DECISION_LOGIC) for claim in (
        "rv_contraction", "attention_entropy_differs", "rv_survives_long_control", "rv_survives_repetition",
        "rv_survives_about_recursion", "donor_pr_predicts_transfer",
    )},
    "persona_signature": _v2(DECISION_LOGIC, (
        "v1 passed for any attention model (leave-one-user-out accuracy of a random-weight toy-llama 0.975–1.0: the "
        "system prompts' tokens differ, not a persona); v2 trains on some wordings of each persona's system prompt "
        "and tests on disjoint paraphrases of equal token length, against 2 random-weight copies of the same config, "
        "per (persona, wording) cell, with chance and a length-only baseline reported (issue 11, item 3). Chosen "
        "after seeing data, stated for readers: the paraphrase set was rewritten after random-weight toy results, "
        "and the per-user-prompt centring of the feature was added after SmolLM2's first result (accuracy 0.66 "
        "without, 1.0 with) because the random copies collapsed onto one persona without it; the power plan's "
        "pilot is the same bank")),
    "cache_injection_equals_text": _v2(
        "on models with sliding-window layers the check adds one prompt longer than the window (by 64 tokens) so the "
        "eviction path is exercised: Gemma 3's prompts were 30–60 tokens against a 512-token window (issue 11, "
        "item 5)"),
    **{claim: _v2(DECISION_LOGIC, PILOT) for claim in (
        "kv_transfer", "alpha_monotone", "reverse_patch_necessity", "token_quarter_localisation",
        "donor_level_transfer_trend",
    )},
    **{claim: _v2(PILOT) for claim in (
        "v_patch_null", "single_layer_fails", "control_random_null",
        "control_cross_baseline_null", "layer_quarter_localisation", "peak_zone_vs_half", "self_ref_token_patch",
    )},
    "rv_behaviour_correlation": _v2(DECISION_LOGIC, "moved from the geometry to the behaviour multiplicity family "
                                    "(it tests behaviour against R_V; geometry_transfers moved the other way): "
                                    "α_test 0.01/8 → 0.01/6, planned n re-solved from the same assumptions"),
    "level_rv_trend": _v2(DECISION_LOGIC, LENGTH_COVARIATE),
    "level_behaviour_trend": _v2(DECISION_LOGIC, LENGTH_COVARIATE),
    "geometry_transfers": _v2(DECISION_LOGIC, SAME_TOKENS),
}
"""The version changes up to issue 10 (control_shuffled_null, v2, left the registry then: see kv_order_ablation)."""

_ISSUE_10_EXTRA: dict[str, tuple[str, ...]] = {
    "kv_transfer": (SPECIFIC_JOINS_FAMILY,),
    "reverse_patch_necessity": (REVERSE_CONTRASTS,),
}

_UP_TO_ISSUE_10: dict[str, tuple[VersionChange, ...]] = {
    **_BEFORE_ISSUE_10,
    **{claim: _then(_BEFORE_ISSUE_10.get(claim, ()), SCORE_AND_DECODING, *_ISSUE_10_EXTRA.get(claim, ()))
       for claim in BEHAVIOURAL_CLAIMS},
}

CONTENT_SCORE = ("the registered behaviour score is classifier version 2: labels read from each text's content "
                 "against a written rubric (two blind passes, κ reported, disagreements adjudicated) instead of the "
                 "producing prompt's group, trained on continuations of a prompt set disjoint from the bank plus "
                 "hand-written texts, so no text a claim scores is training data; validated leave-one-source-out "
                 "(reports/scorer-validation) (issue 22)")
"""The issue-22 change of 2026-12-07: it moves every number that the registered score decides."""

MINIMUM_GAP = ("T is undefined, and the verdict INCONCLUSIVE, unless the natural donor − recipient gap's CI (at the "
               "claim's CI level) lies "
               "beyond the registered minimum 0.10 (harness.foundation.behavioural_regime.MIN_NATURAL_GAP): a model "
               "whose natural recursive continuations are not recursive by the score has nothing to transfer "
               "(issue 22)")

SCORE_DECIDED_CLAIMS = (
    "v_patch_null", "kv_transfer", "kv_transfer_specific", "alpha_monotone", "single_layer_fails",
    "rv_behaviour_correlation", "reverse_patch_necessity", "control_random_null", "control_cross_baseline_null",
    "kv_order_ablation", "layer_quarter_localisation", "token_quarter_localisation", "level_behaviour_trend",
    "donor_level_transfer_trend", "peak_zone_vs_half", "self_ref_token_patch", "donor_pr_predicts_transfer",
)
"""The claims whose deciding estimate is computed from the registered behaviour score (geometry_transfers and
rv_gap_fades_in_generation decode under the behavioural regime but decide on R_V)."""

GAP_RATIO_CLAIMS = (
    "v_patch_null", "kv_transfer", "kv_transfer_specific", "alpha_monotone", "single_layer_fails",
    "reverse_patch_necessity", "control_random_null", "control_cross_baseline_null", "kv_order_ablation",
    "layer_quarter_localisation", "token_quarter_localisation", "peak_zone_vs_half", "self_ref_token_patch",
)
"""Those of them whose estimate is a transfer ratio in units of the natural gap (they take the minimum-gap rule)."""

_UP_TO_ISSUE_22: dict[str, tuple[VersionChange, ...]] = {
    **_UP_TO_ISSUE_10,
    **{claim: _then(_UP_TO_ISSUE_10.get(claim, ()), CONTENT_SCORE, *((MINIMUM_GAP,) if claim in GAP_RATIO_CLAIMS else ()),
                    date="2026-12-07")
       for claim in SCORE_DECIDED_CLAIMS},
}
"""The version changes up to issue 22."""

NEW_PILOT = ("planned n re-solved from a pilot on the registered score (classifier v2) over pilot prompts disjoint "
             "from the bank and the scorer corpus (prompts/pilot/, harness/registry/data/pilot.json), with the "
             "per-pair SD of a ratio's influence values (what its bootstrap CI's width reflects) instead of the SDs "
             "of the previous score's run on the bank itself (issue 23)")
"""The issue-23 pilot of 2026-12-07: it can move the planned n, and with it the verdict, of every piloted claim."""

REVERSE_DISRUPTION_MATCHED = (
    "the random-KV contrast left the rule: norm-matched Gaussian K/V makes gibberish that the score puts at "
    "0.000–0.005, below any fluent continuation, so A⊕B could never beat it and the claim could never PASS; the "
    "disruption-matched control is the same-length recursive donor A' (a fluent foreign cache of equal length, its "
    "first-step disruption reported beside), and A⊕random stays in the details (issue 23)")
ONE_SIDED_NULL = (
    "the null statement is one-sided ('transfers no recursive behaviour'), so the rule is non-superiority: the "
    "90% CI's upper bound below +0.10 (a 95% one-sided bound); the two-sided ±0.10 equivalence counted a control "
    "whose gibberish scores below the baseline recipient against the null (issue 23)")
EXCHANGEABLE_GAP_TEST = (
    "p is now an exact sign-flip test of the paired change d(40) − d(0) toward zero from the registered direction "
    "(recursive lower R_V): swapping d(0) and d(40) within a pair flips its sign, so the test is exchangeable under "
    "the null; the previous swap statistic |mean d(0)| − |mean d(40)| was confined to ±|m₀ + m₄₀| and gave p = 1 "
    "whenever the two gaps had opposite signs. S is undefined (INCONCLUSIVE) unless the step-0 gap's CI lies below "
    "0: with no gap at step 0 there is nothing to fade (issue 23)")
MANIPULATION_AS_DESIGNED = (
    "the estimate is the paired difference as designed (Hedges g of the confabulation − grounded R_V difference, "
    "pooled within-group SD), with the length and word-frequency differences the invented entities bring reported "
    "beside and the covariate-adjusted g_adj kept as a sensitivity analysis: adjusting for them extrapolated each "
    "pair to zero Δtokens and Δfrequency, which removes the manipulation itself (Gemma 3: d_z 0.89 → g_adj 0.19) "
    "(issue 23)")
ALL_QUALIFYING_PAIRS = (
    "every pair whose donor has a patchable self-referential position is used (v4 took the first planned n = 5 of "
    "52 qualifying pairs and bootstrapped 5 pairs) (issue 23)")

_ISSUE_23: dict[str, tuple[str, ...]] = {
    "reverse_patch_necessity": (REVERSE_DISRUPTION_MATCHED, NEW_PILOT),
    "control_random_null": (ONE_SIDED_NULL, NEW_PILOT),
    "control_cross_baseline_null": (ONE_SIDED_NULL, NEW_PILOT),
    "rv_gap_fades_in_generation": (EXCHANGEABLE_GAP_TEST,),
    "confabulation_signature": (MANIPULATION_AS_DESIGNED,),
    "self_ref_token_patch": (ALL_QUALIFYING_PAIRS, NEW_PILOT),
    **{claim: (NEW_PILOT,) for claim in (
        "v_patch_null", "kv_transfer", "kv_transfer_specific", "alpha_monotone", "single_layer_fails",
        "kv_order_ablation", "layer_quarter_localisation", "token_quarter_localisation", "peak_zone_vs_half",
        "donor_level_transfer_trend",
    )},
}
"""The issue-23 changes by claim: rules that could not come out both ways, and the new pilot."""

VERSION_HISTORY: dict[str, tuple[VersionChange, ...]] = {
    **_UP_TO_ISSUE_22,
    **{claim: _then(_UP_TO_ISSUE_22.get(claim, ()), *reasons, date="2026-12-07") for claim, reasons in _ISSUE_23.items()},
}
"""Every version change by claim id, oldest first."""


def changes_of(claim_id: str) -> tuple[VersionChange, ...]:
    """The version changes of one claim (empty for a claim still at version 1)."""
    return VERSION_HISTORY.get(claim_id, ())


def version_history_problem(version: int, changes: tuple[VersionChange, ...]) -> str | None:
    """What is wrong with a claim at ``version`` whose change log is ``changes`` (one entry per version above 1, in
    order), in words; None when they agree."""
    if version < 1:
        return f"version {version} must be at least 1"
    if [c.version for c in changes] != list(range(2, version + 1)):
        return (f"version {version} needs one history entry per version above 1 (has versions "
                f"{[c.version for c in changes]})")
    return None
