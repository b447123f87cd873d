"""The report directory: refused at start when unwritable, cleared of (only) the suite's own old files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.plugin.hooks import prepare_report_dir
from harness.report.files import (
    STAGING_PREFIX,
    ReportDirError,
    ReportWriteError,
    check_report_dir,
    clear_stale_report,
    stale_staging_dirs,
    suite_report_files,
    write_staged,
)
from harness.report.status import session_status
from harness.runtime.worker_policy import check_device_option


def test_report_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(ReportDirError, match="is a file, not a directory"):
        check_report_dir(tmp_path / "out")
    with pytest.raises(ReportDirError, match="cannot be created"):
        check_report_dir(tmp_path / "out" / "sub")


def test_unwritable_report_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportDirError, match="is not writable"):
        check_report_dir(tmp_path, writable=lambda p: False)
    with pytest.raises(ReportDirError, match=f"its parent {tmp_path} is not writable"):
        check_report_dir(tmp_path / "new" / "dir", writable=lambda p: p != tmp_path)
    check_report_dir(tmp_path / "new" / "dir")  # creatable: accepted, and nothing is created
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only directory")
def test_read_only_report_dir_is_a_usage_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(pytest.UsageError, match="--report-dir: .* is not writable"):
            prepare_report_dir(str(tmp_path))
    finally:
        tmp_path.chmod(0o700)


def test_only_the_suites_old_report_files_are_removed(tmp_path: Path) -> None:
    ours = ["claims.md", "claims.csv", "claims.json", "rv_by_group-rv_contraction.png", "layer_sweep-rv_contraction.png"]
    theirs = ["notes.md", "claims.txt", "my-plot.png", "rv_by_group-not_a_claim.png", "claims.md.bak"]
    for name in ours + theirs:
        (tmp_path / name).write_text("old")
    assert [p.name for p in suite_report_files(tmp_path)] == sorted(ours)
    assert sorted(p.name for p in clear_stale_report(tmp_path)) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)


def test_device_cuda_without_cuda_is_a_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match="--device cuda: no CUDA GPU is available"):
        check_device_option("cuda", cuda_available=lambda: False)
    check_device_option("cuda", cuda_available=lambda: True)
    check_device_option("auto", cuda_available=lambda: False)


def _old_report(directory: Path) -> dict[str, str]:
    old = {"claims.md": "# old complete report\n", "claims.csv": "claim,verdict\nrv_contraction,PASS\n",
           "claims.json": '{"run": {}, "records": []}\n'}
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in old.items():
        (directory / name).write_text(text)
    return old


def test_a_write_failing_midway_leaves_the_previous_report_untouched(tmp_path: Path) -> None:
    """claims.md and claims.csv written, claims.json half-written, then a failure: nothing new is visible."""
    out = tmp_path / "report"
    old = _old_report(out)

    def write(staging: Path) -> None:
        (staging / "claims.md").write_text("# new report\n")
        (staging / "claims.csv").write_text("claim,verdict\n")
        (staging / "claims.json").write_text('{"run": {"run_id": ')  # half of it
        raise OSError("disk full")

    with pytest.raises(ReportWriteError, match="disk full"):
        write_staged(out, write)
    assert {p.name: p.read_text() for p in out.iterdir()} == old  # no staging dir left, no half file
    assert json.loads((out / "claims.json").read_text()) == {"run": {}, "records": []}


def test_a_write_killed_before_the_moves_leaves_no_partial_file_and_is_cleaned_up(tmp_path: Path) -> None:
    out = tmp_path / "report"
    old = _old_report(out)
    killed = out / f"{STAGING_PREFIX}dead"  # what a SIGKILL during writing leaves: a staging dir, half a file
    killed.mkdir()
    (killed / "claims.json").write_text("")
    assert [p.name for p in suite_report_files(out)] == sorted(old)  # the visible report is the old, complete one
    assert stale_staging_dirs(out) == [killed]

    def write(staging: Path) -> None:
        (staging / "claims.json").write_text('{"run": {"new": true}, "records": []}\n')
        (staging / "claims.md").write_text("# new\n")

    placed = write_staged(out, write)
    assert [p.name for p in placed] == ["claims.md", "claims.json"]  # claims.json moved last
    assert not killed.exists() and stale_staging_dirs(out) == []
    assert json.loads((out / "claims.json").read_text())["run"] == {"new": True}
    assert (out / "claims.csv").read_text() == old["claims.csv"]  # files the write did not produce are untouched

    killed.mkdir()
    clear_stale_report(out)  # the start of the next run removes a leftover staging dir too
    assert not killed.exists()


def test_files_are_fsynced_then_moved_figures_first_and_claims_json_last(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"replace {Path(b).name}"), real_replace(a, b))[1])

    def write(staging: Path) -> None:
        for name in ("claims.json", "claims.md", "claims.csv", "layer_sweep-rv_contraction.png"):
            (staging / name).write_text(name)

    write_staged(tmp_path / "out", write)
    replaces = [e for e in events if e.startswith("replace")]
    assert replaces == ["replace layer_sweep-rv_contraction.png", "replace claims.csv", "replace claims.md",
                        "replace claims.json"]
    assert events[:4] == ["fsync"] * 4  # every file is on disk before the first one is moved into place


def test_session_status_words() -> None:
    done = session_status(pytest.ExitCode.TESTS_FAILED, keyboard_interrupt=False, shouldstop=False, shouldfail=False,
                          selected=3, not_run=0)
    assert done.complete and done.label == "complete"
    assert done.describe() == "complete: all 3 selected claim tests reported (exit status 1 TESTS_FAILED)"
    cut = session_status(2, keyboard_interrupt=True, shouldstop=False, shouldfail=False, selected=28, not_run=24)
    assert not cut.complete and cut.to_json()["interrupted"] is True and cut.exit_status_name == "INTERRUPTED"
    assert cut.describe() == ("INTERRUPTED (KeyboardInterrupt; exit status 2 INTERRUPTED): 4 of 28 selected claim "
                              "tests reported, 24 NOT RUN")
    stopped = session_status(1, keyboard_interrupt=False, shouldstop=False, shouldfail="stopping after 1 failures",
                             selected=4, not_run=2)
    assert stopped.label == "STOPPED" and stopped.to_json()["stopped"] == "stopping after 1 failures"


def test_a_pseudo_file_system_that_refuses_files_is_refused_at_start() -> None:
    """Issue 28: /proc passes the permission check as root, then refuses any file; the probe writes one."""
    with pytest.raises(ReportDirError) as err:
        check_report_dir(Path("/proc/kvclaims-report"))
    assert "\n" not in str(err.value) and "/proc/kvclaims-report" in str(err.value)
    assert not Path("/proc/kvclaims-report").exists()


def test_a_full_disk_while_writing_is_one_line_and_keeps_the_previous_report(tmp_path: Path) -> None:
    """Issue 28: ENOSPC inside a figure writer, followed by the writer's own AttributeError while cleaning up (what
    PIL does), is one line naming the directory, the file and the reason; the previous report stays whole."""
    import errno

    out = tmp_path / "report"
    old = _old_report(out)

    def write(staging: Path) -> None:
        (staging / "claims.md").write_text("# new report\n")
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(staging / "forest-kv_transfer.png"))
        except OSError:
            raise AttributeError("'NoneType' object has no attribute 'close'")  # noqa: B904 - as PIL chains it

    with pytest.raises(ReportWriteError) as err:
        write_staged(out, write)
    message = str(err.value)
    assert "\n" not in message
    assert message == (f"the report could not be written into {out} (forest-kv_transfer.png): No space left on device; "
                       "the directory holds what it held before")
    assert {p.name: p.read_text() for p in out.iterdir()} == old
