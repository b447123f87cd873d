"""Claim results, the three-valued verdict (DESIGN §5) and recording into pytest's ``user_properties``.

A claim test measures, computes its estimate, CI and p-value with :mod:`harness.stats`, then::

    result = evaluate(get_claim("rv_contraction"), model=lm.name, estimate=g, ci_low=lo, ci_high=hi,
                      p_value=p, n=n, details={...})
    record_claim(record_property, result)     # before asserting, so a FAIL still reaches the report
    assert result.verdict is Verdict.PASS, result.explanation

Verdict logic (:func:`evaluate`): each rule criterion of the :class:`~harness.registry.ClaimSpec` is
met, clearly not met or undecided (see :mod:`harness.registry.rules`); PASS when all are met, FAIL when any is clearly
not met (the CI lies wholly outside the claimed region, or a directional claim's one-sided p ≥ 1 − α_test contradicts
its direction), INCONCLUSIVE otherwise: a CI straddling the bound, or p ≥ α_test without that contradiction.
Two overrides give INCONCLUSIVE regardless: an undefined estimate (``undefined_reason``, or a NaN estimate or
CI where the rule needs one) and n below the planned n. The explanation names the deciding criteria and why,
then the state of the others.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.foundation.serialize import to_builtin
from harness.registry import ClaimSpec, Criterion
from harness.registry.rules import claimed_direction

PROPERTY_NAME = "claim_result"


class Verdict(str, enum.Enum):
    """PASS / FAIL / INCONCLUSIVE come from a claim's rule; SKIPPED, ERROR and NOT RUN only appear in report rows
    (NOT RUN: a selected claim test that never reported, because the session was interrupted or stopped)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    NOT_RUN = "NOT RUN"


class _Tri(enum.Enum):
    TRUE = "met"
    FALSE = "not met"
    UNKNOWN = "undecided"


@dataclass
class ClaimResult:
    """One claim × model outcome. Numbers are in the claim's estimator units (see its ``effect_type``).

    ``p_adjusted`` is filled by the report over the registry family (Holm); a test leaves it None.
    ``details`` holds claim-specific data for the report (figures read documented keys, see
    :mod:`harness.report`); it must contain only JSON-representable values after :func:`harness.foundation.serialize.to_builtin`.
    """

    claim: str
    version: int
    model: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float | None
    p_value: float | None
    n: int | None
    planned_n: int | None
    alpha_test: float | None
    rule: str
    verdict: Verdict
    explanation: str
    p_adjusted: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    inconclusive_reason: str | None = None
    """Why an INCONCLUSIVE is one (None otherwise): "undefined" (the estimate is not defined; estimate and CI are
    then None and the would-be numbers sit in ``details["undefined_estimate"]``), "underpowered" (n below the
    planned n: the rule alone is in the explanation) or "data" (the rule itself is undecided at n ≥ planned)."""

    @property
    def passed(self) -> bool:
        """True only for PASS."""
        return self.verdict is Verdict.PASS

    def to_record(self) -> dict[str, Any]:
        """A dict of builtin types only (numpy scalars cast, enums as their value, NaN/inf as None)."""
        record = {
            "claim": self.claim, "version": self.version, "model": self.model,
            "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high, "ci_level": self.ci_level,
            "p_value": self.p_value, "p_adjusted": self.p_adjusted, "n": self.n, "planned_n": self.planned_n,
            "alpha_test": self.alpha_test, "rule": self.rule, "verdict": self.verdict,
            "explanation": self.explanation, "inconclusive_reason": self.inconclusive_reason, "details": self.details,
        }
        return to_builtin(record, nonfinite="null")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ClaimResult:
        """Inverse of :meth:`to_record` (the report uses it on records that arrive from workers)."""
        known = {f for f in cls.__dataclass_fields__}
        missing = {"claim", "model", "verdict"} - set(record)
        if missing:
            raise ValueError(f"claim record lacks {sorted(missing)}: {dict(record)!r:.200}")
        kwargs = {k: record.get(k) for k in known}
        kwargs["verdict"] = Verdict(record["verdict"])
        kwargs["details"] = dict(record.get("details") or {})
        kwargs["rule"] = record.get("rule") or ""
        kwargs["explanation"] = record.get("explanation") or ""
        kwargs["version"] = int(record.get("version") or 0)
        return cls(**kwargs)


