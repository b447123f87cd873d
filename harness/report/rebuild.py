"""Rebuild a run's report files from its claims.json (and samples.jsonl) without loading any model.

    python -m harness.report rebuild RUN_DIR [--out DIR]

A GPU run's report can then be re-rendered or restyled on a laptop: the records and the run header in
claims.json hold every number and the provenance, samples.jsonl every continuation. Rebuilding a report written
by :func:`harness.report.build.write_report` reproduces claims.md, claims.csv, claims.json and claims.tex byte for
byte (the run header, timestamps included, is stored, not re-measured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.samples import merge_samples, read_samples


def load_run(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records with their samples merged back, run header) of a report directory or its claims.json."""
    file = path / "claims.json" if path.is_dir() else path
    data = json.loads(file.read_text(encoding="utf-8"))
    records = merge_samples(data["records"], read_samples(file.parent / "samples.jsonl"))
    return records, data.get("run") or {}


def rebuild(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Write every report file of ``run_dir`` into ``out_dir`` (default: ``run_dir`` itself); returns the paths."""
    from harness.report.build import write_report

    records, header = load_run(run_dir)
    target = out_dir if out_dir is not None else (run_dir if run_dir.is_dir() else run_dir.parent)
    return write_report(records, header, target)
