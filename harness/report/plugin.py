"""The claims report plugin: controller-only collection of claim rows and the report files.

Registered by the root conftest (``pytest_plugins``) or an installed kvclaims' ``pytest11`` entry point. Works with and without pytest-xdist and without the
harness's own options (it reads the dests ``report_dir``, ``seed``, ``model``, ``device``, ``dtype``,
``prompt_bank`` and ``n_cap`` with ``config.getoption(name, default=None)``). See :mod:`harness.report`
for the contract claim tests follow and the ``details`` keys the report reads.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.claim.verdicts import PROPERTY_NAME, ClaimNotPassed, Verdict
from harness.foundation.nonfinite import NonFiniteError
from harness.registry import CLAIMS
from harness.report.build import write_report
from harness.report.files import ReportWriteError
from harness.report.identity import (
    CLAIM_ID_PROPERTY,
    CLAIM_MODEL_PROPERTY,
    NO_MODEL,
    from_nodeid,
    from_properties,
    model_from_callspec,
)
from harness.report.provenance import git_info, run_header, run_id, utc_now
from harness.report.rows import NON_FINITE_PROPERTY, RowCollector, apply_multiplicity
from harness.report.status import SessionStatus, session_status
from harness.report.writers import terminal_table
from harness.runtime.termination import TerminatedBySignal, handle_sigterm_as_interrupt, restore_sigterm

PLUGIN_NAME = "claims-report"
WORKER_INFO_KEY = "claims_report_worker"
MARKER_LINE = "claim(id): a pre-registered claim test; id is a key of harness.registry.CLAIMS"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; on the controller, start the collector. (A worker's GPU set is pinned by the harness's
    plugin, :func:`harness.plugin.hooks.pin_gpus`.)"""
    config.addinivalue_line("markers", MARKER_LINE)
    handle_sigterm_as_interrupt()  # a scheduler's SIGTERM ends the run like Ctrl-C: with a report, marked
    workerinput = getattr(config, "workerinput", None)
    sharded = config.getoption("shard", default=None) is not None  # a shard decides nothing: the reduce reports
    if workerinput is None and not sharded and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(ClaimsReport(config), PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    restore_sigterm()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A FAIL or INCONCLUSIVE verdict (``ClaimNotPassed``) is a result: report its one-line explanation, without
    a traceback or the test's captured output (progress bars); errors keep both."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(ClaimNotPassed):
        report.longrepr = str(call.excinfo.value)
        report.sections = [(name, text) for name, text in report.sections if not name.startswith("Captured ")]
    elif call.excinfo is not None and call.excinfo.errisinstance(NonFiniteError):
        # numbers that stopped being finite are a fact about the data: an INCONCLUSIVE row, one line, no traceback
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
        report.user_properties.append((NON_FINITE_PROPERTY, str(call.excinfo.value)))
    return report


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Copy each claim test's claim id and model into its user_properties (so every report names them)."""
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker is None:
            continue
        claim = marker.args[0] if marker.args else marker.kwargs.get("id")
        if claim not in CLAIMS:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.claim({claim!r}) names no registered claim; known: {', '.join(CLAIMS)}"
            )
        callspec = getattr(item, "callspec", None)
        model = model_from_callspec(dict(callspec.params), callspec.id) if callspec is not None else NO_MODEL
        item.user_properties.append((CLAIM_ID_PROPERTY, claim))
        item.user_properties.append((CLAIM_MODEL_PROPERTY, model))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a worker, send its device facts to the controller (read with .get, so a crash costs only these)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_INFO_KEY] = _worker_facts()


def _worker_facts() -> dict[str, Any]:
    """This process's device facts: its ``CUDA_VISIBLE_DEVICES`` and pid, torch's thread count and, once CUDA ran,
    for every visible GPU (index ``i`` of this process) its name (``gpus``) and the peak memory torch allocated on it
    (``peak_memory_bytes``, bytes, ``torch.cuda.max_memory_allocated(i)``)."""
    facts: dict[str, Any] = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}
    torch = sys.modules.get("torch")
    if torch is not None:
        facts["torch_threads"] = int(torch.get_num_threads())
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        indices = range(torch.cuda.device_count())
        facts["gpus"] = {str(i): torch.cuda.get_device_name(i) for i in indices}
        facts["cuda"] = torch.version.cuda
        facts["peak_memory_bytes"] = {str(i): int(torch.cuda.max_memory_allocated(i)) for i in indices}
    return facts


def error_rows(records: list[dict[str, Any]]) -> list[str]:
    """``<claim> [<model>]: <first line of the explanation>`` for every ERROR row of a run."""
    out = []
    for record in records:
        if record.get("verdict") == "ERROR":
            lines = str(record.get("explanation") or "no explanation").splitlines() or ["no explanation"]
            out.append(f"{record.get('claim')} [{record.get('model')}]: {lines[0][:160]}")
    return out


