"""Whether a run's report is complete: the session's exit status, an interruption or early stop, NOT RUN rows.

A report written after Ctrl-C, ``-x``/``--maxfail`` or a ``session.shouldstop`` holds only the claims that ran;
:class:`SessionStatus` says so in the ``run.status`` object of claims.json, the header of claims.md and the
terminal summary, so a partial report is never read as a complete one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class SessionStatus:
    """How the session ended and how many selected claim tests (claim × model) never reported."""

    exit_status: int
    exit_status_name: str
    interrupted: bool
    stopped: str | None
    selected: int
    not_run: int
    signal: str | None = None
    verdicts_exit: str | None = None
    """``"report"`` when ``--verdicts-exit report`` turned pytest's status into exit 0 (a complete report, no ERROR
    row): FAIL and INCONCLUSIVE verdicts are then results, not test failures."""

    @property
    def complete(self) -> bool:
        """True when the session ran to its end and every selected claim test reported."""
        return not self.interrupted and self.stopped is None and self.not_run == 0

    @property
    def label(self) -> str:
        """``complete``, ``INTERRUPTED``, ``STOPPED`` (``-x``, ``--maxfail``, ``shouldstop``) or ``INCOMPLETE``."""
        if self.interrupted:
            return "INTERRUPTED"
        if self.stopped is not None:
            return "STOPPED"
        return "INCOMPLETE" if self.not_run else "complete"

    def describe(self) -> str:
        """One line for the terminal (the same words as claims.md's ``Run status``)."""
        return status_line(self.to_json(), bold=False)

    def to_json(self) -> dict[str, Any]:
        """The ``run.status`` object of claims.json."""
        out = {"complete": self.complete, "label": self.label, "exit_status": self.exit_status,
               "exit_status_name": self.exit_status_name, "interrupted": self.interrupted, "stopped": self.stopped,
               "selected_claim_tests": self.selected, "not_run": self.not_run}
        if self.signal:
            out["signal"] = self.signal
        if self.verdicts_exit:
            out["verdicts_exit"] = self.verdicts_exit
        return out


def status_line(status: dict[str, Any], bold: bool = True) -> str:
    """The ``run.status`` object of claims.json in words (the label in Markdown bold unless complete); a run that
    exited 0 under ``--verdicts-exit report`` says so instead of pytest's own TESTS_FAILED."""
    code = f"exit status {status.get('exit_status')} {status.get('exit_status_name')}"
    if status.get("verdicts_exit") == "report":
        code = "exit status 0 under --verdicts-exit report: FAIL and INCONCLUSIVE verdicts are results, not failures"
    selected, not_run = status.get("selected_claim_tests") or 0, status.get("not_run") or 0
    if status.get("complete"):
        return f"complete: all {selected} selected claim tests reported ({code})"
    label = f"**{status.get('label')}**" if bold else str(status.get("label"))
    interrupted_by = status.get("signal") or "KeyboardInterrupt"
    why = interrupted_by if status.get("interrupted") else (status.get("stopped") or "claim tests never reported")
    return f"{label} ({why}; {code}): {selected - not_run} of {selected} selected claim tests reported, {not_run} NOT RUN"


def _verdicts_exit_option(args: Sequence[Any]) -> str | None:
    """The value of ``--verdicts-exit`` in a recorded command line (``--verdicts-exit report`` or ``=report``)."""
    args = [str(a) for a in args]
    for i, arg in enumerate(args):
        if arg.startswith("--verdicts-exit="):
            return arg.partition("=")[2]
        if arg == "--verdicts-exit" and i + 1 < len(args):
            return args[i + 1]
    return None


def run_status(run: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's ``status`` object as the report prints it. A report written before the status recorded
    ``verdicts_exit`` gets it from the recorded command line: ``--verdicts-exit report``, a complete run and no
    ERROR row is a run that exited 0 (what the plugin did)."""
    status = dict(run.get("status") or {})
    if (status and "verdicts_exit" not in status and status.get("complete")
            and _verdicts_exit_option(run.get("invocation_args") or []) == "report"
            and not any(r.get("verdict") == "ERROR" for r in records)):
        status["verdicts_exit"] = "report"
    return status


def _reason(flag: Any) -> str | None:
    if not flag:
        return None
    return flag if isinstance(flag, str) else "stopped early"


def session_status(
    exitstatus: int, *, keyboard_interrupt: bool, shouldstop: Any, shouldfail: Any, selected: int, not_run: int,
    stop_reason: str | None = None, signal: str | None = None,
) -> SessionStatus:
    """The status of a finished session.

    ``shouldstop``/``shouldfail`` are as pytest's ``Session`` holds them (False or a reason string);
    ``keyboard_interrupt``: ``pytest_keyboard_interrupt`` was called; ``stop_reason``: the message of an
    interrupt that is a deliberate stop, not Ctrl-C (pytest-xdist ends ``-x`` by raising its ``Interrupted``,
    a KeyboardInterrupt, "stopping after 1 failures"). A stop is STOPPED; Ctrl-C is INTERRUPTED, and so is a SIGTERM
    (``signal``: its name, recorded in the status).
    """
    try:
        name = pytest.ExitCode(int(exitstatus)).name
    except ValueError:
        name = "UNKNOWN"
    stopped = _reason(shouldstop) or _reason(shouldfail) or stop_reason
    interrupted = stopped is None and (keyboard_interrupt or int(exitstatus) == pytest.ExitCode.INTERRUPTED)
    return SessionStatus(exit_status=int(exitstatus), exit_status_name=name, interrupted=interrupted,
                         stopped=stopped, selected=selected, not_run=not_run, signal=signal if interrupted else None)
