"""Writers for claims.csv and claims.json and the terminal verdict table (records are :meth:`Row.record` dicts).

claims.md, claims.tex, examples.md, methods.md and samples.jsonl have their own modules; :func:`harness.report.build.
write_report` writes them all.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.report.annotate import EFFECT_FIELDS
from harness.report.twin import TWIN_FIELDS

CSV_COLUMNS = ("claim", "version", "model", "verdict", "inconclusive_reason", *EFFECT_FIELDS, "estimate", "ci_low", "ci_high", "ci_level",
               "n", "planned_n", "p_value", "p_adjusted", "alpha_test", "family", "rule", "explanation", "test",
               *TWIN_FIELDS)
"""The columns of claims.csv (full-precision numbers; the effect columns say which statistic ``estimate`` is; the
twin columns are the random-weight twin's, empty without ``--null-twin``: :mod:`harness.report.twin`)."""


def write_csv(records: Sequence[dict[str, Any]], path: Path) -> None:
    """claims.csv: one row per claim × model with :data:`CSV_COLUMNS`."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in CSV_COLUMNS})


def write_json(records: Sequence[dict[str, Any]], run: dict[str, Any], path: Path) -> None:
    """claims.json: ``{"run": <header>, "records": [...]}`` (strict JSON, no NaN)."""
    payload = {"run": run, "records": list(records)}
    path.write_text(json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")


def terminal_table(records: Sequence[dict[str, Any]]) -> list[str]:
    """Compact claims × models verdict lines for the terminal summary."""
    claims = list(dict.fromkeys(r["claim"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    by_key = {(r["claim"], r["model"]): r["verdict"] for r in records}
    widths = [max([len("claim"), *map(len, claims)])] + [max(len(m), len("INCONCLUSIVE")) for m in models]
    lines = ["  ".join(h.ljust(w) for h, w in zip(["claim", *models], widths)).rstrip()]
    for c in claims:
        cells = [c, *(by_key.get((c, m), "-") for m in models)]
        lines.append("  ".join(x.ljust(w) for x, w in zip(cells, widths)).rstrip())
    return lines
