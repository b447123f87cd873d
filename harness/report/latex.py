"""claims.tex: the report's tables as a LaTeX document that compiles with pdflatex (booktabs): the run summary, the
claims × models verdict matrix, one table per claim (a row per model), one training-dynamics table per revision
series the run holds, and the engine checks.

Every table is a ``table`` float with a short caption in words (a claim's title, never its id), a label
(``tab:matrix``, ``tab:claim:<id>``, ``tab:engine``) and its detail (claim id and version, statement, estimate, rule)
in a note under the table, so a paper can paste the tables it needs. The verdict matrix is on page 1 with the run
summary. All text is escaped by :func:`harness.report.tables.tex_escape` (math for R_V, ρ_partial, KL̄; § and ‖
typeset; e-notation as powers of ten; Times via mathptmx, so the PDF holds outline fonts, not bitmaps), and the
document compiles with pdflatex from TeX Live's base, recommended
and fonts-recommended packages without a missing character or an overfull box
(tests/unit/test_report_latex_compile.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.registry import CLAIMS
from harness.report.annotate import engine_check_value, is_engine_check
from harness.report.markdown import effect_heading, matrix_cell
from harness.report.numbers import estimate_text, fmt, fmt_ci
from harness.report.summary import claim_order, model_order, run_summary
from harness.report.tables import tex_escape, tex_table
from harness.report.training_dynamics import dynamics_latex_tables
from harness.report.twin import matrix_note, twin_table_tex

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage{mathptmx}
\usepackage[margin=1.8cm,landscape]{geometry}
\usepackage{booktabs}
\usepackage{amssymb}
\usepackage{array}
\usepackage{tabularx}
\newcolumntype{L}{>{\raggedright\arraybackslash}X}
\begin{document}
"""
FLOATS_PER_PAGE = 4
"""Claim tables between two ``\\clearpage`` (LaTeX refuses more than 18 unplaced floats)."""


def _label(claim: str) -> str:
    return "tab:claim:" + "".join(ch if ch.isalnum() else "-" for ch in claim)


def matrix_table(records: Sequence[dict[str, Any]]) -> str:
    """The verdict matrix (claims that are not engine checks) as a booktabs table."""
    models = model_order(records)
    by_key = {(r["claim"], r["model"]): r for r in records}
    rows = [[claim, effect_heading(claim, [r for r in records if r["claim"] == claim]),
             *(matrix_cell(by_key.get((claim, m))) for m in models)] for claim in claim_order(records)]
    note = ("Each cell: the verdict, the estimate and its CI at the claim's registered level (the effect column "
            "names the estimate and the level). " + matrix_note(records)).strip()
    return tex_table(["claim", "effect", *models], rows, align="ll" + "L" * len(models),
                     caption="Verdicts per claim and model", label="tab:matrix", note=note, size="footnotesize",
                     placement="!htb", width=r"\linewidth")


def claim_table(claim: str, recs: Sequence[dict[str, Any]]) -> str:
    """One claim's table: a row per model (estimate, CI, n, p, adjusted p, verdict); the caption states the claim,
    the statistic and the rule."""
    spec = CLAIMS.get(claim)
    level = next((r.get("ci_level") for r in recs if r.get("ci_level")), None)
    rows = [[r["model"], estimate_text(r), fmt_ci(r.get("ci_low"), r.get("ci_high")),
             f"{fmt(r.get('n'))} ({fmt(r.get('planned_n'))})", fmt(r.get("p_value")), fmt(r.get("p_adjusted")),
             r["verdict"]] for r in recs]
    symbol = spec.effect.symbol if spec else "estimate"
    if spec is not None:
        caption = spec.title
        note = (f"Claim {claim}, version {recs[0].get('version')}. {spec.statement} Estimate: {spec.effect.label} "
                f"({spec.effect.units}). Rule: {spec.rule_summary()}.")
    else:
        caption, note = f"Claim {claim}", f"Rule: {recs[0].get('rule')}."
    return tex_table(["model", f"estimate ({symbol})", f"{level:.0%} CI" if level else "CI", "n (planned)", "p",
                      "p adj.", "verdict"], rows, align="lrlrrrl", caption=caption, label=_label(claim), note=note)


def engine_table(records: Sequence[dict[str, Any]]) -> str:
    """The engine checks (deterministic invariants) as one booktabs table."""
    rows = []
    for r in records:
        spec = CLAIMS[r["claim"]]
        rows.append([r["claim"], r["model"], fmt(engine_check_value(r)), spec.expected, fmt(r.get("n")),
                     r["verdict"]])
    return tex_table(["check", "model", "value", "tolerance", "n (prompts)", "verdict"], rows, align="llrlrl",
                     caption="Engine checks", label="tab:engine",
                     note="Deterministic invariants of the KV-cache engine, not claim verdicts.")


def claims_latex(records: Sequence[dict[str, Any]], run: dict[str, Any]) -> str:
    """The whole claims.tex document."""
    claims = [r for r in records if not is_engine_check(r)]
    checks = [r for r in records if is_engine_check(r)]
    out = [PREAMBLE, f"\\section*{{{tex_escape('Claims report — ' + str(run.get('run_id')))}}}", ""]
    if run.get("synthetic"):
        out += [r"\textbf{Synthetic data: not a measurement of any model.}", ""]
    out += [tex_escape(run_summary(records, run, bold=False).replace("`", "")), ""]
    if claims:
        out += [matrix_table(claims), r"\clearpage", ""]
        for i, claim in enumerate(claim_order(claims)):  # a page break now and then: LaTeX holds at most 18 floats
            out += [claim_table(claim, [r for r in claims if r["claim"] == claim])]
            if i % FLOATS_PER_PAGE == FLOATS_PER_PAGE - 1:
                out += [r"\clearpage", ""]
        out += twin_table_tex(claims)
    dynamics = dynamics_latex_tables(records)
    if dynamics:
        out += [r"\clearpage", "", *dynamics, r"\clearpage", ""]
    if checks:
        out += [engine_table(checks)]
    out += [r"\end{document}", ""]
    return "\n".join(out)