class ClaimsReport:
    """Controller-side collector and writer (registered only where there is no ``workerinput``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collector = RowCollector()
        self.started = utc_now()
        # the code that ran is the code at the start: a commit made while a long run is going must not be
        # attributed to it
        self.git = git_info(Path(config.rootpath))
        self.workers: dict[str, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.report_dir: Path | None = None
        self.keyboard_interrupt = False
        self.stop_reason: str | None = None
        self.status: SessionStatus | None = None
        self.verdicts_exit_note: str | None = None
        self.interrupt_signal: str | None = None
        self.write_error: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Note every selected claim test (serial run), so one that never reports becomes a NOT RUN row."""
        for item in session.items:
            identity = from_properties(item.user_properties)
            if identity is not None:
                self.collector.expect(identity, item.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist the controller collects nothing: note the claim tests a worker collected, by nodeid
        (``test_<claim id>[<model>]``, the naming contract of :mod:`harness.report`)."""
        for nodeid in ids:
            identity = from_nodeid(nodeid, CLAIMS)
            if identity is not None:
                self.collector.expect(identity, nodeid)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C, SIGTERM (:class:`~harness.runtime.termination.TerminatedBySignal`), or a deliberate stop raised
        as a KeyboardInterrupt subclass (pytest-xdist's ``-x``)."""
        self.keyboard_interrupt = True
        if isinstance(excinfo.value, TerminatedBySignal):
            self.interrupt_signal = str(excinfo.value)
        elif type(excinfo.value) is not KeyboardInterrupt and str(excinfo.value):
            self.stop_reason = f"{type(excinfo.value).__name__}: {excinfo.value}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.workers[str(node.gateway.id)] = dict(output.get(WORKER_INFO_KEY) or {"lost": True})

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, Any] | None:
        """Show INCONCLUSIVE claims as ``I`` / ``INCONCLUSIVE`` while still counting them as failed."""
        if report.when != "call" or report.outcome != "failed":
            return None
        record = next((v for k, v in report.user_properties if k == PROPERTY_NAME), None)
        if isinstance(record, dict) and record.get("verdict") == Verdict.INCONCLUSIVE.value:
            return "failed", "I", ("INCONCLUSIVE", {"yellow": True})
        return None

    def _model_order(self) -> list[str]:
        value = self.config.getoption("model", default=None)
        if value is None:
            return []
        parts = value if isinstance(value, list | tuple) else [value]
        return [m.strip() for p in parts for m in str(p).split(",") if m.strip()]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
        """Write the report (also after an interruption: then it says so and lists the claims that did not run)."""
        status = session_status(exitstatus, keyboard_interrupt=self.keyboard_interrupt,
                                shouldstop=session.shouldstop, shouldfail=session.shouldfail,
                                selected=len(self.collector.rows()), not_run=len(self.collector.not_run()),
                                stop_reason=self.stop_reason, signal=self.interrupt_signal)
        why = ("the session was interrupted before this test ran" if status.interrupted else
               f"the session stopped before this test ran ({status.stopped})" if status.stopped else
               "the session ended before this test reported")
        rows = self.collector.rows(self._model_order(), not_run_reason=why)
        if not rows:
            return
        self.status = status
        apply_multiplicity(rows)
        self.records = [row.record() for row in rows]
        root = Path(self.config.rootpath)
        git = self.git
        header = run_header(config=self.config, records=self.records, started=self.started, finished=utc_now(),
                            git=git, workers=dict(sorted(self.workers.items())))
        errors = error_rows(self.records)
        if not errors and status.complete and self.config.getoption("verdicts_exit", default=None) == "report":
            status = replace(status, verdicts_exit="report")  # the run exits 0: its status says so
            self.status = status
        header["status"] = status.to_json()
        option = self.config.getoption("report_dir", default=None)
        out = Path(option) if option else root / "reports" / run_id(self.started, git.get("short"))
        try:
            write_report(self.records, header, out)
        except ReportWriteError as exc:
            self.write_error = str(exc)
            if int(session.exitstatus) == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write((out / "claims.md").read_text(encoding="utf-8") + "\n")
        self.report_dir = out
        if errors:
            # an ERROR is not a verdict: the run fails under every --verdicts-exit mode
            self.verdicts_exit_note = (f"{len(errors)} claim test(s) ended in ERROR, which is not a verdict, so the run "
                                       f"fails under every --verdicts-exit mode: {'; '.join(errors[:3])}"
                                       + (f"; … and {len(errors) - 3} more" if len(errors) > 3 else ""))
            if int(session.exitstatus) == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif status.verdicts_exit == "report":
            # the run's product is the report: FAIL / INCONCLUSIVE verdicts are results, not a broken install
            self.verdicts_exit_note = f"--verdicts-exit report: exit 0 (pytest's own status: {status.exit_status_name})"
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.write_error:
            terminalreporter.write_line(f"kvclaims: {self.write_error}", red=True, bold=True)
            return
        if not self.records:
            return
        complete = self.status is None or self.status.complete
        title = "claim verdicts" if complete else f"claim verdicts: {self.status.label}, report incomplete"
        terminalreporter.write_sep("=", title, **({} if complete else {"red": True, "bold": True}))
        for line in terminal_table(self.records):
            terminalreporter.write_line(line)
        if self.status is not None:
            terminalreporter.write_line(f"run: {self.status.describe()}", **({} if complete else {"red": True}))
        terminalreporter.write_line(f"report: {self.report_dir}")
        if self.verdicts_exit_note:
            terminalreporter.write_line(self.verdicts_exit_note)
