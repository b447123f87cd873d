"""SIGTERM handled like Ctrl-C: a scheduler's preemption (SLURM, Kubernetes, ``timeout``) ends a run with a report.

Python turns SIGINT into ``KeyboardInterrupt``, which pytest answers by ending the session and calling every
plugin's ``pytest_sessionfinish``, so the report is written and marked INTERRUPTED. SIGTERM's default is to die at
once. :func:`handle_sigterm_as_interrupt` installs a handler that raises :class:`TerminatedBySignal` (a
``KeyboardInterrupt``) instead, after restoring the default so that a second SIGTERM ends the process at once.
Finished measurement-store entries are written atomically per batch, so they stay; a re-run computes only what is
missing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["TerminatedBySignal", "handle_sigterm_as_interrupt", "restore_sigterm"]


class TerminatedBySignal(KeyboardInterrupt):
    """The run was ended by a signal other than SIGINT; the message is the signal's name (``SIGTERM``)."""


_previous: object = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
    raise TerminatedBySignal(signal.Signals(signum).name)


def handle_sigterm_as_interrupt() -> bool:
    """Install the SIGTERM handler (main thread only); True when installed."""
    global _previous
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return False
    _previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    return True


def restore_sigterm() -> None:
    """Put back the SIGTERM handler that was there before :func:`handle_sigterm_as_interrupt`."""
    global _previous
    if _previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous)  # type: ignore[arg-type]
        _previous = None
