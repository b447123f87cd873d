"""claims.tex: escaping, booktabs tables, and a pdflatex compile where pdflatex is installed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.report.latex import claims_latex
from harness.report.tables import tex_escape, tex_table

sys.path.insert(0, str(Path(__file__).parent))
from test_report_build import HEADER, records

SPECIALS = "_%&#${}~^\\"


@pytest.mark.parametrize(("text", "tex"), [
    ("a_b 50% & #1", r"a\_b 50\% \& \#1"),
    ("{x} ~y^2 \\z $", r"\{x\} \textasciitilde{}y\textasciicircum{}2 \textbackslash{}z \$"),
    ("T(α_k+1) − T(α_k) ≥ −0.10", r"T($\alpha$\_k+1) $-$ T($\alpha$\_k) $\geq$ $-$0.10"),
    ("ρ̄ < ρ → B⊕A", r"$\bar{\rho}$ \textless{} $\rho$ $\rightarrow$ B$\oplus$A"),
    ("max |Δ logit| — 3 × 2 …", r"max \textbar{}$\Delta$ logit\textbar{} --- 3 $\times$ 2 \ldots{}"),
    ("[-0.3, -1e-05] gemma3-270m 2026-12-05 -p", r"[$-$0.3, $-1\times 10^{-5}$] gemma3-270m 2026-12-05 -p"),
    ("9.79e-05 [8.21e-05, 1.20e+04] ff6ce983e1-2", r"$9.79\times 10^{-5}$ [$8.21\times 10^{-5}$, $1.20\times 10^{4}$] "
                                                   "ff6ce983e1-2"),
    ("--verdicts-exit report, --null-twin", r"-{}-verdicts-exit report, -{}-null-twin"),
    ("R_V of PR_V and R_Vx, ρ_partial", r"$R_V$ of PR\_V and R\_Vx, $\rho_{\mathrm{partial}}$"),
    ("KL̄ KL(a ‖ b) METHODS.md §4 ⌈f·L⌉ ñ", r"$\overline{\mathrm{KL}}$ KL(a $\|$ b) METHODS.md \S{}4 "
                                          r"$\lceil$f$\cdot$L$\rceil$ n"),
])
def test_tex_escape(text: str, tex: str) -> None:
    assert tex_escape(text) == tex


def _unescaped(tex: str) -> list[str]:
    """Special characters outside commands and math: what pdflatex would choke on or misprint."""
    body = re.sub(r"\$[^$]*\$", "", tex)  # math mode
    body = re.sub(r"\\[a-zA-Z]+\*?(\[[^\]]*\])?", "", body)  # commands and their options
    body = re.sub(r"\\[_%&#${}~^\\]", "", body)  # escaped specials and \\ line ends
    return [ch for ch in body if ch in "_%&#$~^\\"]


def test_the_document_is_ascii_booktabs_and_escaped() -> None:
    tex = claims_latex(records(), HEADER)
    assert tex.isascii()
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    # the matrix, three claims, the engine checks
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == tex.count("\\midrule") == 5
    assert "\\label{tab:matrix}" in tex and "\\label{tab:claim:kv-transfer}" in tex and "\\label{tab:engine}" in tex
    for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, flags=re.DOTALL):
        rows = [ln for ln in body.splitlines() if ln.endswith("\\\\")]
        assert rows and all(len(re.findall(r"(?<!\\)&", ln)) == len(spec) - 1 for ln in rows), spec
    assert _unescaped(re.sub(r"(?<!\\)&", "", tex)) == []  # & only as column separators
    assert "PASS 0.950 [0.840, 1.03]" in tex and "$\\Delta$T" in tex
    assert tex.count("{") - tex.count("\\{") == tex.count("}") - tex.count("\\}")


def test_registry_text_needs_no_question_mark() -> None:
    """Every text of the registry that claims.tex prints (title, statement, estimate, rule) typesets: no character
    falls back to ``?``."""
    from harness.registry import CLAIMS

    for spec in CLAIMS.values():
        for text in (spec.title, spec.statement, spec.effect.label, spec.effect.units, spec.effect.symbol,
                     spec.rule_summary(), spec.expected):
            assert tex_escape(text).count("?") == str(text).count("?"), (spec.id, text)


def test_tex_table_escapes_headers_and_cells() -> None:
    tex = tex_table(["p_adj", "ρ"], [["a&b", "50%"]], caption="Rule: 95% CI < -1")
    assert "p\\_adj & $\\rho$ \\\\" in tex and "a\\&b & 50\\% \\\\" in tex and "\\caption{Rule: 95\\% CI" in tex
