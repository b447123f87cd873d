"""The pre-registered claims (DESIGN §5) as frozen data, decided before any data were seen.

Each :class:`ClaimSpec` fixes what is estimated, the decision rule (in words and as machine-evaluable
:class:`Condition` s), α, the multiplicity family, the planned n with the power calculation behind it, the
prompt groups it needs and, for behavioural claims, the decoding regime and the behaviour score.
Changing anything that can move a verdict requires bumping the claim's ``version``.

Conventions used by every claim:

- **Verdicts** (evaluated by :func:`harness.results.evaluate`): each condition is true, false or unknown;
  PASS when all are true, FAIL when any is false, INCONCLUSIVE otherwise, and INCONCLUSIVE whenever
  n < planned n or the estimate is undefined (e.g. the transfer denominator's CI includes 0, DESIGN §4.8).
- **CI conditions** are judged on the whole interval: ``ci("<", b)`` is true when the upper bound is below
  b, false when the lower bound is at or above b, unknown when the interval straddles b.
- **p conditions** compare the claim's p-value with ``alpha_test = family α / m``, where m is the number
  of claims in the registry family whose rule includes a p condition (Bonferroni: a decision each test can
  make alone; Holm-adjusted p-values over the family are reported beside it and are never larger, so a
  PASS stays a PASS under Holm). p-values are one-sided in the claimed direction unless stated.
- **Transfer** T follows DESIGN §4.8: (mean score(B⊕A) − mean score(B)) / (mean score(A) − mean score(B))
  over prompt pairs; its CIs are BCa bootstrap over pairs, clustered by prompt where a prompt recurs.
- **Behaviour score**: the degeneration-gated embedding score of DESIGN §4.7(b) on generated tokens only;
  raw and lexicon scores are reported beside it but never decide.
- **Power**: the assumed true effects below are design assumptions (what a claim is built to detect), not
  data; each planned n comes from :mod:`harness.stats.power` (statsmodels) as described there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from harness.stats.power import PowerPart, fisher_z_effect, part, proportion_effect

# ---------------------------------------------------------------------------------------------- rule data


class Kind(str, Enum):
    """What sort of claim: a directional effect, an equivalence (TOST), a trend, a one-sided upper bound,
    or a deterministic invariant (cache anatomy, judged on the value without a CI)."""

    SUPERIORITY = "superiority"
    NON_SUPERIORITY = "non-superiority"
    EQUIVALENCE = "equivalence"
    TREND = "trend"
    INVARIANT = "invariant"


ConditionKind = Literal["ci", "ci_within", "ci_outside", "p_below", "steps_at_least", "value"]
Op = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True)
class Condition:
    """One machine-evaluable part of a decision rule (see the module docstring for the semantics).

    - ``ci``: the main CI against ``bound`` with ``op``;
    - ``ci_within`` / ``ci_outside``: the main CI inside / outside the interval ``bounds``;
    - ``p_below``: p < the claim's ``alpha_test``;
    - ``steps_at_least``: every adjacent-step CI lies at or above ``bound`` (= −δ);
    - ``value``: the point estimate (no CI) against ``bound`` with ``op`` (invariants).
    """

    kind: ConditionKind
    op: Op | None = None
    bound: float | None = None
    bounds: tuple[float, float] | None = None


def ci(op: Op, bound: float) -> Condition:
    """The whole main CI satisfies ``estimate op bound``."""
    return Condition("ci", op=op, bound=bound)


def ci_within(low: float, high: float) -> Condition:
    """The whole main CI lies strictly inside (low, high) (TOST equivalence at the CI's level)."""
    return Condition("ci_within", bounds=(low, high))


def ci_outside(low: float, high: float) -> Condition:
    """The whole main CI lies strictly outside [low, high]."""
    return Condition("ci_outside", bounds=(low, high))


def steps_at_least(bound: float) -> Condition:
    """Every adjacent-step CI lower bound is ≥ ``bound``."""
    return Condition("steps_at_least", bound=bound)


def value(op: Op, bound: float) -> Condition:
    """The point estimate satisfies ``estimate op bound`` (deterministic invariants)."""
    return Condition("value", op=op, bound=bound)


P_BELOW = Condition("p_below")


@dataclass(frozen=True)
class Decoding:
    """Decoding regime of a behavioural claim (DESIGN §4.6), fixed before the data.

    ``samples_per_pair`` continuations per (pair, condition), seeded per (pair, sample index) from the run
    seed and shared by all conditions; the bootstrap resamples pairs, not samples.
    """

    mode: Literal["greedy", "sample"]
    temperature: float | None
    samples_per_pair: int
    max_new_tokens: int
    repetition_penalty: float | None = None

    def describe(self) -> str:
        """One line for reports."""
        if self.mode == "greedy":
            text = f"greedy, {self.max_new_tokens} new tokens"
        else:
            text = (f"seeded sampling T = {self.temperature}, k = {self.samples_per_pair} per pair and condition, "
                    f"{self.max_new_tokens} new tokens")
        if self.repetition_penalty is not None:
            text += f", repetition penalty {self.repetition_penalty}"
        return text


BEHAVIOUR_DECODING = Decoding(mode="greedy", temperature=None, samples_per_pair=1, max_new_tokens=48, repetition_penalty=1.2)
"""Registered before any patched continuation was generated (2026-11-22). Why greedy with a repetition penalty
rather than seeded sampling at T = 0.7 with k = 4: (1) plain greedy loops on the small CPU-tier models (about
half of 48-token continuations have distinct-2 < 0.5, DESIGN §4.6), and a penalty of 1.2 (the CTRL paper's
value, Keskar et al. 2019) breaks such loops; (2) it is deterministic, so every condition of a pair is compared
without sampling noise and one continuation per pair suffices, where sampling needs k ≥ 4; (3) the suite's
~850 continuations per model then fit the CPU budget (issue 6: both embedded models in under 40 minutes on
two cores), which k = 4 sampling (~3,400 per model) does not."""
BEHAVIOUR_SCORE = "embedding_gated"


@dataclass(frozen=True)
class Family:
    """A multiplicity family: claims whose p conditions share the familywise ``alpha``."""

    name: str
    alpha: float
    method: Literal["holm", "bh"]
    members: tuple[str, ...]

    @property
    def alpha_per_test(self) -> float:
        """Bonferroni α/m used by each member's p condition."""
        return self.alpha / len(self.members)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("geometry", 0.01, "holm", (
            "rv_contraction", "rv_survives_long_control", "rv_survives_repetition",
            "rv_survives_about_recursion", "geometry_at_encoding", "attention_entropy_differs",
            "level_rv_trend", "rv_behaviour_correlation",
        )),
        Family("kv_transfer", 0.01, "holm", ("kv_transfer",)),
        Family("alpha_monotone", 0.01, "holm", ("alpha_monotone",)),
        Family("behaviour", 0.01, "holm", (
            "reverse_patch_necessity", "geometry_transfers", "token_quarter_localisation",
            "level_behaviour_trend", "donor_level_transfer_trend", "donor_pr_predicts_transfer",
        )),
        Family("anatomy", 0.01, "holm", ("persona_signature",)),
    )
}


