"""The training-dynamics view: each claim's effect against training step, for a run that holds a revision series.

A revision series is two or more checkpoints of one training run named with ``--model`` (recognised from the model
names by :mod:`harness.models.revisions`: ``hf:ORG/NAME@stepN`` revisions of one Hub id, or ``path:`` directories of
one parent named ``stepN``). Each checkpoint is a model of its own in every other table (its row is keyed by its
``--model`` name); this view lines the checkpoints up by step, which asks the seed's question "when in training does
the effect emerge". The records' order is the run's ``--model`` order, which numbers the checkpoints of a series
whose names give no step.

claims.md gets a "Training dynamics" section (:func:`training_dynamics_section`): per series, a table with one row
per claim (engine checks apart) and one column per checkpoint by increasing step, each cell ``estimate [CI] L``
(the claim's registered effect and CI, L the verdict letter of :data:`VERDICT_LETTERS`), and the figure
``training_dynamics.png`` (:mod:`harness.report.figures.training_dynamics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.models.errors import ModelReferenceError
from harness.models.revisions import RevisionSeries, SeriesMember, find_series
from harness.report.annotate import is_engine_check
from harness.report.numbers import estimate_with_ci
from harness.report.summary import claim_order, model_order
from harness.report.tables import md_table, tex_table

VERDICT_LETTERS: dict[str, str] = {
    "PASS": "P", "FAIL": "F", "INCONCLUSIVE": "I", "SKIPPED": "S", "ERROR": "E", "NOT RUN": "N",
}
"""The verdict letter a training-dynamics cell ends with."""
NO_ROW = "not run"
"""A cell whose checkpoint has no row for the claim (the test was not collected for that model)."""


def run_series(records: Sequence[dict[str, Any]]) -> tuple[list[RevisionSeries], list[str]]:
    """The revision series among the records' models (in record order) and a one-line problem per series that could
    not be placed (a run refuses those at start, so problems appear only for records from elsewhere)."""
    try:
        return find_series(model_order(records))
    except ModelReferenceError as exc:
        return [], [str(exc)]


def claim_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the view shows: claims, not engine checks."""
    return [r for r in records if not is_engine_check(r)]


def verdict_letter(verdict: str) -> str:
    """``P``/``F``/``I``/``S``/``E``/``N`` for a verdict; ``?`` for one the report does not know."""
    return VERDICT_LETTERS.get(verdict, "?")


def has_estimate(rec: dict[str, Any]) -> bool:
    """True when the record's estimate is a finite number (what a figure point needs)."""
    x = rec.get("estimate")
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def dynamics_cell(rec: dict[str, Any] | None) -> str:
    """``0.720 [0.610, 0.800] P``: estimate, CI and verdict letter; the letter alone without an estimate."""
    if rec is None:
        return NO_ROW
    letter = verdict_letter(str(rec.get("verdict")))
    return f"{estimate_with_ci(rec)} {letter}" if has_estimate(rec) else letter


def step_heading(series: RevisionSeries, member: SeriesMember) -> str:
    """A checkpoint's column heading: ``step 1000`` when the names give steps, ``#2 (main)`` when the series is
    numbered in the order given."""
    if series.step_source == "name":
        return f"step {member.step}"
    return f"#{member.step} ({member.label})"


def dynamics_rows(records: Sequence[dict[str, Any]], series: RevisionSeries) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of one series' claims × checkpoints view: ``claim`` then a column per checkpoint by increasing
    step; a row per claim that has a row on some member, its claim id first and then one :func:`dynamics_cell` per
    checkpoint."""
    members = set(series.models)
    recs = [r for r in claim_records(records) if r["model"] in members]
    by_key = {(r["claim"], r["model"]): r for r in recs}
    rows = [[claim, *(dynamics_cell(by_key.get((claim, m.model))) for m in series.members)]
            for claim in claim_order(recs)]
    return ["claim", *(step_heading(series, m) for m in series.members)], rows


def dynamics_table(records: Sequence[dict[str, Any]], series: RevisionSeries) -> str:
    """Claims × checkpoints of one series (Markdown; claim ids in code font)."""
    headers, rows = dynamics_rows(records, series)
    return md_table(headers, [[f"`{row[0]}`", *row[1:]] for row in rows])


def dynamics_latex_tables(records: Sequence[dict[str, Any]]) -> list[str]:
    """claims.tex's training-dynamics tables: one booktabs ``table`` float per revision series of the run (label
    ``tab:dynamics:<series>``), the same cells as claims.md's; empty when the run holds no series."""
    out = []
    for series in run_series(records)[0]:
        headers, rows = dynamics_rows(records, series)
        label = "tab:dynamics:" + "".join(ch if ch.isalnum() else "-" for ch in series.name)
        note = ("Each claim's estimate [CI at its registered level] and verdict letter (P PASS, F FAIL, "
                "I INCONCLUSIVE, S SKIPPED, E ERROR, N NOT RUN) per checkpoint, by training step.")
        out.append(tex_table(headers, rows, align="l" * len(headers), caption=f"Training dynamics of {series.name}",
                             label=label, note=note))
    return out


def training_dynamics_section(records: Sequence[dict[str, Any]], figure_files: Sequence[str] = ()) -> list[str]:
    """The "Training dynamics" section of claims.md (Markdown lines); empty when the run holds no series."""
    found, problems = run_series(records)
    if not found and not problems:
        return []
    out = ["## Training dynamics", "",
           ("Checkpoints of one training run, lined up by training step (optimizer steps read from each revision "
            "or directory name; a series whose names give none is numbered in the order given on --model). Each "
            "cell: the claim's estimate [CI at its registered level] and verdict letter (P = PASS, F = FAIL, "
            "I = INCONCLUSIVE, S = SKIPPED, E = ERROR, N = NOT RUN); each checkpoint is also a model of its own "
            "in the tables above. The figure draws the series whose names give steps (an order-numbered series only "
            "when no series names steps)."), ""]
    for series in found:
        models = ", ".join(f"`{m.model}`" for m in series.members)
        out += [f"### Series `{series.name}`", "", f"Checkpoints: {models}.", "", dynamics_table(records, series), ""]
    out += [f"> Not a series: {problem}." for problem in problems]
    if problems:
        out.append("")
    out += [f"![{name}]({name})" for name in figure_files]
    if figure_files:
        out.append("")
    return out
