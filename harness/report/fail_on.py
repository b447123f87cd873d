"""What makes ``compare`` fail: ``--fail-on verdict``, ``--fail-on estimate:5%`` (relative), ``estimate:0.02``
(absolute), several at once separated by commas, or ``none``.

- ``verdict``: a verdict changed, or a row is in one run only (the default).
- ``estimate:X%``: an estimate moved by more than X % of the first run's magnitude; ``estimate:X``: by more than X
  in the estimate's own units. An estimate that is defined in one run and undefined (absent or not finite) in the
  other counts as moved; undefined in both does not.
- ``none``: report only; the exit status is 0 whatever differs (unreadable input still exits 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["FailOn", "FailOnError", "Tolerance", "parse_fail_on"]


class FailOnError(ValueError):
    """A ``--fail-on`` value that names no known condition or no valid tolerance."""


@dataclass(frozen=True)
class Tolerance:
    """How far an estimate may move: ``value`` in the estimate's units, or ``value`` % of |first estimate|."""

    value: float
    relative: bool

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.relative else f"{self.value:g}"

    def exceeded(self, a: Any, b: Any) -> bool:
        """Whether the move from ``a`` to ``b`` is beyond the tolerance (see the module docstring)."""
        defined_a, defined_b = _defined(a), _defined(b)
        if not (defined_a and defined_b):
            return defined_a != defined_b
        shift = abs(float(b) - float(a))
        limit = self.value / 100 * abs(float(a)) if self.relative else self.value
        return shift > limit


@dataclass(frozen=True)
class FailOn:
    """The conditions under which ``compare`` exits 1."""

    verdict: bool = True
    estimate: Tolerance | None = None

    def __str__(self) -> str:
        parts = (["verdict"] if self.verdict else []) + ([f"estimate:{self.estimate}"] if self.estimate else [])
        return ",".join(parts) or "none"


def parse_fail_on(text: str) -> FailOn:
    """``verdict``, ``estimate:5%``, ``estimate:0.02``, ``none`` or a comma-separated mix, as a :class:`FailOn`;
    :class:`FailOnError` (one line naming the choices) for anything else."""
    verdict, estimate = False, None
    for part in (p.strip() for p in text.split(",")):
        if part == "verdict":
            verdict = True
        elif part == "none":
            continue
        elif part.startswith("estimate:"):
            estimate = _tolerance(part.removeprefix("estimate:"))
        else:
            raise FailOnError(f"--fail-on {text!r}: {part!r} is not one of verdict, estimate:X%, estimate:X, none")
    return FailOn(verdict=verdict, estimate=estimate)


def _tolerance(text: str) -> Tolerance:
    relative = text.endswith("%")
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise FailOnError(f"--fail-on estimate:{text}: the tolerance must be a number ≥ 0, e.g. estimate:5% or "
                          "estimate:0.02")
    return Tolerance(value, relative)


def _defined(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
