"""The rule language of the claims registry: what sort of claim (:class:`Kind`) and the machine-evaluable
criteria of a decision rule (:class:`Criterion`), with the text that states them.

Semantics (evaluated by :func:`harness.claim.verdicts.evaluate`): each criterion is met (true), clearly not met (false)
or undecided (unknown); PASS when all are met, FAIL when any is clearly not met, INCONCLUSIVE otherwise (and
whenever n < planned n or the estimate is undefined).

- **CI criteria** are judged on the whole interval: ``ci("<", b)`` is met when the upper bound is below b,
  clearly not met when the lower bound is at or above b (the CI lies wholly outside the claimed region),
  undecided when the interval straddles b. ``ci_within`` / ``ci_outside`` likewise: met when the CI lies wholly
  inside / outside the interval, clearly not met when it lies wholly on the other side, undecided when it crosses
  an end. A NaN CI end is undecided.
- **ci_differs** (a difference, with equivalence as the alternative verdict) is judged on the whole main CI
  against 0 and an equivalence band (low, high) around it: met when the CI excludes 0 and does not lie inside the
  band, clearly not met when it lies strictly inside (low, high) (TOST equivalence at the CI's level: any
  difference is smaller than the registered margin), undecided otherwise (the CI covers 0 and reaches past a band
  end). A CI that excludes 0 but lies inside the band is clearly not met: a nonzero but negligible difference.
- **p criteria** compare the claim's p-value with its ``alpha_test`` = family α / m (Bonferroni, see
  :mod:`harness.registry.multiplicity`): met when p < α_test. p ≥ α_test alone is *undecided*, not a failure:
  not rejecting the null is not evidence against the claim. It is clearly not met only when the claimed
  direction is contradicted: the claim is directional (:func:`claimed_direction` is not None) and its one-sided
  p ≥ 1 − α_test, i.e. the test of the opposite direction, 1 − p, is ≤ α_test (for a discrete statistic 1 − p
  is P(T < t), the opposite test's p less the probability of the observed value, so this reads "significant the
  other way" up to that atom). A claim test must compute its p one-sided in the direction the claim asserts
  (e.g. ``alternative="less"`` for a ``ci("<", b)`` claim on g, "greater" for a transfer T ≥ b); for a
  non-directional claim (``ci_within``, ``ci_outside``: a two-sided p) the p criterion is never clearly not met,
  and the CI criterion alone can FAIL it. The null is whatever the p tests (0 for g, T, ρ and D; chance for an
  accuracy); a CI wholly on the wrong side of that null also lies wholly on the wrong side of the bound for every
  directional criterion, since each bound sits at or beyond the null in the claimed direction, so that case is
  already a CI failure.
- **steps** criteria need every adjacent-step CI at or above −δ: met when every step's lower bound is ≥ −δ,
  clearly not met when any step's upper bound is below −δ, undecided otherwise.
- **contrasts** criteria (``contrasts_above``) need the CI of every registered contrast (named in the criterion,
  e.g. the reverse patch against a same-length recursive donor and against random KV) above a bound: met when
  every contrast's lower bound is > the bound, clearly not met when any contrast's upper bound is ≤ it,
  undecided otherwise. A contrasts criterion goes beside a main criterion, never first (it gives no direction).
- **value** criteria judge the point estimate without a CI (deterministic invariants): met or clearly not met,
  undecided only when the value is NaN.

(A registry criterion is not an experimental condition: those are :class:`harness.transfer.Condition`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

__all__ = [
    "P_BELOW", "Criterion", "CriterionKind", "Direction", "Kind", "Op", "ci", "ci_differs", "ci_outside", "ci_within",
    "claimed_direction", "contrasts_above", "criterion_summary", "criterion_words", "steps_at_least", "value",
]


class Kind(str, Enum):
    """What sort of claim: a directional effect, an equivalence (TOST), a trend, a one-sided upper bound,
    or a deterministic invariant (cache anatomy, judged on the value without a CI)."""

    SUPERIORITY = "superiority"
    NON_SUPERIORITY = "non-superiority"
    EQUIVALENCE = "equivalence"
    TREND = "trend"
    INVARIANT = "invariant"


CriterionKind = Literal["ci", "ci_within", "ci_outside", "ci_differs", "p_below", "steps_at_least", "contrasts_above", "value"]
Op = Literal["<", "<=", ">", ">="]
Direction = Literal["below", "above"]

CI_KINDS: tuple[CriterionKind, ...] = ("ci", "ci_within", "ci_outside", "ci_differs")
"""Criterion kinds judged on the main CI (a claim with one needs a ``ci_level``)."""


@dataclass(frozen=True)
class Criterion:
    """One machine-evaluable part of a decision rule (see the module docstring for the semantics).

    - ``ci``: the main CI against ``bound`` with ``op``;
    - ``ci_within`` / ``ci_outside``: the main CI inside / outside the interval ``bounds``;
    - ``ci_differs``: the main CI excludes 0, and FAIL when it lies inside the equivalence band ``bounds``;
    - ``p_below``: p < the claim's ``alpha_test`` (p one-sided in the :func:`claimed_direction` when there is one);
    - ``steps_at_least``: every adjacent-step CI lies at or above ``bound`` (= −δ);
    - ``contrasts_above``: the CI of every contrast named in ``names`` lies above ``bound``;
    - ``value``: the point estimate (no CI) against ``bound`` with ``op`` (invariants).
    """

    kind: CriterionKind
    op: Op | None = None
    bound: float | None = None
    bounds: tuple[float, float] | None = None
    names: tuple[str, ...] = ()


def ci(op: Op, bound: float) -> Criterion:
    """The whole main CI satisfies ``estimate op bound``."""
    return Criterion("ci", op=op, bound=bound)


def ci_within(low: float, high: float) -> Criterion:
    """The whole main CI lies strictly inside (low, high) (TOST equivalence at the CI's level)."""
    return Criterion("ci_within", bounds=(low, high))


def ci_outside(low: float, high: float) -> Criterion:
    """The whole main CI lies strictly outside [low, high]."""
    return Criterion("ci_outside", bounds=(low, high))


def ci_differs(low: float, high: float) -> Criterion:
    """The whole main CI excludes 0 (a difference of either sign); clearly not met when it lies strictly inside the
    equivalence band (low, high), which must contain 0 (TOST equivalence at the CI's level)."""
    if not low < 0.0 < high:
        raise ValueError(f"ci_differs needs an equivalence band around 0 (low < 0 < high), got ({low}, {high})")
    return Criterion("ci_differs", bounds=(float(low), float(high)))


def steps_at_least(bound: float) -> Criterion:
    """Every adjacent-step CI lower bound is ≥ ``bound``."""
    return Criterion("steps_at_least", bound=bound)


def contrasts_above(bound: float, names: tuple[str, ...]) -> Criterion:
    """The CI (at the claim's level) of every contrast in ``names`` has its lower bound > ``bound``; ``names`` are
    the keys the claim test passes to :func:`harness.claim.verdicts.evaluate` as ``contrast_cis``."""
    if not names or len(set(names)) != len(names):
        raise ValueError(f"contrasts_above needs distinct contrast names, got {names!r}")
    return Criterion("contrasts_above", bound=bound, names=tuple(names))


def value(op: Op, bound: float) -> Criterion:
    """The point estimate satisfies ``estimate op bound`` (deterministic invariants)."""
    return Criterion("value", op=op, bound=bound)


P_BELOW = Criterion("p_below")
"""p < the claim's ``alpha_test`` (clearly not met only when a directional claim's one-sided p ≥ 1 − α_test)."""


def claimed_direction(criteria: tuple[Criterion, ...]) -> Direction | None:
    """The direction a claim asserts, read from its first non-p criterion, or None when it asserts none.

    ``ci`` with ``<`` / ``<=`` → "below", with ``>`` / ``>=`` → "above"; ``steps_at_least`` (an increasing
    trend) → "above". ``ci_within`` (equivalence), ``ci_outside`` and ``ci_differs`` (a difference of either sign,
    two-sided p) and
    ``value`` (invariants, no p) → None; ``contrasts_above`` is never first (:class:`ClaimSpec` refuses it).
    A claim's p criterion is one-sided in this direction, and only then can a large p (≥ 1 − α_test)
    contradict the claim.
    """
    primary = next((c for c in criteria if c.kind != "p_below"), None)
    if primary is None:
        return None
    if primary.kind == "steps_at_least":
        return "above"
    if primary.kind == "ci":
        return "below" if (primary.op or "<") in ("<", "<=") else "above"
    return None

_SIDE = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}


