"""Tables for the report files: Markdown with tabulate (GitHub pipe tables), LaTeX with pandas (booktabs).

Cells arrive as text already in the report's number format (:mod:`harness.report.numbers`): neither tabulate nor
pandas re-parses or re-rounds them. LaTeX cells are escaped here (:func:`tex_escape`), so any registry or record
text (``_ % & # $ { } ~ ^ \\``, Greek letters, minus signs, arrows) compiles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
from tabulate import tabulate

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_TEX_MATH = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "Δ": r"\Delta", "ε": r"\varepsilon",
    "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma", "χ": r"\chi", "μ": r"\mu", "θ": r"\theta", "λ": r"\lambda",
    "−": "-", "≥": r"\geq", "≤": r"\leq", "≈": r"\approx", "≠": r"\neq", "±": r"\pm", "×": r"\times",
    "→": r"\rightarrow", "←": r"\leftarrow", "⊕": r"\oplus", "·": r"\cdot", "∈": r"\in", "∞": r"\infty",
    "√": r"\surd", "²": "^{2}", "⁴": "^{4}", "₀": "_{0}", "₁": "_{1}", "₂": "_{2}", "ᵢ": "_{i}",
    "ρ̄": r"\bar{\rho}", "ŝ": r"\hat{s}",
}
_TEX_TEXT = {
    "–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''", "é": r"\'e", "ö": r'\"o',
    "ü": r'\"u', "ä": r'\"a', "\u00a0": "~", "⟂": r"$\perp$", "†": r"\dag{}",
}
_MATH_RUN = re.compile("(" + "|".join(sorted(map(re.escape, _TEX_MATH), key=len, reverse=True)) + ")+")


def md_cell(text: Any) -> str:
    """``text`` as one Markdown table cell: pipes escaped, newlines as spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (tabulate's ``github`` format), cells taken as text (no number parsing)."""
    body = [[md_cell(c) for c in row] for row in rows]
    return tabulate(body, headers=[md_cell(h) for h in headers], tablefmt="github", disable_numparse=True)


def tex_escape(text: Any) -> str:
    """``text`` as LaTeX that pdflatex compiles with the standard fonts: special characters escaped, Greek letters
    and mathematical symbols (− ≥ ≤ × ⊕ → …) in math mode, the sign of a negative number as a math minus, any other
    non-ASCII character replaced by ``?``.
    The result is pure ASCII."""
    out: list[str] = []
    s = str(text)
    i = 0
    while i < len(s):
        match = _MATH_RUN.match(s, i)
        if match:
            parts = re.findall("|".join(sorted(map(re.escape, _TEX_MATH), key=len, reverse=True)), match.group(0))
            out.append("$" + " ".join(_TEX_MATH[p] for p in parts) + "$")
            i = match.end()
            continue
        ch = s[i]
        if ch == "-" and s[i + 1:i + 2].isdigit() and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] in "-.")):
            out.append("$-$")  # a negative number: a minus sign, not a hyphen
        elif ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch in _TEX_TEXT:
            out.append(_TEX_TEXT[ch])
        elif ch == "\n":
            out.append(" ")
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
        i += 1
    return "".join(out)


def tex_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None,
              caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``tabular`` (pandas ``Styler.to_latex``; ``\\toprule``/``\\midrule``/``\\bottomrule``) with
    escaped headers and cells, inside a ``table`` float when ``caption`` is given (``caption`` is escaped too)."""
    frame = pd.DataFrame([[tex_escape(c) for c in row] for row in rows],
                         columns=[tex_escape(h) for h in headers])
    styler = frame.style.hide(axis="index")
    kwargs: dict[str, Any] = {"hrules": True, "column_format": align or "l" * len(headers)}
    if caption is not None:
        kwargs.update(caption=tex_escape(caption), position="htbp", position_float="centering")
        if label is not None:
            kwargs["label"] = label
    return styler.to_latex(**kwargs)
