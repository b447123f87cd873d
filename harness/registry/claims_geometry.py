"""Extended claims of the 'geometry' multiplicity family: R_V against confound controls, at encoding, over
recursion levels, against behaviour, and attention entropy (the headline R_V contraction is in
:mod:`harness.registry.claims_headline`)."""

from __future__ import annotations

from harness.registry.power_plans import correlation_plan, g_plan
from harness.registry.rules import P_BELOW, Kind, ci, ci_outside
from harness.registry.shared import BEHAVIOUR_DECODING, BEHAVIOURAL, RECBASE, RV_WORDS
from harness.registry.spec import ClaimSpec

__all__ = ["GEOMETRY_CLAIMS"]

GEOMETRY_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="rv_behaviour_correlation", version=1, title="R_V vs behaviour", **BEHAVIOURAL,
        statement="Within recursive prompts, lower R_V goes with more recursive behaviour in the natural "
                  "continuation.",
        estimator="Spearman ρ between per-prompt R_V (prompt window) and the behaviour score of its natural "
                  "continuation, within the recursive group only (no pooling across groups). CI: 95% BCa over "
                  "prompts. p: Spearman, one-sided (ρ < 0).",
        effect_type="spearman_rho", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, alpha=0.01, family="geometry", power=correlation_plan(-0.6, -0.3, "geometry"),
        n_unit="recursive prompts", required_groups=("recursive",),
    ),
    ClaimSpec(
        id="geometry_at_encoding", version=1, title="Geometry set at encoding",
        statement="The recursive − baseline R_V difference is already present at decode step 0.",
        estimator="Hedges g of R_V at decode step 0 (window = last 16 positions when the first new token is "
                  "decoded), recursive − baseline; g at step 40 is reported beside it. CI: 95% BCa by prompt. "
                  "p: Welch t, one-sided.",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci("<", -0.80), P_BELOW),
        ci_level=0.95, alpha=0.01, family="geometry", power=g_plan(-1.6, -0.8, "geometry"),
        n_unit="prompts per group", required_groups=RECBASE, decoding=BEHAVIOUR_DECODING,
    ),
    ClaimSpec(
        id="level_rv_trend", version=1, title="R_V dose-response over recursion levels",
        statement="R_V falls as the recursion level of the prompt rises from L1 to L5.",
        estimator=f"Spearman ρ between level (1–5) and R_V over recursive prompts; {RV_WORDS}. CI: 95% BCa over "
                  "prompts. p: Spearman, one-sided (ρ < 0).",
        effect_type="spearman_rho", kind=Kind.TREND,
        criteria=(ci("<", -0.30), P_BELOW),
        ci_level=0.95, alpha=0.01, family="geometry", power=correlation_plan(-0.6, -0.3, "geometry"),
        n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
    ),
    ClaimSpec(
        id="attention_entropy_differs", version=1, title="Attention entropy differs",
        statement="Mean attention entropy at the late layer differs between recursive and baseline prompts.",
        estimator="Hedges g of per-prompt attention entropy (nats, averaged over the late layer's query heads "
                  "and the last 16 query positions), recursive − baseline; per-head g in details. CI: 95% BCa "
                  "by prompt. p: Welch t, two-sided.",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci_outside(-0.5, 0.5), P_BELOW),
        ci_level=0.95, alpha=0.01, family="geometry", power=g_plan(1.3, 0.5, "geometry", two_sided_p=True),
        n_unit="prompts per group", required_groups=RECBASE,
    ),
    *(
        ClaimSpec(
            id=f"rv_survives_{name}", version=1, title=f"R_V contraction vs {label}",
            statement=f"Recursive prompts have lower R_V than {label} prompts ({why}).",
            estimator=f"Hedges g of R_V, recursive − {group}; {RV_WORDS}. CI: 95% BCa by prompt. p: Welch t, one-sided.",
            effect_type="hedges_g", kind=Kind.SUPERIORITY,
            criteria=(ci("<", -0.50), P_BELOW),
            ci_level=0.95, alpha=0.01, family="geometry", power=g_plan(-1.3, -0.5, "geometry"),
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
)
