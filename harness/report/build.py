"""Every report file of a run from its records and run header, written atomically: the one writer the plugin (at
the end of a session) and ``python -m harness.report rebuild`` (from claims.json and samples.jsonl) share.

Files (in the report directory): claims.md, claims.csv, claims.json (records without their samples), claims.tex,
methods.md, examples.md, samples.jsonl (every continuation; only when some record carries samples) and the
figures of :func:`harness.report.figures.write_figures` and :func:`~harness.report.figures.write_run_figures`.
Nothing here imports torch or loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.report.annotate import annotate
from harness.report.examples import examples_markdown
from harness.report.files import suite_report_files, write_staged
from harness.report.latex import claims_latex
from harness.report.markdown import claims_markdown
from harness.report.methods import methods_markdown
from harness.report.samples import split_samples, write_samples
from harness.report.twin import add_twin_fields
from harness.report.writers import write_csv, write_json


def write_report(records: Sequence[dict[str, Any]], header: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write every report file into ``out_dir`` (staged, then moved into place together; see
    :func:`harness.report.files.write_staged`) and remove the suite's report files there that this write did not
    produce (figures or a samples.jsonl of an earlier report). ``records`` may carry ``details["samples"]``; they
    go to samples.jsonl, not claims.json. The records are annotated with their effect fields
    (:func:`harness.report.annotate.annotate`, in place). Returns the paths written."""
    # matplotlib: imported when a report is written
    from harness.report.figures import write_figures, write_run_figures

    full = add_twin_fields(annotate(list(records)))
    slim, sample_rows = split_samples(full)

    def write(staging: Path) -> None:
        figures = write_figures(full, staging)
        run_figures = write_run_figures(full, staging)
        (staging / "claims.md").write_text(claims_markdown(slim, header, figures, run_figures), encoding="utf-8")
        (staging / "claims.tex").write_text(claims_latex(slim, header), encoding="utf-8")
        (staging / "methods.md").write_text(methods_markdown(slim, header), encoding="utf-8")
        (staging / "examples.md").write_text(examples_markdown(full, header), encoding="utf-8")
        if sample_rows:
            write_samples(sample_rows, staging / "samples.jsonl")
        write_csv(slim, staging / "claims.csv")
        write_json(slim, header, staging / "claims.json")

    placed = write_staged(out_dir, write)
    for stale in set(suite_report_files(out_dir)) - set(placed):
        stale.unlink()
    return placed
