"""The report directory: refused at start when unwritable, cleared of (only) the suite's own old files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.pytest_plugin import check_device_option, prepare_report_dir
from harness.report.files import ReportDirError, check_report_dir, clear_stale_report, suite_report_files


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
