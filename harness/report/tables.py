"""Tables for the report files: Markdown with tabulate (GitHub pipe tables), LaTeX with pandas (booktabs).

Cells arrive as text already in the report's number format (:mod:`harness.report.numbers`): neither tabulate nor
pandas re-parses or re-rounds them. LaTeX cells are escaped here (:func:`tex_escape`), so any registry or record
text (``_ % & # $ { } ~ ^ \\``, Greek letters, minus signs, arrows, § and ‖) compiles and prints as typeset text:
symbols such as R_V, ρ_partial and KL̄ in math mode, ``9.79e-05`` as 9.79 × 10⁻⁵.
"""

from __future__ import annotations

import re
import unicodedata
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
    "ρ̄": r"\bar{\rho}", "ŝ": r"\hat{s}", "KL̄": r"\overline{\mathrm{KL}}", "‖": r"\|", "⌈": r"\lceil",
    "⌉": r"\rceil", "⌊": r"\lfloor", "⌋": r"\rfloor", "R_V": "R_V", "ρ_partial": r"\rho_{\mathrm{partial}}",
}
_TEX_TEXT = {
    "–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''", "é": r"\'e", "ö": r'\"o',
    "ü": r'\"u', "ä": r'\"a', "\u00a0": "~", "⟂": r"$\perp$", "†": r"\dag{}",
    "§": r"\S{}",
}
_MATH_TOKEN = "|".join(sorted(map(re.escape, _TEX_MATH), key=len, reverse=True))
_MATH_RUN = re.compile(f"(?:{_MATH_TOKEN})+")
_SCIENTIFIC = re.compile(r"(-?)(\d+(?:\.\d+)?)e([+-]\d+)(?![\w.])")
"""A number in e-notation (``9.79e-05``, the report format's small and large magnitudes)."""


def _word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _math_run(s: str, i: int) -> re.Match[str] | None:
    """The run of math symbols that starts at ``s[i]``, or None; a symbol spelt in ASCII letters (R_V) counts
    only as a whole word (not inside ``PR_V`` or ``R_Vx``)."""
    match = _MATH_RUN.match(s, i)
    if match is None:
        return None
    text = match.group(0)
    if _word_char(text[0]) and i > 0 and _word_char(s[i - 1]):
        return None
    if _word_char(text[-1]) and match.end() < len(s) and _word_char(s[match.end()]):
        return None
    return match


def _scientific(s: str, i: int) -> re.Match[str] | None:
    """The e-notation number that starts at ``s[i]`` (not inside a word or a longer number), or None."""
    if i > 0 and (s[i - 1].isalnum() or s[i - 1] in "-._"):
        return None
    return _SCIENTIFIC.match(s, i)


def _ascii_fallback(ch: str) -> str:
    """A character no table above knows, as its ASCII base letter (``ñ`` → ``n``) or, failing that, ``?``."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and base.isascii() else "?"


def md_cell(text: Any) -> str:
    """``text`` as one Markdown table cell: pipes escaped, newlines as spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (tabulate's ``github`` format), cells taken as text (no number parsing)."""
    body = [[md_cell(c) for c in row] for row in rows]
    return tabulate(body, headers=[md_cell(h) for h in headers], tablefmt="github", disable_numparse=True)


def tex_escape(text: Any) -> str:
    """``text`` as LaTeX that pdflatex compiles with the standard fonts: special characters escaped, Greek letters,
    symbols (R_V, ρ_partial, KL̄) and mathematical signs (− ≥ ≤ × ⊕ → ‖ …) in math mode, the sign of a negative
    number as a math minus, e-notation as ``$9.79\\times 10^{-5}$``, § as ``\\S``, any other non-ASCII character
    as its ASCII base letter (``?`` only where it has none).
    The result is pure ASCII."""
    out: list[str] = []
    s = str(text)
    i = 0
    while i < len(s):
        match = _math_run(s, i)
        if match:
            parts = re.findall(_MATH_TOKEN, match.group(0))
            out.append("$" + " ".join(_TEX_MATH[p] for p in parts) + "$")
            i = match.end()
            continue
        number = _scientific(s, i)
        if number:
            sign, mantissa, exponent = number.groups()
            out.append(f"${sign}{mantissa}\\times 10^{{{int(exponent)}}}$")
            i = number.end()
            continue
        ch = s[i]
        if ch == "-" and s[i + 1:i + 2] == "-":
            out.append("-{}")  # --verdicts-exit: two hyphens, not an en dash
        elif ch == "-" and s[i + 1:i + 2].isdigit() and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] in "-.")):
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
            out.append(_ascii_fallback(ch))
        i += 1
    return "".join(out)


def tex_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None,
              caption: str | None = None, label: str | None = None, note: str | None = None,
              size: str | None = None, placement: str = "htbp", width: str | None = None) -> str:
    """A booktabs ``tabular`` (pandas ``Styler.to_latex``; ``\\toprule``/``\\midrule``/``\\bottomrule``) with
    escaped headers and cells, inside a ``table`` float when ``caption`` is given.

    ``caption`` (a short title), ``note`` (the detail: statement, estimate, rule, printed in small type under the
    table) are escaped too; ``size`` is a font-size command for the float (``small``, ``footnotesize``);
    ``placement`` the float's placement specifier; ``width`` (e.g. ``\\linewidth``) makes it a ``tabularx`` of that
    width, whose ``X`` (or ``L``: ragged-right ``X``, defined in claims.tex's preamble) columns wrap."""
    frame = pd.DataFrame([[tex_escape(c) for c in row] for row in rows],
                         columns=[tex_escape(h) for h in headers])
    tabular = frame.style.hide(axis="index").to_latex(hrules=True, column_format=align or "l" * len(headers))
    if width is not None:
        tabular = tabular.replace("\\begin{tabular}", f"\\begin{{tabularx}}{{{width}}}", 1)
        tabular = tabular.replace("\\end{tabular}", "\\end{tabularx}", 1)
    if caption is None:
        return tabular
    lines = [f"\\begin{{table}}[{placement}]", "\\centering"]
    lines += [f"\\{size}"] if size else []
    lines += [f"\\caption{{{tex_escape(caption)}}}"]
    lines += [f"\\label{{{label}}}"] if label else []
    lines += [tabular.rstrip("\n")]
    if note:
        lines += ["\\par\\smallskip", f"{{\\footnotesize\\raggedright {tex_escape(note)}\\par}}"]
    return "\n".join([*lines, "\\end{table}", ""])