def criterion_words(c: Criterion, *, ci_level: float | None, delta: float | None, p_words: str,
                    short: bool = False) -> str:
    """``c`` in words, as the full decision procedure states it, or with ``short`` in a few symbols for a table
    cell (e.g. ``95% CI < -1``); ``p_words`` is the text of a p criterion (it names the claim's α_test and its
    family)."""
    if c.kind == "p_below":
        return p_words
    if c.kind == "steps_at_least":
        return (f"every step 95% CI ≥ {c.bound:g}" if short
                else f"every adjacent-step 95% CI lower bound is ≥ {c.bound:g} (δ = {delta:g})")
    if c.kind == "value":
        return f"value {c.op} {c.bound:g}" if short else f"the value is {c.op} {c.bound:g}"
    level = f"{ci_level:.0%}" if ci_level is not None else ""
    if c.kind == "contrasts_above":
        if short:
            return f"every contrast {level} CI > {c.bound:g}"
        return (f"the {level} CI of every registered contrast ({', '.join(c.names)}) lies above {c.bound:g} "
                f"(lower bound > {c.bound:g})")
    if c.kind == "ci_differs":
        lo, hi = c.bounds or (0.0, 0.0)
        if short:
            return f"{level} CI excludes 0 (FAIL inside ({lo:g}, {hi:g}))"
        return (f"the whole {level} CI excludes 0 (clearly not met when it lies inside the equivalence band "
                f"({lo:g}, {hi:g}): TOST equivalence at that level)")
    if c.kind == "ci":
        where = f"{c.op} {c.bound:g}" if short else f"{_SIDE[c.op or '<']} {c.bound:g}"
    else:
        lo, hi = c.bounds or (0.0, 0.0)
        where = f"inside ({lo:g}, {hi:g})" if c.kind == "ci_within" else f"outside [{lo:g}, {hi:g}]"
    return f"{level} CI {where}" if short else f"the whole {level} CI lies {where}"


def criterion_summary(c: Criterion, *, ci_level: float | None, p_words: str) -> str:
    """``c`` in a few symbols for a table cell, e.g. ``95% CI < -1`` (``p_words`` for a p criterion)."""
    return criterion_words(c, ci_level=ci_level, delta=None, p_words=p_words, short=True)