@dataclass(frozen=True)
class PowerPlan:
    """The stated power calculation: assumptions in words and one :class:`PowerPart` per rule part.

    For invariants ``parts`` is empty and ``coverage_n`` is the number of prompts the check must cover.
    """

    assumptions: str
    parts: tuple[PowerPart, ...] = ()
    coverage_n: int | None = None

    @property
    def planned_n(self) -> int:
        """The largest n over the parts (or the coverage n for invariants)."""
        if self.coverage_n is not None:
            return self.coverage_n
        return max(p.n for p in self.parts)


@dataclass(frozen=True)
class ClaimSpec:
    """A pre-registered claim. ``rule_words`` is the rule as a reader states it; ``conditions`` decide.

    ``alpha`` is the familywise α (the TOST α for equivalence claims); ``alpha_test`` the per-test α of the
    p condition (None without one). ``n_unit`` names what n counts. ``required_groups`` are prompt-bank
    groups without which the claim is SKIPPED; ``requires_levels`` means recursive prompts need levels L1–L5.
    """

    id: str
    version: int
    title: str
    statement: str
    estimator: str
    effect_type: str
    kind: Kind
    conditions: tuple[Condition, ...]
    rule_words: str
    ci_level: float | None
    alpha: float | None
    family: str | None
    power: PowerPlan
    n_unit: str
    required_groups: tuple[str, ...]
    requires_levels: bool = False
    delta: float | None = None
    decoding: Decoding | None = None
    behaviour_score: str | None = None
    headline: bool = False
    notes: str = ""
    alpha_test: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        has_p = P_BELOW in self.conditions
        if has_p:
            fam = FAMILIES.get(self.family or "")
            if fam is None or self.id not in fam.members:
                raise ValueError(f"claim {self.id}: has a p condition but is not a member of a family")
            if self.alpha != fam.alpha:
                raise ValueError(f"claim {self.id}: alpha {self.alpha} differs from family {fam.name} α {fam.alpha}")
            object.__setattr__(self, "alpha_test", fam.alpha_per_test)
        elif self.family is not None:
            raise ValueError(f"claim {self.id}: family {self.family!r} given but the rule has no p condition")
        needs_ci = any(c.kind in ("ci", "ci_within", "ci_outside") for c in self.conditions)
        if needs_ci != (self.ci_level is not None):
            raise ValueError(f"claim {self.id}: ci_level must be set exactly when the rule uses a CI")
        if any(c.kind == "steps_at_least" for c in self.conditions) and self.delta is None:
            raise ValueError(f"claim {self.id}: a steps_at_least condition needs delta")

    @property
    def planned_n(self) -> int:
        """Planned n (in ``n_unit``) from :attr:`power`."""
        return self.power.planned_n

    @property
    def primary(self) -> Condition:
        """The condition on the estimate (the first non-p condition)."""
        return next(c for c in self.conditions if c.kind != "p_below")

    @property
    def comparator(self) -> str:
        """The primary condition's comparator: an operator, 'within' or 'outside'."""
        c = self.primary
        if c.kind in ("ci", "value"):
            return str(c.op)
        return {"ci_within": "within", "ci_outside": "outside", "steps_at_least": ">="}[c.kind]

    @property
    def threshold(self) -> float | tuple[float, float]:
        """The primary condition's threshold (an interval for within/outside)."""
        c = self.primary
        return c.bounds if c.bounds is not None else float(c.bound)  # type: ignore[arg-type]

    def decision_text(self) -> str:
        """The full decision procedure in words, generated from the conditions (what the code does)."""
        parts = [_condition_words(c, self) for c in self.conditions]
        lead = " and ".join(parts)
        text = f"PASS if {lead}; FAIL if any of these is clearly not met; INCONCLUSIVE otherwise"
        return text + f" or when n < {self.planned_n} {self.n_unit}."