class ClaimNotPassed(AssertionError):
    """A claim's verdict is FAIL or INCONCLUSIVE: a scientific result, shown as one line instead of a traceback."""


def assert_pass(result: ClaimResult) -> None:
    """End a claim test: return on PASS, else raise :class:`ClaimNotPassed` with the verdict's explanation.

    The claims report plugin replaces the traceback of this exception with its message, so ``pytest claims/``
    prints one line per non-passing claim (the explanation names the statistic, its CI or p and the bound).
    Call :func:`record_claim` first.
    """
    if result.verdict is not Verdict.PASS:
        raise ClaimNotPassed(f"{result.claim} [{result.model}] {result.explanation}")


def record_claim(record_property: Callable[[str, Any], None], result: ClaimResult) -> None:
    """Record ``result`` as the single user property ``claim_result`` (a builtin-only dict).

    Call this before asserting: the report reads the property from the call-phase report even when the
    test then fails.
    """
    record_property(PROPERTY_NAME, result.to_record())


# ------------------------------------------------------------------------------------------------ verdicts


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    return f"{x:.3g}"


def _is_num(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def _ci_vs(op: str, bound: float, low: float, high: float) -> _Tri:
    if op == "<":
        return _Tri.TRUE if high < bound else _Tri.FALSE if low >= bound else _Tri.UNKNOWN
    if op == "<=":
        return _Tri.TRUE if high <= bound else _Tri.FALSE if low > bound else _Tri.UNKNOWN
    if op == ">":
        return _Tri.TRUE if low > bound else _Tri.FALSE if high <= bound else _Tri.UNKNOWN
    if op == ">=":
        return _Tri.TRUE if low >= bound else _Tri.FALSE if high < bound else _Tri.UNKNOWN
    raise ValueError(f"unknown comparator {op!r}")


_SIDE = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _value_vs(op: str, bound: float, x: float) -> bool:
    return {"<": x < bound, "<=": x <= bound, ">": x > bound, ">=": x >= bound}[op]


def _judge_p(spec: ClaimSpec, p_value: float | None) -> tuple[_Tri, str]:
    """The p criterion: met when p < α_test; clearly not met only when a directional claim's one-sided p is
    ≥ 1 − α_test (the opposite direction is significant); otherwise undecided (see :mod:`harness.registry.rules`)."""
    if not _is_num(p_value):
        return _Tri.UNKNOWN, "p undefined"
    p, a = float(p_value), float(spec.alpha_test)  # type: ignore[arg-type]
    if p < a:
        return _Tri.TRUE, f"p = {_fmt(p)} < {a:.3g}"
    direction = claimed_direction(spec.criteria)
    if direction is None:
        return _Tri.UNKNOWN, f"p = {_fmt(p)} ≥ {a:.3g} (not significant)"
    if p >= 1.0 - a:
        return _Tri.FALSE, (f"one-sided p = {p:.4g} ≥ 1 − {a:.3g}: the data contradict the claimed direction "
                            f"({direction}; the opposite test's p = 1 − p = {_fmt(1.0 - p)})")
    return _Tri.UNKNOWN, f"p = {_fmt(p)} ≥ {a:.3g} (not significant; the claimed direction is not contradicted)"


def _judge(
    c: Criterion,
    spec: ClaimSpec,
    estimate: float | None,
    ci: tuple[float | None, float | None],
    p_value: float | None,
    steps: Sequence[tuple[float, float]] | None,
    contrasts: Mapping[str, tuple[float, float]] | None,
) -> tuple[_Tri, str]:
    """One criterion's truth value and a short phrase saying why."""
    low, high = ci
    ci_text = f"{spec.ci_level:.0%} CI [{_fmt(low)}, {_fmt(high)}]" if spec.ci_level else ""
    if c.kind in ("ci", "ci_within", "ci_outside", "ci_differs"):
        if not (_is_num(low) and _is_num(high)):
            return _Tri.UNKNOWN, "CI undefined"
        lo, hi = float(low), float(high)  # type: ignore[arg-type]
        if c.kind == "ci":
            op = c.op or "<"
            t = _ci_vs(op, float(c.bound), lo, hi)  # type: ignore[arg-type]
            if t is _Tri.UNKNOWN:
                return t, f"{ci_text} straddles {c.bound:g}"
            side = _SIDE[op] if t is _Tri.TRUE else _SIDE[_NEGATED[op]]
            return t, f"{ci_text} lies {side} {c.bound:g}"
        a, b = c.bounds  # type: ignore[misc]
        inside = a < lo and hi < b
        if c.kind == "ci_differs":
            if inside:
                return _Tri.FALSE, f"{ci_text} inside the equivalence band ({a:g}, {b:g})"
            if hi < 0.0 or lo > 0.0:
                return _Tri.TRUE, f"{ci_text} excludes 0"
            return _Tri.UNKNOWN, f"{ci_text} covers 0 and crosses the equivalence band ({a:g}, {b:g})"
        outside = hi < a or lo > b
        touches_outside = hi <= a or lo >= b
        touches_inside = a <= lo and hi <= b
        if c.kind == "ci_within":
            t = _Tri.TRUE if inside else _Tri.FALSE if touches_outside else _Tri.UNKNOWN
            word = {_Tri.TRUE: "inside", _Tri.FALSE: "outside", _Tri.UNKNOWN: "crosses"}[t]
        else:
            t = _Tri.TRUE if outside else _Tri.FALSE if touches_inside else _Tri.UNKNOWN
            word = {_Tri.TRUE: "outside", _Tri.FALSE: "inside", _Tri.UNKNOWN: "crosses"}[t]
        return t, f"{ci_text} {word} ({a:g}, {b:g})"
    if c.kind == "p_below":
        return _judge_p(spec, p_value)
    if c.kind == "steps_at_least":
        if not steps:
            raise ValueError(f"claim {spec.id}: the rule needs adjacent-step CIs (step_cis) and none were given")
        bound = float(c.bound)  # type: ignore[arg-type]
        states = [_ci_vs(">=", bound, lo, hi) if _is_num(lo) and _is_num(hi) else _Tri.UNKNOWN for lo, hi in steps]
        worst = min(range(len(steps)), key=lambda i: steps[i][0] if _is_num(steps[i][0]) else -math.inf)
        t = _Tri.FALSE if _Tri.FALSE in states else _Tri.UNKNOWN if _Tri.UNKNOWN in states else _Tri.TRUE
        lo, hi = steps[worst]
        return t, f"lowest step CI [{_fmt(lo)}, {_fmt(hi)}] vs −δ = {bound:g}"
    if c.kind == "contrasts_above":
        missing = [name for name in c.names if name not in (contrasts or {})]
        if missing:
            raise ValueError(f"claim {spec.id}: the rule needs contrast CIs {missing} (contrast_cis) and none were given")
        bound = float(c.bound)  # type: ignore[arg-type]
        cis = {name: contrasts[name] for name in c.names}  # type: ignore[index]
        each = {name: _ci_vs(">", bound, lo, hi) if _is_num(lo) and _is_num(hi) else _Tri.UNKNOWN
                for name, (lo, hi) in cis.items()}
        t = _Tri.FALSE if _Tri.FALSE in each.values() else _Tri.UNKNOWN if _Tri.UNKNOWN in each.values() else _Tri.TRUE
        level = f"{spec.ci_level:.0%} " if spec.ci_level else ""
        listed = ", ".join(f"{name} {level}CI [{_fmt(lo)}, {_fmt(hi)}]" for name, (lo, hi) in cis.items())
        return t, f"contrasts {listed} vs {bound:g}"
    if c.kind == "value":
        if not _is_num(estimate):
            return _Tri.UNKNOWN, "value undefined"
        ok = _value_vs(c.op or "<=", float(c.bound), float(estimate))  # type: ignore[arg-type]
        return (_Tri.TRUE if ok else _Tri.FALSE), f"{_fmt(estimate)} {'' if ok else 'not '}{c.op} {c.bound:g}"
    raise ValueError(f"claim {spec.id}: unknown criterion kind {c.kind!r}")


def evaluate(
    spec: ClaimSpec,
    *,
    model: str,
    estimate: float | None,
    n: int,
    ci_low: float | None = None,
    ci_high: float | None = None,
    p_value: float | None = None,
    step_cis: Sequence[tuple[float, float]] | None = None,
    contrast_cis: Mapping[str, tuple[float, float]] | None = None,
    undefined_reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> ClaimResult:
    """Apply ``spec``'s decision rule to the measured numbers and return the :class:`ClaimResult`.

    ``n`` is in ``spec.n_unit``. ``step_cis`` are the adjacent-step CIs for a ``steps_at_least`` rule;
    ``contrast_cis`` the ``{name: (low, high)}`` CIs of the contrasts a ``contrasts_above`` rule names (in the
    estimate's units, at the claim's CI level); both are copied into the record's details.
    ``undefined_reason`` (e.g. "denominator CI includes 0") makes the verdict INCONCLUSIVE.
    """
    if not model:
        raise ValueError(f"claim {spec.id}: model name is empty")
    if n < 0:
        raise ValueError(f"claim {spec.id}: n must be ≥ 0, got {n}")
    if _is_num(ci_low) and _is_num(ci_high) and float(ci_low) > float(ci_high):  # type: ignore[arg-type]
        raise ValueError(f"claim {spec.id}: ci_low {ci_low} exceeds ci_high {ci_high}")
    if p_value is not None and _is_num(p_value) and not 0.0 <= float(p_value) <= 1.0:
        raise ValueError(f"claim {spec.id}: p_value must be in [0, 1], got {p_value}")
    if step_cis is not None:
        step_cis = [(float(lo), float(hi)) for lo, hi in step_cis]
    if contrast_cis is not None:
        contrast_cis = {str(k): (float(lo), float(hi)) for k, (lo, hi) in contrast_cis.items()}

    judged = [_judge(c, spec, estimate, (ci_low, ci_high), p_value, step_cis, contrast_cis) for c in spec.criteria]
    states = [t for t, _ in judged]
    decided = {_Tri.FALSE: Verdict.FAIL, _Tri.UNKNOWN: Verdict.INCONCLUSIVE}
    deciding = next((t for t in (_Tri.FALSE, _Tri.UNKNOWN) if t in states), _Tri.TRUE)
    rule_verdict = decided.get(deciding, Verdict.PASS)
    why = [w for t, w in judged if t is deciding]
    rest = [f"{t.value}: {w}" for t, w in judged if t is not deciding]
    if rest:  # the other criteria too, each with its state first, so no state reads as the verdict's
        why.append("other criteria: " + "; ".join(rest))

    head = f"{spec.effect_type} = {_fmt(estimate)}"
    extra: dict[str, Any] = {}
    reason: str | None = None
    if undefined_reason:
        verdict, text, reason = Verdict.INCONCLUSIVE, f"estimate undefined: {undefined_reason}", "undefined"
        head = f"{spec.effect_type} undefined"
        extra["undefined_estimate"] = {"estimate": _float_or_none(estimate), "ci_low": _float_or_none(ci_low),
                                       "ci_high": _float_or_none(ci_high)}
        estimate = ci_low = ci_high = None
    elif n < spec.planned_n:
        verdict, reason = Verdict.INCONCLUSIVE, "underpowered"
        text = (f"underpowered: n = {n} < planned {spec.planned_n} {spec.n_unit} (what the rule alone would say: "
                f"{rule_verdict.value}; {'; '.join(why)})")
    else:
        verdict, text = rule_verdict, "; ".join(why)
        reason = "data" if verdict is Verdict.INCONCLUSIVE else None

    return ClaimResult(
        claim=spec.id, version=spec.version, model=model,
        estimate=_float_or_none(estimate), ci_low=_float_or_none(ci_low), ci_high=_float_or_none(ci_high),
        ci_level=spec.ci_level, p_value=_float_or_none(p_value), n=int(n), planned_n=spec.planned_n,
        alpha_test=spec.alpha_test, rule=spec.rule_summary(), verdict=verdict,
        explanation=f"{verdict.value}: {head}; {text}",
        details=dict(details or {}) | extra | ({"step_cis": [list(s) for s in step_cis]} if step_cis else {})
        | ({"contrast_cis": {k: list(v) for k, v in contrast_cis.items()}} if contrast_cis else {}),
        inconclusive_reason=reason,
    )


def _float_or_none(x: float | None) -> float | None:
    return float(x) if x is not None else None
