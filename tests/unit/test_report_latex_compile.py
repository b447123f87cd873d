"""claims.tex compiles with pdflatex into paper-ready pages: no missing character, no "?" standing in for one, no
overfull box, no undefined control sequence, the verdict matrix on page 1.

Runs where pdflatex is installed (CI installs TeX Live's latex-base, latex-recommended and fonts-recommended packages:
.ci/run); skipped with the reason elsewhere. Two documents: the unit-test records (tests/unit/test_report_build.py)
and the committed example run (reports/example-embedded-cpu/claims.json), rendered by the code under test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.report.annotate import annotate
from harness.report.latex import claims_latex
from harness.report.rebuild import load_run
from harness.report.samples import split_samples
from harness.report.twin import add_twin_fields

sys.path.insert(0, str(Path(__file__).parent))
from test_report_build import HEADER, records

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "example-embedded-cpu"
PDFLATEX = shutil.which("pdflatex")
pytestmark = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (CI installs it: .ci/run)")

LOG_PROBLEMS = ("Missing character", "Overfull \\hbox", "Overfull \\vbox", "Undefined control sequence",
                "LaTeX Error", "not set up for use with LaTeX", "Float too large")
"""pdflatex log lines that mean the document does not print as written."""


def _example_tex() -> str:
    recs, header = load_run(EXAMPLE)
    slim, _ = split_samples(add_twin_fields(annotate(recs)))
    return claims_latex(slim, header)


def _fixture_tex() -> str:
    return claims_latex(records(), HEADER)


def compile_tex(tex: str, where: Path) -> dict[str, Any]:
    """Run pdflatex twice on ``tex`` in ``where`` (the second run resolves page references); returns the log, the
    .aux, the return code and the stdout of the last run."""
    (where / "claims.tex").write_text(tex, encoding="utf-8")
    for _ in range(2):
        done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "claims.tex"], cwd=where,
                              capture_output=True, text=True, errors="replace", timeout=180, check=False)
    return {"rc": done.returncode, "stdout": done.stdout, "log": (where / "claims.log").read_text(errors="replace"),
            "aux": (where / "claims.aux").read_text(errors="replace")}


def log_problems(log: str) -> list[str]:
    """The lines of a pdflatex log that report one of :data:`LOG_PROBLEMS`."""
    return [line for line in log.splitlines() if any(p in line for p in LOG_PROBLEMS)]


@pytest.mark.parametrize("make", [_fixture_tex, _example_tex], ids=["unit-records", "example-run"])
def test_claims_tex_compiles_clean(make: Any, tmp_path: Path) -> None:
    tex = make()
    assert "?" not in tex, [m.group(0) for m in re.finditer(r".{30}\?.{10}", tex)]  # no stand-in character
    done = compile_tex(tex, tmp_path)
    assert done["rc"] == 0, done["stdout"][-3000:]
    assert log_problems(done["log"]) == []
    assert re.search(r"\\newlabel\{tab:matrix\}\{\{1\}\{1\}", done["aux"]), "the verdict matrix is not on page 1"
    assert (tmp_path / "claims.pdf").stat().st_size > 1000


def test_the_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    """The log check is not blind: a box too wide and a character the font lacks are reported."""
    tex = ("\\documentclass{article}\n\\begin{document}\n\\noindent\\vrule width 2\\textwidth\n\n"
           "{\\fontencoding{OT1}\\selectfont\\symbol{200}}\n\\end{document}\n")
    done = compile_tex(tex, tmp_path)
    problems = "\n".join(log_problems(done["log"]))
    assert "Overfull \\hbox" in problems and "Missing character" in problems, done["log"][-2000:]
