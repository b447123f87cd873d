"""The report directory: checked at configure time, and cleared of the suite's own old report files.

A ``--report-dir`` that cannot be written fails at start (not after all the compute), and a reused one loses only
the files the report plugin writes (``claims.md``/``.csv``/``.json`` and ``<kind>-<claim>.png`` figures for
registered figure kinds and claims), so no stale figure sits beside a new report; other files are never touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

REPORT_FILES = ("claims.md", "claims.csv", "claims.json")
"""The report files written by :class:`harness.report.plugin.ClaimsReport`, besides figures."""


class ReportDirError(ValueError):
    """``--report-dir`` is a file, or a directory (or its nearest existing parent) that cannot be written."""


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def check_report_dir(path: Path, writable: Callable[[Path], bool] = _writable) -> None:
    """Refuse a report directory the run could not write into.

    Raises:
        ReportDirError: ``path`` is a file or not writable; for a directory still to be created, its nearest
            existing parent is not a directory or not writable.
    """
    if path.exists() and not path.is_dir():
        raise ReportDirError(f"{path} is a file, not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ReportDirError(f"{path} cannot be created: {existing} is a file")
    if not writable(existing):
        where = "" if existing == path else f" (its parent {existing} is not writable, so it cannot be created)"
        raise ReportDirError(f"{path} is not writable{where}")


def suite_report_files(directory: Path) -> list[Path]:
    """The files in ``directory`` that a report of this suite writes (and nothing else), sorted."""
    from harness.registry import CLAIMS
    from harness.report.figures import FIGURES

    if not directory.is_dir():
        return []
    names = set(REPORT_FILES) | {f"{kind}-{claim}.png" for kind in FIGURES for claim in CLAIMS}
    return sorted(p for p in directory.iterdir() if p.name in names and p.is_file())


def clear_stale_report(directory: Path) -> list[Path]:
    """Remove an earlier run's report files from ``directory``; return what was removed."""
    removed = suite_report_files(directory)
    for path in removed:
        path.unlink()
    return removed
