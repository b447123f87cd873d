"""The report directory: checked at configure time, cleared of the suite's own old report files, written atomically.

A ``--report-dir`` that cannot be written fails at start (not after all the compute), and a reused one loses only
the files a report writes (:data:`REPORT_FILES` and ``<kind>-<claim>.png``/``.pdf`` figures for registered figure
kinds and claims), so no stale figure sits beside a new report; other files are never touched.

:func:`write_staged` writes a report into a staging directory inside the target (``.claims-staging-*``), fsyncs
every file, and only then moves each into place with ``os.replace`` (``claims.json`` last). A failure or kill while
writing leaves the previous files untouched (or no file at all), never a half-written one; a staging directory left
by a killed run is removed at the next start and the next write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

REPORT_FILES = ("claims.md", "claims.csv", "claims.json", "claims.tex", "methods.md", "examples.md", "samples.jsonl")
"""The report files written by :func:`harness.report.build.write_report`, besides figures."""

"""File types of a figure (a raster and a vector copy)."""

STAGING_PREFIX = ".claims-staging-"
"""Name prefix of the staging directory a report is written into before its files are moved into place."""

LAST_FILES = ("samples.jsonl", "examples.md", "methods.md", "claims.tex", "claims.csv", "claims.md", "claims.json")
"""Moved into place last, in this order: a reader who finds ``claims.json`` finds the rest of the report too."""


class ReportDirError(ValueError):
    """``--report-dir`` is a file, or a directory (or its nearest existing parent) that cannot be written."""


class ReportWriteError(RuntimeError):
    """The report could not be written (a full disk, a file system that refuses writes); one line naming the
    directory, the file and the system's reason. The directory still holds what it held before."""


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or one in its chain (PIL raises an AttributeError while cleaning up after
    the ``OSError: [Errno 28]`` of a full disk)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def check_report_dir(path: Path, writable: Callable[[Path], bool] = _writable) -> None:
    """Refuse a report directory the run could not write into, by asking and then by doing: a file is written into
    it (or, for a directory still to be created, into its nearest existing parent) and removed; nothing is created
    (``/proc`` passes a permission check as root, then refuses the file).

    Raises:
        ReportDirError: ``path`` is a file or not writable; for a directory still to be created, its nearest
            existing parent is not a directory or not writable; or a file cannot be written there (one line with
            the system's reason).
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
    try:
        fd, probe = tempfile.mkstemp(prefix=".claims-write-probe-", dir=existing)
        os.write(fd, b"probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "" if existing == path else f" (a file cannot be written into its parent {existing})"
        raise ReportDirError(f"{path} cannot be written{where}: {exc.strerror or exc}") from None


def suite_report_files(directory: Path) -> list[Path]:
    """The files in ``directory`` that a report of this suite writes (and nothing else), sorted."""
    from harness.registry import CLAIMS
    from harness.report.figures import figure_file_names

    if not directory.is_dir():
        return []
    names = set(REPORT_FILES) | figure_file_names(list(CLAIMS))
    return sorted(p for p in directory.iterdir() if p.name in names and p.is_file())


def stale_staging_dirs(directory: Path) -> list[Path]:
    """Staging directories (``.claims-staging-*``) left in ``directory`` by a report write that was killed."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir())


def clear_stale_report(directory: Path) -> list[Path]:
    """Remove an earlier run's report files and any staging directory a killed write left; return what was removed."""
    removed = suite_report_files(directory)
    for path in removed:
        path.unlink()
    staging = stale_staging_dirs(directory)
    for path in staging:
        shutil.rmtree(path, ignore_errors=True)
    return removed + staging


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a platform without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_staged(directory: Path, write: Callable[[Path], None]) -> list[Path]:
    """Write a report with ``write(staging_dir)``, then move every file it wrote into ``directory``.

    ``write`` puts plain files into the staging directory (a fresh ``.claims-staging-*`` directory inside
    ``directory``, so the moves stay on one file system). Only after it returns are the files fsynced and moved
    into place with ``os.replace`` (figures first, then :data:`LAST_FILES` in order); so if ``write`` raises, or
    the process dies before the moves, ``directory`` still holds exactly what it held before. Staging
    directories left by an earlier killed write are removed first. Returns the paths now in ``directory``.

    Raises:
        ReportWriteError: an OSError (a full disk, say) anywhere in the write, as one line; the staging directory
            is removed and ``directory`` keeps its previous report.
    """
    try:
        return _write_staged(directory, write)
    except Exception as exc:  # noqa: BLE001 - only an OSError in the chain is translated; anything else re-raises
        error = _os_error_in(exc)
        if error is None:
            raise
        where = f" ({Path(error.filename).name})" if getattr(error, "filename", None) else ""
        raise ReportWriteError(f"the report could not be written into {directory}{where}: "
                               f"{error.strerror or error}; the directory holds what it held before") from exc


def _write_staged(directory: Path, write: Callable[[Path], None]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in stale_staging_dirs(directory):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    try:
        write(staging)
        written = sorted((p for p in staging.iterdir() if p.is_file()),
                         key=lambda p: (p.name in LAST_FILES, LAST_FILES.index(p.name) if p.name in LAST_FILES else 0,
                                        p.name))
        for path in written:
            _fsync_file(path)
        placed = []
        for path in written:
            os.replace(path, directory / path.name)
            placed.append(directory / path.name)
        _fsync_dir(directory)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)
