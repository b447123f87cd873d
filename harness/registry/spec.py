"""A pre-registered claim as frozen data (:class:`ClaimSpec`) and the rule text generated from its criteria.

Changing anything that can move a verdict requires bumping the claim's ``version``. Verdicts: PASS when every
criterion is true, FAIL when any is false, INCONCLUSIVE otherwise, and INCONCLUSIVE whenever n < planned n or
the estimate is undefined (e.g. the transfer denominator's CI includes 0, docs/METHODS.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.foundation.decoding import DecodingRegime
from harness.registry.effects import EFFECT_TYPES, EffectType
from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.registry.power_plans import PowerPlan
from harness.registry.rules import (
    CI_KINDS,
    P_BELOW,
    Criterion,
    Kind,
    claimed_direction,
    criterion_summary,
    criterion_words,
)

__all__ = ["ClaimSpec"]


@dataclass(frozen=True)
class ClaimSpec:
    """A pre-registered claim; its ``criteria`` decide, and every rule text is generated from them.

    ``significance_level`` is the claim's α: the familywise α of its multiplicity family (the TOST α for equivalence claims); ``alpha_test`` the per-test α of the
    p criterion (None without one). ``effect_type`` is a key of :data:`~harness.registry.effects.EFFECT_TYPES`
    (which statistic the estimate is). ``n_unit`` names what n counts. ``required_groups`` are prompt-bank
    groups without which the claim is SKIPPED; ``requires_levels`` means recursive prompts need levels L1–L5.
    """

    id: str
    version: int
    title: str
    statement: str
    estimator: str
    effect_type: str
    kind: Kind
    criteria: tuple[Criterion, ...]
    ci_level: float | None
    significance_level: float | None
    family: str | None
    power: PowerPlan
    n_unit: str
    required_groups: tuple[str, ...]
    requires_levels: bool = False
    delta: float | None = None
    decoding: DecodingRegime | None = None
    behaviour_score: str | None = None
    headline: bool = False
    notes: str = ""
    alpha_test: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.effect_type not in EFFECT_TYPES:
            raise ValueError(f"claim {self.id}: unknown effect_type {self.effect_type!r}; known: {', '.join(EFFECT_TYPES)}")
        if P_BELOW in self.criteria:
            fam = MULTIPLICITY_FAMILIES.get(self.family or "")
            if fam is None or self.id not in fam.members:
                raise ValueError(f"claim {self.id}: has a p condition but is not a member of a family")
            if self.significance_level != fam.familywise_alpha:
                raise ValueError(f"claim {self.id}: significance level {self.significance_level} differs from family "
                                 f"{fam.name} α {fam.familywise_alpha}")
            object.__setattr__(self, "alpha_test", fam.alpha_per_test)
        elif self.family is not None:
            raise ValueError(f"claim {self.id}: family {self.family!r} given but the rule has no p condition")
        needs_ci = any(c.kind in CI_KINDS for c in self.criteria)
        may_have_ci = needs_ci or any(c.kind == "steps_at_least" for c in self.criteria)
        if (needs_ci and self.ci_level is None) or (self.ci_level is not None and not may_have_ci):
            raise ValueError(f"claim {self.id}: ci_level must be set when the rule uses a main CI, and only then or "
                             "for a steps rule that reports its weakest step's CI")
        if any(c.kind == "steps_at_least" for c in self.criteria) and self.delta is None:
            raise ValueError(f"claim {self.id}: a steps_at_least condition needs delta")
        if self.primary.kind == "contrasts_above":
            raise ValueError(f"claim {self.id}: a contrasts_above condition goes beside a main criterion, not first")
        if any(c.kind == "contrasts_above" for c in self.criteria) and self.ci_level is None:
            raise ValueError(f"claim {self.id}: a contrasts_above condition needs ci_level (the contrasts' CI level)")

    @property
    def planned_n(self) -> int:
        """Planned n (in ``n_unit``) from :attr:`power` (solved on first access, then cached)."""
        return self.power.planned_n

    @property
    def is_engine_check(self) -> bool:
        """True for a deterministic invariant of the engine (cache shapes, injection, RoPE re-rotation): reported in
        its own section, not counted among the claim verdicts (docs/METHODS.md §12)."""
        return self.kind is Kind.INVARIANT

    @property
    def effect(self) -> EffectType:
        """The statistic the estimate is (label, symbol, units)."""
        return EFFECT_TYPES[self.effect_type]

    @property
    def effect_direction(self) -> str:
        """The direction the rule expects of the estimate: ``less`` or ``greater`` than its bound, ``within`` an
        equivalence interval, ``outside`` an interval (either sign), ``differs`` from 0 (either sign; equivalence
        inside a band is the FAIL), or ``increasing`` (every step at or above −δ)."""
        c = self.primary
        if c.kind == "ci_differs":
            return "differs"
        if c.kind == "ci_within":
            return "within"
        if c.kind == "ci_outside":
            return "outside"
        if c.kind == "steps_at_least":
            return "increasing"
        return "less" if c.op in ("<", "<=") else "greater"

    @property
    def expected(self) -> str:
        """What the rule expects of the estimate in a few symbols, e.g. ``g < -1``, ``T inside (-0.1, 0.1)``."""
        c, sym = self.primary, self.effect.symbol
        if c.kind == "ci_differs":
            lo, hi = c.bounds or (0.0, 0.0)
            return f"{sym} ≠ 0 (not inside ({lo:g}, {hi:g}))"
        if c.kind in ("ci_within", "ci_outside"):
            lo, hi = c.bounds or (0.0, 0.0)
            return f"{sym} inside ({lo:g}, {hi:g})" if c.kind == "ci_within" else f"{sym} outside [{lo:g}, {hi:g}]"
        if c.kind == "steps_at_least":
            return f"every step ≥ {c.bound:g}"
        return f"{sym} {c.op} {c.bound:g}"

    def effect_fields(self) -> dict[str, str]:
        """The effect columns of a report record: ``effect_type``, ``effect_label``, ``effect_units``,
        ``effect_direction`` (see :mod:`harness.registry.effects`)."""
        e = self.effect
        return {"effect_type": self.effect_type, "effect_label": e.label, "effect_units": e.units,
                "effect_direction": self.effect_direction}

    @property
    def primary(self) -> Criterion:
        """The criterion on the estimate (the first non-p criterion)."""
        return next(c for c in self.criteria if c.kind != "p_below")

    @property
    def comparator(self) -> str:
        """The primary criterion's comparator: an operator, 'within' or 'outside'."""
        c = self.primary
        if c.kind in ("ci", "value"):
            return str(c.op)
        return {"ci_within": "within", "ci_outside": "outside", "ci_differs": "differs", "steps_at_least": ">="}[c.kind]

    @property
    def threshold(self) -> float | tuple[float, float]:
        """The primary criterion's threshold (an interval for within/outside)."""
        c = self.primary
        return c.bounds if c.bounds is not None else float(c.bound)  # type: ignore[arg-type]

    def _p_words(self, short: bool) -> str:
        if self.family is None:
            return ""
        fam = MULTIPLICITY_FAMILIES[self.family]
        m = len(fam.members)
        if short:
            return f"p < {self.alpha_test:.3g} (α {fam.familywise_alpha:g}/{m})"
        return f"p < {self.alpha_test:.3g} (Bonferroni: α = {fam.familywise_alpha:g} over family '{fam.name}', m = {m})"

    def rule_summary(self) -> str:
        """The rule in a few symbols for table cells, generated from the criteria, e.g.
        ``hedges_g: 95% CI < -1 and p < 0.00125 (α 0.01/8)``."""
        p_words = self._p_words(short=True)
        parts = [criterion_summary(c, ci_level=self.ci_level, p_words=p_words) for c in self.criteria]
        return f"{self.effect_type}: " + " and ".join(parts)

    def decision_text(self) -> str:
        """The full decision procedure in words, generated from the criteria (what the code does)."""
        p_words = self._p_words(short=False)
        parts = [criterion_words(c, ci_level=self.ci_level, delta=self.delta, p_words=p_words) for c in self.criteria]
        lead = " and ".join(parts)
        has_p = any(c.kind == "p_below" for c in self.criteria)
        directed = has_p and claimed_direction(self.criteria) is not None
        if all(c.kind == "value" for c in self.criteria):
            fail = "FAIL if any of these is not met"
        else:
            fail = ("FAIL if any of these is clearly not met (a CI wholly on the wrong side of its bound"
                    + (", or a one-sided p ≥ 1 − α_test, which contradicts the claimed direction" if directed else "")
                    + ")" + ("; p ≥ α_test alone is not a FAIL" if has_p else ""))
        text = f"PASS if {lead}; {fail}; INCONCLUSIVE otherwise"
        return text + f" or when n < {self.planned_n} {self.n_unit}."
