"""Compare two runs' ``claims.json``: a Markdown table of verdicts and estimates row by row, and an exit status a
regression check can use.

    python -m harness.report compare RUN_A RUN_B [--by claim-model|claim] [--model-a M] [--model-b M]
                                                 [--fail-on verdict|estimate:5%|estimate:0.02|none] [--exact]

RUN_A and RUN_B are report directories or ``claims.json`` files (the same one twice compares two models of one
run). Rows are matched by (claim, model) by default: a regression check between versions of the suite on the same
models. ``--by claim`` matches by claim alone, to compare models: each run must then hold one model per claim, or
``--model-a`` / ``--model-b`` pick the model of each run. Timings, model provenance and the generated rule and
decision text are not compared (they describe the run and the code, not the measurement).

Exit status: 0 when nothing that ``--fail-on`` counts differs; 1 when it does (default ``verdict``: a verdict
changed or a row is in one run only; ``estimate:X%``/``estimate:X``: an estimate moved beyond the tolerance, see
:mod:`harness.report.fail_on`; ``--exact``: any compared value differs); 2 on a usage error or a missing or
malformed input, with one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.annotate import annotate
from harness.report.fail_on import FailOn, FailOnError, parse_fail_on
from harness.report.numbers import fmt
from harness.report.samples import merge_samples, read_samples
from harness.report.tables import md_table
from harness.report.twin import add_twin_fields

NOT_COMPARED = frozenset({"timings", "model_provenance", "run", "rule", "explanation", "durations_s", "effect_label",
                          "effect_units"})
"""Record keys that describe the run or the code's wording, not the measurement."""

BY_CHOICES = ("claim-model", "claim")
"""How rows are matched: by (claim, model), or by claim alone (to compare models)."""


class RunInputError(ValueError):
    """A run that cannot be compared: missing, unreadable, not a claims.json, or ambiguous under ``--by claim``."""


@dataclass
class Row:
    """One compared row: the claim, each side's model and record (None when the row is in one run only) and what
    differs."""

    claim: str
    model_a: str | None
    model_b: str | None
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    fails: bool = False