def _condition_words(c: Condition, spec: ClaimSpec) -> str:
    level = f"{spec.ci_level:.0%}" if spec.ci_level is not None else ""
    if c.kind == "ci":
        side = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}[c.op or "<"]
        return f"the whole {level} CI lies {side} {c.bound:g}"
    if c.kind == "ci_within":
        lo, hi = c.bounds or (0.0, 0.0)
        return f"the whole {level} CI lies inside ({lo:g}, {hi:g})"
    if c.kind == "ci_outside":
        lo, hi = c.bounds or (0.0, 0.0)
        return f"the whole {level} CI lies outside [{lo:g}, {hi:g}]"
    if c.kind == "p_below":
        fam = FAMILIES[spec.family or ""]
        m = len(fam.members)
        return f"p < {spec.alpha_test:.3g} (α = {fam.alpha:g} over family '{fam.name}', m = {m})"
    if c.kind == "steps_at_least":
        return f"every adjacent-step 95% CI lower bound is ≥ {c.bound:g} (δ = {spec.delta:g})"
    return f"the value is {c.op} {c.bound:g}"


# ------------------------------------------------------------------------------------------ power helpers

POWER = 0.8
RANK_TEST_INFLATION = 3.14159265358979 / 3.0  # 1 / ARE of Wilcoxon-type rank tests vs t under normality (3/π)


def _alpha_ci(ci_level: float) -> float:
    return (1.0 - ci_level) / 2.0


def _g_inflation(g: float) -> float:
    """Var(Hedges g) / Var(mean difference in SD units) for equal groups: 1 + g²/8."""
    return 1.0 + g * g / 8.0


def _g_plan(assumed_g: float, threshold: float, family: str, two_sided_p: bool = False) -> PowerPlan:
    """Two-sample plan for a Hedges-g claim: CI-bound part and Welch-t p part."""
    alpha_p = FAMILIES[family].alpha_per_test / (2.0 if two_sided_p else 1.0)
    return PowerPlan(
        assumptions=f"true Hedges g = {assumed_g:g}; equal group sizes; normal data",
        parts=(
            part(f"95% CI bound beyond {threshold:g}", "two-sample-t", abs(assumed_g - threshold),
                 _alpha_ci(0.95), POWER, _g_inflation(assumed_g)),
            part("Welch t p < alpha_test", "two-sample-t", abs(assumed_g), alpha_p, POWER),
        ),
    )


def _paired_plan(assumed: float, threshold: float, sd: float, ci_level: float, what: str,
                 family: str | None = None, p_dz: float = 0.8) -> PowerPlan:
    """One-sample (over pairs) plan: CI-bound part, plus a rank-test p part when ``family`` is given."""
    parts = [part(f"{ci_level:.0%} CI bound beyond {threshold:g}", "one-sample-t",
                  abs(assumed - threshold) / sd, _alpha_ci(ci_level), POWER)]
    words = f"true {what} = {assumed:g}, per-pair SD {sd:g} in the same units"
    if family is not None:
        parts.append(part("paired rank test p < alpha_test", "one-sample-t", p_dz,
                          FAMILIES[family].alpha_per_test, POWER, RANK_TEST_INFLATION))
        words += f"; paired score difference d_z = {p_dz:g} (rank-test n inflated by π/3)"
    return PowerPlan(words, tuple(parts))


