"""The training-dynamics view (harness.report.training_dynamics and its figure) on synthetic records: which runs get
it, what each cell says, the x scale, and that the figure is written, embedded and cleared with the report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from harness.report.build import write_report
from harness.report.figures.training_dynamics import LOG_X_SPAN, panel_claims, plotted_series, x_scale
from harness.report.files import suite_report_files
from harness.report.numbers import estimate_with_ci
from harness.report.training_dynamics import (
    VERDICT_LETTERS,
    dynamics_cell,
    run_series,
    training_dynamics_section,
    verdict_letter,
)

RUN = "path:/ckpts"


def record(claim: str, model: str, estimate: float | None, verdict: str = "INCONCLUSIVE", **extra: Any) -> dict:
    low, high = (None, None) if estimate is None else (estimate - 0.5, estimate + 0.5)
    return dict(claim=claim, version=1, model=model, estimate=estimate, ci_low=low, ci_high=high,
                ci_level=0.95, n=6, planned_n=36, p_value=0.3, verdict=verdict, rule="r",
                explanation=f"{verdict}: synthetic", details={"synthetic": True}, **extra)


def series_records() -> list[dict]:
    return [record("rv_contraction", f"{RUN}/step8000", -1.4, "PASS"),
            record("rv_contraction", f"{RUN}/step1000", -0.2),
            record("kv_transfer", f"{RUN}/step1000", None, "ERROR"),
            record("cache_injection_equals_text", f"{RUN}/step1000", 1e-7, "PASS"),
            record("rv_contraction", "toy-llama", 0.1)]


def test_a_run_without_a_series_has_no_section_and_no_figure(tmp_path: Path) -> None:
    recs = [record("rv_contraction", "toy-llama", 0.1), record("rv_contraction", "path:/ckpts/step1000", 0.2)]
    assert training_dynamics_section(recs) == []
    write_report(recs, {"run_id": "r"}, tmp_path)
    assert not (tmp_path / "training_dynamics.png").exists()
    assert "Training dynamics" not in (tmp_path / "claims.md").read_text()


def test_table_has_a_row_per_claim_and_a_column_per_step() -> None:
    recs = series_records()
    lines = training_dynamics_section(recs, ["training_dynamics.png"])
    table = [row for line in lines for row in line.splitlines() if row.startswith("|")]
    assert [c.strip() for c in table[0].strip("|").split("|")] == ["claim", "step 1000", "step 8000"]
    rows = {c.split("|")[1].strip(): [x.strip() for x in c.strip("|").split("|")[1:]] for c in table[2:]}
    assert set(rows) == {"`rv_contraction`", "`kv_transfer`"}  # engine checks and other models stay out
    assert rows["`rv_contraction`"] == [f"{estimate_with_ci(recs[1])} I", f"{estimate_with_ci(recs[0])} P"]
    assert rows["`kv_transfer`"] == ["E", "not run"]
    assert "![training_dynamics.png](training_dynamics.png)" in lines


def test_unplaceable_series_from_a_foreign_report_is_noted_not_raised() -> None:
    recs = [record("rv_contraction", "hf:a/b@step1", 0.1), record("rv_contraction", "hf:a/b@main", 0.2)]
    assert run_series(recs)[0] == []
    assert any("names no training step" in line for line in training_dynamics_section(recs))


@given(st.sampled_from([*VERDICT_LETTERS, "SOMETHING"]),
       st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_every_cell_ends_with_its_verdict_letter(verdict: str, estimate: float | None) -> None:
    cell = dynamics_cell(record("rv_contraction", "m", None, verdict) | {"estimate": estimate})
    assert cell.split()[-1] == verdict_letter(verdict)
    assert len(cell.split()) == 1 or (estimate is not None and math.isfinite(estimate))
    assert len(set(VERDICT_LETTERS.values())) == len(VERDICT_LETTERS)


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=10))
def test_x_axis_is_logarithmic_exactly_when_the_steps_span_more_than_tenfold(steps: list[int]) -> None:
    scale, args = x_scale(steps)
    positive = [s for s in steps if s > 0]
    wide = bool(positive) and max(positive) / min(positive) > LOG_X_SPAN
    assert (scale != "linear") == wide
    assert (scale == "symlog") == (wide and 0 in steps)
    if scale == "symlog":
        assert args["linthresh"] == min(positive)


def test_order_numbered_series_are_left_out_of_the_figure_when_another_names_steps() -> None:
    recs = [record("rv_contraction", m, 0.1) for m in ("hf:a/b@main", "hf:a/b@v2", "hf:a/c@step1", "hf:a/c@step9")]
    (drawn,) = plotted_series(run_series(recs)[0])
    assert drawn.name == "hf:a/c"
    assert panel_claims(recs, [drawn]) == ["rv_contraction"]


def test_figure_is_written_embedded_and_cleared_with_the_report(tmp_path: Path) -> None:
    written = {p.name for p in write_report(series_records(), {"run_id": "r"}, tmp_path)}
    assert {"training_dynamics.png", "training_dynamics.pdf"} <= written
    markdown = (tmp_path / "claims.md").read_text()
    assert markdown.index("## Training dynamics") < markdown.index("## Claims")
    assert {"training_dynamics.png", "training_dynamics.pdf"} <= {p.name for p in suite_report_files(tmp_path)}


def test_claims_tex_has_the_same_dynamics_table_and_only_for_a_series() -> None:
    from harness.report.latex import claims_latex
    from harness.report.tables import tex_escape

    recs = series_records()
    tex = claims_latex(recs, {"run_id": "r"})
    assert tex.count("tab:dynamics:") == 1
    label = tex.index("tab:dynamics:")
    float_ = tex[tex.rindex("\\begin{table}", 0, label):tex.index("\\end{table}", label)]
    for text in ("step 1000", "step 8000", "rv_contraction", "kv_transfer", f"{estimate_with_ci(recs[0])} P",
                 f"{estimate_with_ci(recs[1])} I", "not run"):
        assert tex_escape(text) in float_, text
    assert tex_escape("cache_injection_equals_text") not in float_  # engine checks stay out, as in claims.md
    assert "tab:dynamics:" not in claims_latex([record("rv_contraction", "toy-llama", 0.1)], {"run_id": "r"})
