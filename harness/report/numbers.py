"""One number format for every report file (claims.md, claims.tex, examples.md, methods.md).

- integers (``int``) as integers: ``84``;
- other numbers with 3 significant digits, trailing zeros kept so every cell has the same precision:
  ``1.00``, ``-0.304``, ``0.0246``, ``123``;
- magnitudes below 1e-3 (p-values included) or at or above 1e4 in scientific notation with 3 significant digits:
  ``3.20e-06``, ``1.18e-05``;
- absent or non-finite values as ``–``.

claims.csv and claims.json keep full precision; only text meant for reading is rounded. Registered constants
(α, bounds, tolerances) are printed as the generated rule text prints them (``0.01``, ``-0.1``), not re-rounded.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"
"""What an absent or non-finite number prints as."""


def fmt(x: Any) -> str:
    """``x`` in the report's number format (see the module docstring); a string is returned unchanged."""
    if x is None:
        return MISSING
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    v = float(x)
    if not math.isfinite(v):
        return MISSING
    if v == 0.0:
        return "0.00"
    if abs(v) < 1e-3 or abs(v) >= 1e4:
        return f"{v:.2e}"
    text = f"{v:#.3g}"
    return text.removesuffix(".")


def fmt_ci(low: Any, high: Any) -> str:
    """``[low, high]`` in the report's number format, or ``–`` when both bounds are absent."""
    if (low is None or _nonfinite(low)) and (high is None or _nonfinite(high)):
        return MISSING
    return f"[{fmt(low)}, {fmt(high)}]"


def _nonfinite(x: Any) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


UNDEFINED = "undefined"
"""How an undefined estimate reads in md and tex (claims.json and claims.csv hold null)."""


def estimate_text(rec: dict[str, Any]) -> str:
    """A record's estimate, or ``undefined`` when the claim's estimate is undefined (``inconclusive_reason``)."""
    return UNDEFINED if rec.get("inconclusive_reason") == "undefined" else fmt(rec.get("estimate"))


def estimate_with_ci(rec: dict[str, Any]) -> str:
    """A record's estimate and its CI in one cell: ``0.720 [0.610, 0.800]`` (the CI left out when there is none;
    ``undefined`` for an undefined estimate)."""
    ci = fmt_ci(rec.get("ci_low"), rec.get("ci_high"))
    est = estimate_text(rec)
    return est if ci == MISSING or est == UNDEFINED else f"{est} {ci}"
