"""Registry facts every report record carries: which statistic its estimate is, and whether it is an engine check.

:func:`annotate` adds ``effect_type``, ``effect_label``, ``effect_units`` and ``effect_direction`` (see
:mod:`harness.registry.effects`) to each record that lacks them, so records of runs written before these fields
existed gain them on a rebuild, and a record that has them keeps its own (the words of the run that made it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.registry import CLAIMS

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "SKIPPED", "ERROR", "NOT RUN")
"""Every verdict a report row can have, in report order (the values of :class:`harness.claim.verdicts.Verdict`; spelled
out here so the report path does not import :mod:`harness.claim.verdicts` and with it torch)."""

EFFECT_FIELDS = ("effect_type", "effect_label", "effect_units", "effect_direction")
"""The effect fields of a record (claims.json and claims.csv)."""


def annotate(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with the registry's effect fields filled in where absent (in place; the same list returned)."""
    for rec in records:
        spec = CLAIMS.get(rec.get("claim", ""))
        if spec is None:
            continue
        for key, value in spec.effect_fields().items():
            rec.setdefault(key, value)
    return list(records)


def is_engine_check(rec: dict[str, Any]) -> bool:
    """True for a record of a deterministic engine invariant (:attr:`ClaimSpec.is_engine_check`)."""
    spec = CLAIMS.get(rec.get("claim", ""))
    return spec is not None and spec.is_engine_check


def engine_check_value(rec: dict[str, Any]) -> Any:
    """An engine check's measured value for a table: a count stays an int (JSON may hold it as 2.0)."""
    value = rec.get("estimate")
    if CLAIMS[rec["claim"]].effect_type == "mismatch_count" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