def _equivalence_plan(margin: float, sd: float, ci_level: float) -> PowerPlan:
    """TOST plan at true value 0: each one-sided bound needs power 1 − (1 − 0.8)/2 so both hold with ≥ 0.8."""
    return PowerPlan(
        assumptions=f"true T = 0, per-pair SD {sd:g} (T units); both TOST bounds with joint power ≥ {POWER:g}",
        parts=(part(f"{ci_level:.0%} CI inside ±{margin:g}", "one-sample-t", margin / sd,
                    _alpha_ci(ci_level), 1.0 - (1.0 - POWER) / 2.0),),
    )


def _correlation_plan(assumed: float, threshold: float, family: str) -> PowerPlan:
    """Spearman ρ plan via Fisher z: CI-bound part and p part (test of ρ = 0)."""
    return PowerPlan(
        assumptions=f"true Spearman ρ = {assumed:g}; Fisher-z normal approximation with variance 1.06/(n − 3)",
        parts=(
            part(f"95% CI bound beyond {threshold:g}", "correlation-fisher-z", fisher_z_effect(assumed, threshold),
                 _alpha_ci(0.95), POWER),
            part("p < alpha_test", "correlation-fisher-z", fisher_z_effect(assumed, 0.0),
                 FAMILIES[family].alpha_per_test, POWER),
        ),
    )


def _coverage(n: int, what: str) -> PowerPlan:
    return PowerPlan(assumptions=f"deterministic check; no sampling error. n is coverage: {what}", coverage_n=n)


# ------------------------------------------------------------------------------------------------ claims

_RV = ("R_V = PR(V at the model's late layer) / PR(V at its early layer) over the last W = 16 content tokens "
       "of each prompt, eigenvalue PR, uncentered (DESIGN §4.1–4.2)")
_T = "transfer T (DESIGN §4.8) of the degeneration-gated embedding score"
_RECBASE = ("recursive", "baseline")
_BEHAV = dict(decoding=BEHAVIOUR_DECODING, behaviour_score=BEHAVIOUR_SCORE)