def read_run(path: Path) -> list[dict[str, Any]]:
    """The records of a run (a report directory or its claims.json), with the continuations of samples.jsonl (when
    the run has one) back under ``details["samples"]`` and the registry's effect fields filled in where a record
    predates them (:func:`harness.report.annotate.annotate`), as are the twin fields
    (:func:`harness.report.twin.add_twin_fields`). :class:`RunInputError` (one line) for a missing or malformed
    input."""
    file = path / "claims.json" if path.is_dir() else path
    if not file.is_file():
        where = f"{path} has no claims.json" if path.is_dir() else f"{path} does not exist"
        raise RunInputError(f"{where} (give a report directory or its claims.json)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunInputError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise RunInputError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"claim", "model"} <= set(r) for r in records):
        raise RunInputError(f"{file}: not a kvclaims claims.json (no 'records' list of claim/model records)")
    return add_twin_fields(annotate(merge_samples(records, read_samples(file.parent / "samples.jsonl"))))


def load_records(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The records of a run (:func:`read_run`) by (claim id, model name)."""
    return {(r["claim"], r["model"]): r for r in read_run(path)}


def index_records(records: list[dict[str, Any]], *, by: str, model: str | None, side: str) -> dict[Any, dict]:
    """``records`` keyed for matching: by (claim, model), or by claim alone (``by="claim"``), keeping only
    ``model``'s records when one is named. :class:`RunInputError` when a claim has several models under
    ``--by claim`` (naming them and the option that picks one) or when ``model`` has no record."""
    kept = [r for r in records if model is None or r["model"] == model]
    if model is not None and not kept:
        found = ", ".join(sorted({r["model"] for r in records})) or "none"
        raise RunInputError(f"run {side} has no record for model {model} (its models: {found})")
    if by == "claim-model":
        return {(r["claim"], r["model"]): r for r in kept}
    out: dict[Any, dict] = {}
    for r in kept:
        if r["claim"] in out and out[r["claim"]]["model"] != r["model"]:
            models = sorted({x["model"] for x in kept if x["claim"] == r["claim"]})
            raise RunInputError(f"--by claim: run {side} holds {r['claim']} for {len(models)} models "
                                f"({', '.join(models)}); pick one with --model-{side.lower()}")
        out[r["claim"]] = r
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def differences(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every leaf where ``a`` and ``b`` differ, as (dotted path, value in a, value in b); NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in NOT_COMPARED:
                continue
            yield from differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}" if path else key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif not _same(a, b):
        yield path, a, b


def compare_rows(a: dict[Any, dict], b: dict[Any, dict], fail_on: FailOn) -> list[Row]:
    """One :class:`Row` per key of either run, sorted, with its notes and whether ``fail_on`` counts it."""
    rows = []
    for key in sorted(set(a) | set(b)):
        ra, rb = a.get(key), b.get(key)
        claim = (ra or rb)["claim"]
        row = Row(claim, ra and ra["model"], rb and rb["model"], ra, rb)
        if ra is None or rb is None:
            row.notes.append(f"only in {'A' if rb is None else 'B'}")
            row.fails = fail_on.verdict
        else:
            if ra.get("verdict") != rb.get("verdict"):
                row.notes.append("verdict changed")
                row.fails = fail_on.verdict
            if not _same(ra.get("estimate"), rb.get("estimate")):
                row.notes.append("estimate moved")
                if fail_on.estimate and fail_on.estimate.exceeded(ra.get("estimate"), rb.get("estimate")):
                    row.notes[-1] = f"estimate moved beyond {fail_on.estimate}"
                    row.fails = True
        rows.append(row)
    return rows


def _shift(a: Any, b: Any) -> tuple[str, str]:
    """B − A and (B − A) / |A| as text, ``–`` where undefined."""
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return fmt(None), fmt(None)
    relative = (y - x) / abs(x) * 100 if x != 0 and math.isfinite(x) and math.isfinite(y) else None
    return fmt(y - x), "–" if relative is None else f"{relative:+.1f}%"


def markdown_table(rows: list[Row], *, by: str) -> str:
    """The comparison as a GitHub Markdown table: one line per row, verdicts and estimates of both runs, the shift
    and the notes (a row that makes the comparison fail is marked ``FAIL``)."""
    headers = ["claim", "model" if by == "claim-model" else "model A → B", "verdict A", "verdict B", "estimate A",
               "estimate B", "B − A", "B − A (%)", "differs"]
    body = []
    for row in rows:
        ea, eb = (row.a or {}).get("estimate"), (row.b or {}).get("estimate")
        model = (row.model_a or row.model_b) if by == "claim-model" else f"{row.model_a or '–'} → {row.model_b or '–'}"
        notes = ", ".join(row.notes) or "–"
        body.append([row.claim, model, (row.a or {}).get("verdict", "–"), (row.b or {}).get("verdict", "–"),
                     fmt(ea), fmt(eb), *_shift(ea, eb), f"**FAIL**: {notes}" if row.fails else notes])
    return md_table(headers, body)


def compare(run_a: Path, run_b: Path, *, exact: bool = False, by: str = "claim-model",
            fail_on: FailOn | None = None, model_a: str | None = None, model_b: str | None = None,
            shown: int = 30) -> int:
    """Print the comparison of two runs (a Markdown table, a summary line and, with ``exact``, the first ``shown``
    differing values) and return the exit status (see the module docstring). Raises :class:`RunInputError` for an
    input that cannot be compared."""
    if by not in BY_CHOICES:
        raise RunInputError(f"--by {by}: choose one of {', '.join(BY_CHOICES)}")
    if by == "claim-model" and model_a and model_b and model_a != model_b:
        raise RunInputError(f"--model-a {model_a} and --model-b {model_b} never match by (claim, model); "
                            "add --by claim to compare two models")
    fail_on = fail_on or FailOn()
    a = index_records(read_run(run_a), by=by, model=model_a, side="A")
    b = index_records(read_run(run_b), by=by, model=model_b, side="B")
    rows = compare_rows(a, b, fail_on)
    print(markdown_table(rows, by=by))
    both = [row for row in rows if row.a is not None and row.b is not None]
    leaves = [(row, where, x, y) for row in both for where, x, y in differences(row.a, row.b)]
    if exact:
        for row, where, x, y in leaves[:shown]:
            print(f"differs {row.claim} @ {row.model_a}/{row.model_b}: {where}: {str(x)[:80]!r} -> {str(y)[:80]!r}")
    verdicts = sum("verdict changed" in row.notes for row in both)
    shifts = sum(any(n.startswith("estimate moved") for n in row.notes) for row in both)
    print(f"\n{len(both)} rows in both runs, {len(rows) - len(both)} in one only: {verdicts} verdict change(s), "
          f"{shifts} estimate shift(s), {len(leaves)} differing value(s) outside timings, provenance and rule text; "
          f"fail on: {fail_on}{' and any value (--exact)' if exact else ''}")
    if not both and by == "claim-model" and a and b:
        print("no (claim, model) row is in both runs: to compare two models, add --by claim")
    return 1 if any(row.fails for row in rows) or (exact and leaves) else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``compare`` arguments, shared by ``python -m harness.report compare`` and ``python -m
    harness.report.compare``."""
    parser.add_argument("run_a", type=Path, help="report directory or claims.json of the first run (A)")
    parser.add_argument("run_b", type=Path, help="report directory or claims.json of the second run (B)")
    parser.add_argument("--by", choices=BY_CHOICES, default="claim-model",
                        help="match rows by (claim, model) (default) or by claim alone, to compare models")
    parser.add_argument("--model-a", default=None, help="only this model's records of run A")
    parser.add_argument("--model-b", default=None, help="only this model's records of run B")
    parser.add_argument("--fail-on", default="verdict", metavar="verdict|estimate:X%|estimate:X|none",
                        help="what exits 1, comma-separated (default: verdict, which includes a row in one run only)")
    parser.add_argument("--exact", action="store_true", help="also fail on any differing measured value")


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``compare`` command: its exit status, or 2 with one ``error:`` line on stderr for a bad
    ``--fail-on`` or an input that cannot be compared."""
    try:
        return compare(args.run_a, args.run_b, exact=args.exact, by=args.by, fail_on=parse_fail_on(args.fail_on),
                       model_a=args.model_a, model_b=args.model_b)
    except (RunInputError, FailOnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.report.compare``: parse ``argv`` and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.report.compare", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
