"""One actor of ``--executor ray`` (:mod:`harness.plugin.ray_executor`): a process that loads one model once, holds
it resident, and runs the claim tests of one work item at a time in this process.

Nothing here imports Ray: the driver wraps :class:`ModelActor` with ``ray.remote`` (the class is found by its
module name in the actor's process, so the harness must be importable there, as it is on a local cluster and on
nodes where kvclaims is installed).

An item is run by ``pytest.main`` on the item's claim tests (absolute node ids, the driver's rootdir and ini file)
as shard ``0/1`` (:data:`ACTOR_SHARD`: the whole run is this process's share, so every claim test measures into the
store and decides nothing) into the actor's own temporary store, with the driver's options that change
measurements. The ``lm`` fixture of each such session takes the resident model
(:func:`harness.plugin.layout_check.resident`) instead of loading it again. After the item the actor hands back
every store entry the item wrote (``<kind>/<key>.json``, bytes; a shard's record aside) and each claim test's
outcome; the driver merges the entries into the run's store and decides every claim from it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.runtime.shards import SHARD_RECORD_KIND

__all__ = ["ACTOR_SHARD", "ActorSetup", "ModelActor", "die_marker", "scratch_folder"]

ACTOR_SHARD = "0/1"
"""The ``--shard`` an actor runs its items as: measure everything, decide nothing."""

_RANK = {"passed": 0, "skipped": 1, "failed": 2}


@dataclass(frozen=True)
class ActorSetup:
    """What an actor needs from the driver: the model and how to load it (the options as given on the driver's
    command line), where the suite is, and the command-line words of the driver's options that change measurements.
    ``die_once`` is the driver's ``KVCLAIMS_RAY_DIE_ONCE`` (:func:`die_marker`); ``run`` names the driver's run (its
    actors' stores are in one folder per node, :attr:`scratch`, which the driver removes on its own node)."""

    model: str
    device: str
    dtype: str | None
    model_args: str | None
    rootdir: str
    inifile: str | None
    options: tuple[str, ...]
    die_once: str | None = None
    run: str = "run"

    @property
    def scratch(self) -> Path:
        """The folder of this run's actor stores on this node (:func:`scratch_folder`)."""
        return scratch_folder(self.run)


def scratch_folder(run: str) -> Path:
    """The folder of run ``run``'s actor stores on this node, in its temporary folder."""
    return Path(tempfile.gettempdir()) / f"kvclaims-ray-{run}"


def die_marker(die_once: str | None, item: str) -> Path | None:
    """The marker file of the fault hook ``KVCLAIMS_RAY_DIE_ONCE=<work item>:<marker file>`` when it names ``item``
    (split at the last ``:``, so a model name may hold one and the path may not), else None."""
    if not die_once:
        return None
    target, sep, marker = die_once.rpartition(":")
    return Path(marker) if sep and target == item and marker else None


class ModelActor:
    """Loads ``setup.model`` once (held resident for every item) and runs work items (:meth:`run_item`)."""

    def __init__(self, setup: ActorSetup) -> None:
        self.setup = setup
        setup.scratch.mkdir(parents=True, exist_ok=True)
        self.store = Path(tempfile.mkdtemp(prefix="store-", dir=setup.scratch))
        self.load_error = _load_resident(setup)

    def run_item(self, item: str, nodeids: list[str]) -> dict[str, Any]:
        """Run the claim tests ``nodeids`` of work item ``item``; return ``{"item", "exit", "outcomes", "load_error",
        "entries", "seconds", "log_tail", "where"}``: pytest's exit status, ``{nodeid: [outcome, phase, message,
        non_finite]}`` (the worst phase of each test), why the actor could not hold the model resident (None when it
        does), the store entries written meanwhile (``{"<kind>/<key>.json": bytes}``), the wall time, the end of the
        run's output, and ``host:pid`` of this actor."""
        before = set(_entries(self.store))
        outcomes = _Outcomes(die_marker(self.setup.die_once, item))
        started = time.perf_counter()
        with _captured() as log:
            code = pytest.main(self.arguments(nodeids), plugins=[outcomes])
        written = sorted(set(_entries(self.store)) - before)
        return {"item": item, "exit": int(code), "outcomes": outcomes.by_node, "load_error": self.load_error,
                "entries": {name: (self.store / name).read_bytes() for name in written},
                "seconds": time.perf_counter() - started, "log_tail": log.getvalue()[-3000:],
                "where": f"{socket.gethostname()}:{os.getpid()}"}

    def arguments(self, nodeids: list[str]) -> list[str]:
        """``pytest.main``'s arguments for ``nodeids`` (absolute paths; nothing relies on this process's cwd)."""
        setup = self.setup
        words = [os.path.join(setup.rootdir, nodeid) for nodeid in nodeids]  # not Path: a node id is no path
        words += [f"--rootdir={setup.rootdir}"] + (["-c", setup.inifile] if setup.inifile else [])
        return words + ["-p", "no:cacheprovider", "-q", "--shard", ACTOR_SHARD, "--store", str(self.store),
                        "--model", setup.model, *setup.options]

    def close(self) -> None:
        """Remove the actor's temporary store (every entry was handed back with its item)."""
        shutil.rmtree(self.store, ignore_errors=True)


def _load_resident(setup: ActorSetup) -> str | None:
    """Load the model with the run's options and hold it resident; the error as one line when it cannot be loaded
    (each item's own session then loads again in its ``lm`` fixture and reports why, as in any run)."""
    import harness.engine.layout_proof  # noqa: F401 - registers the engine's layout prover with the loader
    from harness.models import load_model
    from harness.models.model_args import parse_model_args
    from harness.plugin.layout_check import keep_resident

    try:
        model_args = parse_model_args(setup.model_args)
        loaded = load_model(setup.model, device=setup.device, dtype=setup.dtype, model_args=model_args)
    except Exception as exc:  # noqa: BLE001 - reported by the item's own session, in its words
        return f"{type(exc).__name__}: {exc}"
    keep_resident(loaded, setup.model, device=setup.device, dtype=setup.dtype, model_args=model_args)
    return None


def _entries(root: Path) -> Iterator[str]:
    """``<kind>/<key>.json`` of every entry in the store at ``root`` (a shard's record aside: the actor is no shard
    of the run)."""
    from harness.store.merge import entry_files

    if root.is_dir():
        for kind, _, path in entry_files(root):
            if kind != SHARD_RECORD_KIND:
                yield f"{kind}/{path.name}"


class _Outcomes:
    """A plugin of the item's session: each test's worst phase, and the fault hook."""

    def __init__(self, marker: Path | None) -> None:
        self.marker = marker
        self.by_node: dict[str, list[Any]] = {}
        self._non_finite: dict[tuple[str, str], str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """The fault hook: die in the middle of the item (its model and fixtures set up), once."""
        if self.marker is not None and not self.marker.exists():
            self.marker.touch()
            os._exit(1)

    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> None:
        from harness.foundation.nonfinite import NonFiniteError

        if call.excinfo is not None and call.excinfo.errisinstance(NonFiniteError):
            self._non_finite[(item.nodeid, call.when)] = str(call.excinfo.value)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.by_node.get(report.nodeid)
        if previous is not None and _RANK[previous[0]] >= _RANK[report.outcome]:
            return
        non_finite = self._non_finite.get((report.nodeid, report.when))
        message = non_finite if non_finite is not None else _message(report)
        self.by_node[report.nodeid] = [report.outcome, report.when, message, non_finite is not None]


def _message(report: pytest.TestReport) -> str:
    """A phase's outcome in one line: a skip's reason, a failure's error."""
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    return lines[-1] if lines else report.outcome


class _Tee(io.TextIOBase):
    """A text stream writing to a buffer and on to the process's standard error (progress lines stay visible)."""

    def __init__(self, buffer: io.StringIO, stream: Any) -> None:
        self.buffer_, self.stream = buffer, stream

    def write(self, text: str) -> int:
        self.buffer_.write(text)
        self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    """The session's terminal output into a buffer (its standard error also on to the actor's)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(_Tee(buffer, sys.stderr)):
        yield buffer
