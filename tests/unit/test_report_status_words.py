"""The run status in words: a ``--verdicts-exit report`` run that exited 0 says so, not pytest's TESTS_FAILED."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness.report.status import run_status, session_status, status_line

COMPLETE = {"complete": True, "label": "complete", "exit_status": 1, "exit_status_name": "TESTS_FAILED",
            "interrupted": False, "stopped": None, "selected_claim_tests": 4, "not_run": 0}
FAIL = {"claim": "kv_transfer", "model": "m", "verdict": "FAIL"}
ERROR = {"claim": "kv_transfer", "model": "m", "verdict": "ERROR"}


def _run(args: list[str], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"invocation_args": args, "status": dict(status or COMPLETE)}


def test_a_report_mode_run_reads_as_exit_zero() -> None:
    status = session_status(1, keyboard_interrupt=False, shouldstop=False, shouldfail=False, selected=4, not_run=0)
    words = status_line(replace(status, verdicts_exit="report").to_json())
    assert "exit status 0 under --verdicts-exit report" in words and "TESTS_FAILED" not in words
    assert "exit status 1 TESTS_FAILED" in status_line(status.to_json())  # strict: pytest's status as it was


@pytest.mark.parametrize(("args", "records", "status", "report_mode"), [
    (["claims/", "--verdicts-exit", "report"], [FAIL], COMPLETE, True),
    (["claims/", "--verdicts-exit=report"], [FAIL], COMPLETE, True),
    (["claims/"], [FAIL], COMPLETE, False),  # strict
    (["claims/", "--verdicts-exit", "report"], [ERROR], COMPLETE, False),  # an ERROR fails every mode
    (["claims/", "--verdicts-exit", "report"], [FAIL], {**COMPLETE, "complete": False}, False),  # incomplete
])
def test_an_older_report_gets_the_mode_from_its_command_line(args: list[str], records: list[dict[str, Any]],
                                                             status: dict[str, Any], report_mode: bool) -> None:
    words = status_line(run_status(_run(args, status), records))
    assert ("exit status 0 under --verdicts-exit report" in words) is report_mode
    assert ("TESTS_FAILED" in words) is not report_mode


def test_a_recorded_mode_wins_over_the_command_line() -> None:
    run = _run(["claims/"], {**COMPLETE, "verdicts_exit": "report"})
    assert run_status(run, [FAIL])["verdicts_exit"] == "report"
    assert run_status({}, []) == {}
