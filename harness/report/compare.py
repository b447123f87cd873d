"""Compare two runs' ``claims.json`` by (claim, model): verdict changes, estimate shifts, and (``--exact``) any
difference in the measured numbers.

    python -m harness.report compare RUN_A RUN_B [--exact]     (or python -m harness.report.compare ...)

RUN_A and RUN_B are report directories or ``claims.json`` files. Timings, model provenance and the generated rule
and decision text are not compared (they describe the run and the code, not the measurement). Exit status: 1 when
a verdict changed, a (claim, model) row is in one run only or, with ``--exact``, any compared value differs; 0
otherwise. A regression check between versions of the suite, or between models.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.report.annotate import annotate
from harness.report.samples import merge_samples, read_samples
from harness.report.twin import add_twin_fields

NOT_COMPARED = frozenset({"timings", "model_provenance", "run", "rule", "explanation", "durations_s", "effect_label",
                          "effect_units"})
"""Record keys that describe the run or the code's wording, not the measurement."""


def load_records(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The records of a run (a report directory or its claims.json) by (claim id, model name), with the
    continuations of samples.jsonl (when the run has one) back under ``details["samples"]`` and the registry's effect
    fields filled in where a record predates them (:func:`harness.report.annotate.annotate`), as are the twin fields
    (:func:`harness.report.twin.add_twin_fields`)."""
    file = path / "claims.json" if path.is_dir() else path
    data = json.loads(file.read_text(encoding="utf-8"))
    records = annotate(merge_samples(data["records"], read_samples(file.parent / "samples.jsonl")))
    records = add_twin_fields(records)
    return {(r["claim"], r["model"]): r for r in records}


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


def compare(run_a: Path, run_b: Path, *, exact: bool = False, shown: int = 30) -> int:
    """Print the comparison of two runs and return the exit status (see the module docstring)."""
    a, b = load_records(run_a), load_records(run_b)
    status = 0
    for key in sorted(set(a) ^ set(b)):
        print(f"only in {'A' if key in a else 'B'}: {key[0]} @ {key[1]}")
        status = 1
    verdicts = shifts = leaves = 0
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        if ra.get("verdict") != rb.get("verdict"):
            print(f"verdict {key[0]} @ {key[1]}: {ra.get('verdict')} -> {rb.get('verdict')}")
            verdicts += 1
        ea, eb = ra.get("estimate"), rb.get("estimate")
        if not _same(ea, eb):
            print(f"estimate {key[0]} @ {key[1]}: {ea} -> {eb}")
            shifts += 1
        for where, x, y in differences(ra, rb):
            leaves += 1
            if exact and leaves <= shown:
                print(f"differs {key[0]} @ {key[1]}: {where}: {str(x)[:80]!r} -> {str(y)[:80]!r}")
    print(f"{len(set(a) & set(b))} rows in both runs: {verdicts} verdict change(s), {shifts} estimate shift(s), "
          f"{leaves} differing value(s) outside timings, provenance and rule text")
    return 1 if status or verdicts or (exact and leaves) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a", type=Path, help="report directory or claims.json of the first run")
    parser.add_argument("run_b", type=Path, help="report directory or claims.json of the second run")
    parser.add_argument("--exact", action="store_true", help="fail on any differing measured value, not only verdicts")
    args = parser.parse_args(argv)
    return compare(args.run_a, args.run_b, exact=args.exact)


if __name__ == "__main__":
    sys.exit(main())