def _claims() -> tuple[ClaimSpec, ...]:
    g = "geometry"
    b = "behaviour"
    return (
        # ---------------------------------------------------------------- headline five (DESIGN §5 rules)
        ClaimSpec(
            id="rv_contraction", version=1, title="R_V contraction", headline=True,
            statement="Recursive self-observation prompts have lower R_V than baseline factual prompts.",
            estimator=f"Hedges g of R_V, recursive − baseline (independent prompts); {_RV}. CI: 95% BCa "
                      "bootstrap, each group resampled by prompt. p: Welch t, one-sided (recursive lower).",
            effect_type="hedges_g", kind=Kind.SUPERIORITY,
            conditions=(ci("<", -1.0), P_BELOW),
            rule_words="Hedges g < −1.0 and p < 0.01 (Holm within model)",
            ci_level=0.95, alpha=0.01, family=g, power=_g_plan(-1.8, -1.0, g),
            n_unit="prompts per group", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="v_patch_null", version=1, title="V-patch null", headline=True, **_BEHAV,
            statement="Patching V (v_proj output) at the late layer, persistently during decoding, does not "
                      "transfer recursive behaviour.",
            estimator=f"{_T}, B⊕A = baseline recipient with the recursive donor's V patched at the late layer "
                      "on aligned positions. CI: 90% BCa bootstrap over pairs (= TOST at α = 0.05).",
            effect_type="transfer_ratio", kind=Kind.EQUIVALENCE,
            conditions=(ci_within(-0.10, 0.10),),
            rule_words="TOST: transfer within ±0.10 at α = 0.05",
            ci_level=0.90, alpha=0.05, family=None, power=_equivalence_plan(0.10, 0.25, 0.90),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="kv_transfer", version=1, title="KV transfer (second half)", headline=True, **_BEHAV,
            statement="Patching the recursive donor's K and V over the second half of the layers into a "
                      "baseline recipient's cache transfers recursive behaviour.",
            estimator=f"{_T}, B⊕A = KV patch, layers [L/2, L), all shared positions, α = 1. CI: 95% BCa "
                      "bootstrap over pairs. p: paired Wilcoxon signed-rank, score(B⊕A) > score(B), one-sided.",
            effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
            conditions=(ci(">=", 0.80), P_BELOW),
            rule_words="T ≥ 0.80 and paired p < 0.01",
            ci_level=0.95, alpha=0.01, family="kv_transfer",
            power=_paired_plan(1.0, 0.80, 0.5, 0.95, "T", "kv_transfer"),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="alpha_monotone", version=1, title="α dose-response", headline=True, delta=0.10, **_BEHAV,
            statement="Recursive behaviour rises monotonically with the mixing weight α ∈ {0, .25, .5, .75, 1} "
                      "of the second-half KV patch.",
            estimator=f"{_T} at each α; Page's L over pairs (blocks) × α (ordered increasing) gives p; "
                      "adjacent steps T(α_k+1) − T(α_k) each get a 95% BCa bootstrap CI over pairs. The estimate "
                      "is T(1) − T(0).",
            effect_type="page_L_with_steps", kind=Kind.TREND,
            conditions=(P_BELOW, steps_at_least(-0.10)),
            rule_words="Page's L p < 0.01 and every adjacent-step CI ≥ −δ (δ = 0.10)",
            ci_level=None, alpha=0.01, family="alpha_monotone",
            power=PowerPlan(
                assumptions="Page's L approximated by a one-sample t on each pair's linear α contrast with "
                            "standardized mean 0.8 (n inflated by π/3 for a rank test); steps: true step +0.25 "
                            "(T from 0 to 1 linearly), per-pair step SD 0.25, all four steps jointly at power 0.8",
                parts=(
                    part("Page's L p < alpha_test", "one-sample-t", 0.8, FAMILIES["alpha_monotone"].alpha_per_test,
                         POWER, RANK_TEST_INFLATION),
                    part("each step CI ≥ −0.10", "one-sample-t", (0.25 + 0.10) / 0.25, _alpha_ci(0.95),
                         POWER ** 0.25),
                ),
            ),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="single_layer_fails", version=1, title="Single-layer KV patch fails", headline=True, **_BEHAV,
            statement="Patching only the late layer's K and V does not transfer recursive behaviour.",
            estimator=f"{_T}, B⊕A = KV patch at the late layer only, all shared positions, α = 1. "
                      "CI: 95% BCa bootstrap over pairs.",
            effect_type="transfer_ratio", kind=Kind.NON_SUPERIORITY,
            conditions=(ci("<", 0.20),),
            rule_words="T upper CI bound < 0.20",
            ci_level=0.95, alpha=None, family=None, power=_paired_plan(0.0, 0.20, 0.25, 0.95, "T"),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        # ------------------------------------------------------------------------- extended: behaviour
        ClaimSpec(
            id="reverse_patch_necessity", version=1, title="Reverse patch removes recursion", **_BEHAV,
            statement="Patching a baseline donor's K and V (second half of layers) into a recursive recipient "
                      "removes at least half of its recursive behaviour.",
            estimator="reverse transfer T_rev = (mean score(A⊕B) − mean score(A)) / (mean score(B) − mean score(A)) "
                      "with A recursive recipient, B baseline donor. CI: 95% BCa over pairs. p: paired Wilcoxon, "
                      "score(A⊕B) < score(A), one-sided.",
            effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
            conditions=(ci(">=", 0.50), P_BELOW),
            rule_words="T_rev ≥ 0.50 and paired p < α_test",
            ci_level=0.95, alpha=0.01, family=b, power=_paired_plan(0.9, 0.5, 0.5, 0.95, "T_rev", b),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        *(
            ClaimSpec(
                id=f"control_{name}_null", version=1, title=f"{label} control ≈ no transfer", **_BEHAV,
                statement=f"The {label.lower()} control patch (DESIGN §4.4) transfers no recursive behaviour.",
                estimator=f"{_T}, B⊕A = second-half KV patch with {how}; normalized by the same pair's natural "
                          "recursive − baseline gap. CI: 90% BCa bootstrap over pairs (= TOST at α = 0.05).",
                effect_type="transfer_ratio", kind=Kind.EQUIVALENCE,
                conditions=(ci_within(-0.10, 0.10),),
                rule_words="TOST: transfer within ±0.10 at α = 0.05",
                ci_level=0.90, alpha=0.05, family=None, power=_equivalence_plan(0.10, 0.25, 0.90),
                n_unit="prompt pairs", required_groups=_RECBASE,
            )
            for name, label, how in (
                ("shuffled", "Shuffled", "the donor's K/V positions permuted within the span (one permutation for K and V)"),
                ("random", "Norm-matched random", "Gaussian K/V matched to the donor's norm per layer, head and position"),
                ("cross_baseline", "Cross-baseline", "a different baseline prompt as donor"),
            )
        ),
        ClaimSpec(
            id="geometry_transfers", version=1, title="Geometry transfers with the cache", **_BEHAV,
            statement="After a second-half KV patch, R_V of the patched generation moves toward the donor's.",
            estimator="G = (R_V(B⊕A) − R_V(B)) / (R_V(A) − R_V(B)), R_V on the same generated tokens the behaviour "
                      "score uses, V captured downstream of the patch (new positions only). CI: 95% BCa over "
                      "pairs. p: paired Wilcoxon, R_V(B⊕A) < R_V(B), one-sided.",
            effect_type="geometry_transfer_ratio", kind=Kind.SUPERIORITY,
            conditions=(ci(">=", 0.25), P_BELOW),
            rule_words="G ≥ 0.25 and paired p < α_test",
            ci_level=0.95, alpha=0.01, family=b, power=_paired_plan(0.6, 0.25, 0.5, 0.95, "G", b),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="rv_behaviour_correlation", version=1, title="R_V vs behaviour", **_BEHAV,
            statement="Within recursive prompts, lower R_V goes with more recursive behaviour in the natural "
                      "continuation.",
            estimator="Spearman ρ between per-prompt R_V (prompt window) and the behaviour score of its natural "
                      "continuation, within the recursive group only (no pooling across groups). CI: 95% BCa over "
                      "prompts. p: Spearman, one-sided (ρ < 0).",
            effect_type="spearman_rho", kind=Kind.SUPERIORITY,
            conditions=(ci("<", -0.30), P_BELOW),
            rule_words="ρ < −0.30 and p < α_test",
            ci_level=0.95, alpha=0.01, family=g, power=_correlation_plan(-0.6, -0.3, g),
            n_unit="recursive prompts", required_groups=("recursive",),
        ),
        ClaimSpec(
            id="geometry_at_encoding", version=1, title="Geometry set at encoding",
            statement="The recursive − baseline R_V difference is already present at decode step 0.",
            estimator="Hedges g of R_V at decode step 0 (window = last 16 positions when the first new token is "
                      "decoded), recursive − baseline; g at step 40 is reported beside it. CI: 95% BCa by prompt. "
                      "p: Welch t, one-sided.",
            effect_type="hedges_g", kind=Kind.SUPERIORITY,
            conditions=(ci("<", -0.80), P_BELOW),
            rule_words="Hedges g at step 0 < −0.80 and p < α_test",
            ci_level=0.95, alpha=0.01, family=g, power=_g_plan(-1.6, -0.8, g),
            n_unit="prompts per group", required_groups=_RECBASE, decoding=BEHAVIOUR_DECODING,
        ),
        ClaimSpec(
            id="layer_quarter_localisation", version=1, title="Layer-quarter localisation", **_BEHAV,
            statement="The transfer is carried by the later layers: the best late quarter (Q3 or Q4) transfers "
                      "more than the best early quarter (Q1 or Q2).",
            estimator=f"D = max(T_Q3, T_Q4) − max(T_Q1, T_Q2), each T a {_T} for a KV patch of that layer quarter; "
                      "all four T are reported. CI: 95% percentile bootstrap over pairs.",
            effect_type="transfer_difference", kind=Kind.SUPERIORITY,
            conditions=(ci(">", 0.0),),
            rule_words="D > 0 (whole 95% CI above 0)",
            ci_level=0.95, alpha=None, family=None, power=_paired_plan(0.5, 0.0, 0.6, 0.95, "D"),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="token_quarter_localisation", version=1, title="Token-quarter localisation", **_BEHAV,
            statement="Patching the last 25 % of prompt positions transfers more than patching the first 25 %.",
            estimator=f"D = T(last 25 %) − T(first 25 %), second-half layers, each a {_T}. CI: 95% BCa over pairs. "
                      "p: paired Wilcoxon on per-pair scores, last > first, one-sided.",
            effect_type="transfer_difference", kind=Kind.SUPERIORITY,
            conditions=(ci(">", 0.0), P_BELOW),
            rule_words="D > 0 and paired p < α_test",
            ci_level=0.95, alpha=0.01, family=b, power=_paired_plan(0.3, 0.0, 0.5, 0.95, "D", b, p_dz=0.6),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="level_rv_trend", version=1, title="R_V dose-response over recursion levels",
            statement="R_V falls as the recursion level of the prompt rises from L1 to L5.",
            estimator=f"Spearman ρ between level (1–5) and R_V over recursive prompts; {_RV}. CI: 95% BCa over "
                      "prompts. p: Spearman, one-sided (ρ < 0).",
            effect_type="spearman_rho", kind=Kind.TREND,
            conditions=(ci("<", -0.30), P_BELOW),
            rule_words="ρ(level, R_V) < −0.30 and p < α_test",
            ci_level=0.95, alpha=0.01, family=g, power=_correlation_plan(-0.6, -0.3, g),
            n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
        ),
        ClaimSpec(
            id="level_behaviour_trend", version=1, title="Behaviour dose-response over recursion levels", **_BEHAV,
            statement="The recursive behaviour of natural continuations rises with the prompt's recursion level.",
            estimator="Spearman ρ between level (1–5) and the behaviour score of the natural continuation. CI: 95% "
                      "BCa over prompts. p: Spearman, one-sided (ρ > 0).",
            effect_type="spearman_rho", kind=Kind.TREND,
            conditions=(ci(">", 0.30), P_BELOW),
            rule_words="ρ(level, behaviour) > 0.30 and p < α_test",
            ci_level=0.95, alpha=0.01, family=b, power=_correlation_plan(0.6, 0.3, b),
            n_unit="recursive prompts", required_groups=("recursive",), requires_levels=True,
        ),
        ClaimSpec(
            id="attention_entropy_differs", version=1, title="Attention entropy differs",
            statement="Mean attention entropy at the late layer differs between recursive and baseline prompts.",
            estimator="Hedges g of per-prompt attention entropy (nats, averaged over the late layer's query heads "
                      "and the last 16 query positions), recursive − baseline; per-head g in details. CI: 95% BCa "
                      "by prompt. p: Welch t, two-sided.",
            effect_type="hedges_g", kind=Kind.SUPERIORITY,
            conditions=(ci_outside(-0.5, 0.5), P_BELOW),
            rule_words="|Hedges g| > 0.5 (whole CI outside ±0.5) and two-sided p < α_test",
            ci_level=0.95, alpha=0.01, family=g, power=_g_plan(1.3, 0.5, g, two_sided_p=True),
            n_unit="prompts per group", required_groups=_RECBASE,
        ),
        *(
            ClaimSpec(
                id=f"rv_survives_{name}", version=1, title=f"R_V contraction vs {label}",
                statement=f"Recursive prompts have lower R_V than {label} prompts ({why}).",
                estimator=f"Hedges g of R_V, recursive − {group}; {_RV}. CI: 95% BCa by prompt. p: Welch t, one-sided.",
                effect_type="hedges_g", kind=Kind.SUPERIORITY,
                conditions=(ci("<", -0.50), P_BELOW),
                rule_words=f"Hedges g (recursive − {group}) < −0.50 and p < α_test",
                ci_level=0.95, alpha=0.01, family=g, power=_g_plan(-1.3, -0.5, g),
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
            id="donor_level_transfer_trend", version=1, title="Transfer grows with donor level", **_BEHAV,
            statement="KV transfer onto the same baselines grows with the donor's recursion level L1…L5.",
            estimator="per baseline recipient (block), the behaviour score after a second-half KV patch from a "
                      "donor of each level L1…L5; estimate = mean within-block Spearman ρ(level, score), CI 95% "
                      "BCa over blocks; p: Page's L (levels ordered increasing).",
            effect_type="mean_block_spearman", kind=Kind.TREND,
            conditions=(ci(">", 0.0), P_BELOW),
            rule_words="mean within-recipient ρ > 0 and Page's L p < α_test",
            ci_level=0.95, alpha=0.01, family=b,
            power=PowerPlan(
                assumptions="per-block ρ mean 0.5 with SD 0.5; Page's L approximated by a one-sample t on the "
                            "per-block linear contrast with standardized mean 0.8 (n inflated by π/3)",
                parts=(
                    part("95% CI above 0", "one-sample-t", 1.0, _alpha_ci(0.95), POWER),
                    part("Page's L p < alpha_test", "one-sample-t", 0.8, FAMILIES[b].alpha_per_test, POWER,
                         RANK_TEST_INFLATION),
                ),
            ),
            n_unit="baseline recipients", required_groups=_RECBASE, requires_levels=True,
        ),
        ClaimSpec(
            id="peak_zone_vs_half", version=1, title="Peak zone vs second half", **_BEHAV,
            statement="A KV patch of the peak zone alone (late layer ± 2) transfers less than the full second half.",
            estimator=f"D = T(second half) − T(late ± 2 layers), each a {_T}. CI: 95% BCa over pairs.",
            effect_type="transfer_difference", kind=Kind.SUPERIORITY,
            conditions=(ci(">", 0.0),),
            rule_words="D > 0 (whole 95% CI above 0)",
            ci_level=0.95, alpha=None, family=None, power=_paired_plan(0.4, 0.0, 0.5, 0.95, "D"),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="self_ref_token_patch", version=1, title="Self-referential tokens carry transfer", **_BEHAV,
            statement="Patching only the positions of self-referential tokens (second-half layers) transfers at "
                      "least half of the natural gap.",
            estimator=f"{_T}, B⊕A = KV patch restricted to positions whose donor token is self-referential "
                      "(the lexicon of DESIGN §4.7a applied to the donor prompt). CI: 95% BCa over pairs.",
            effect_type="transfer_ratio", kind=Kind.SUPERIORITY,
            conditions=(ci(">=", 0.50),),
            rule_words="T ≥ 0.50 (whole 95% CI at or above 0.50)",
            ci_level=0.95, alpha=None, family=None, power=_paired_plan(0.8, 0.5, 0.5, 0.95, "T"),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        ClaimSpec(
            id="donor_pr_predicts_transfer", version=1, title="Donor PR predicts transfer", **_BEHAV,
            statement="Donors whose cached V has a lower participation ratio transfer more.",
            estimator="Spearman ρ over pairs between the donor's PR of cached V (late layer, prompt window) and the "
                      "pair's transfer (score(B⊕A) − score(B)), second-half KV patch. CI: 95% BCa over pairs. "
                      "p: Spearman, one-sided (ρ < 0).",
            effect_type="spearman_rho", kind=Kind.SUPERIORITY,
            conditions=(ci("<", -0.30), P_BELOW),
            rule_words="ρ < −0.30 and p < α_test",
            ci_level=0.95, alpha=0.01, family=b, power=_correlation_plan(-0.6, -0.3, b),
            n_unit="prompt pairs", required_groups=_RECBASE,
        ),
        # ---------------------------------------------------------------------------------- cache anatomy
        ClaimSpec(
            id="cache_shapes_match_config", version=1, title="Cache shapes and bytes per token",
            statement="Every layer's K and V cache has the shape and bytes per token that the model config implies.",
            estimator="number of (layer, K|V) entries whose shape (batch, n_kv_heads, tokens, head_dim) or bytes "
                      "per token differ from the config (sliding-window layers: tokens capped at the window).",
            effect_type="mismatch_count", kind=Kind.INVARIANT,
            conditions=(value("<=", 0),),
            rule_words="zero mismatches",
            ci_level=None, alpha=None, family=None, power=_coverage(8, "prompts checked"),
            n_unit="prompts", required_groups=("baseline",),
        ),
        ClaimSpec(
            id="cache_injection_equals_text", version=1, title="Injected cache equals fed text",
            statement="Decoding from an injected (copied) cache gives the same next-token logits as feeding the text.",
            estimator="max |Δ logit| over prompts and vocabulary between decoding from a cloned, re-injected cache "
                      "and a fresh forward pass over the full text (fp32).",
            effect_type="max_abs_logit_diff", kind=Kind.INVARIANT,
            conditions=(value("<=", 1e-4),),
            rule_words="max |Δ logit| ≤ 1e-4 (fp32)",
            ci_level=None, alpha=None, family=None, power=_coverage(8, "prompts checked"),
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
            conditions=(value("<=", 1e-3),),
            rule_words="max |Δ logit| ≤ 1e-3 (fp32)",
            ci_level=None, alpha=None, family=None, power=_coverage(8, "prompts checked"),
            n_unit="prompts", required_groups=("baseline",),
        ),
        ClaimSpec(
            id="persona_signature", version=1, title="Persona signature in the cache",
            statement="The KV cache of the user turn identifies which persona system prompt preceded it, with "
                      "all persona system prompts of equal token length.",
            estimator="leave-one-user-prompt-out nearest-centroid accuracy of persona identity from the user "
                      "turn's cached V (late layer, mean over positions after the system prompt). CI: 95% Wilson. "
                      "p: exact binomial test against chance 1/k, one-sided.",
            effect_type="accuracy", kind=Kind.SUPERIORITY,
            conditions=(ci(">", 0.50), P_BELOW),
            rule_words="accuracy > 0.50 (whole Wilson CI) and binomial p < 0.01",
            ci_level=0.95, alpha=0.01, family="anatomy",
            power=PowerPlan(
                assumptions="true accuracy 0.80; chance 0.25 (4 personas)",
                parts=(
                    part("95% CI above 0.50", "one-proportion-z", proportion_effect(0.80, 0.50), _alpha_ci(0.95), POWER),
                    part("binomial p < alpha_test", "one-proportion-z", proportion_effect(0.80, 0.25),
                         FAMILIES["anatomy"].alpha_per_test, POWER),
                ),
            ),
            n_unit="persona × user-prompt items", required_groups=("persona",),
        ),
    )


CLAIMS: dict[str, ClaimSpec] = {c.id: c for c in _claims()}


def _check_registry() -> None:
    ids = [c.id for c in _claims()]
    if len(ids) != len(set(ids)):
        raise ValueError("claims registry: duplicate claim ids")
    for fam in FAMILIES.values():
        for member in fam.members:
            spec = CLAIMS.get(member)
            if spec is None or spec.family != fam.name:
                raise ValueError(f"family {fam.name}: member {member!r} is not a registered claim of this family")


_check_registry()


def get_claim(claim_id: str) -> ClaimSpec:
    """The registered spec for ``claim_id``; raises KeyError naming the known ids."""
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}; registered claims: {', '.join(CLAIMS)}") from None


def family_of(claim_id: str) -> Family | None:
    """The multiplicity family of a claim (None for claims decided without a p-value)."""
    spec = get_claim(claim_id)
    return FAMILIES[spec.family] if spec.family else None
