"""Progress a user can see: one line per batch of a long computation, written past pytest's output capture.

pytest captures a test's output (and pytest-xdist workers print nothing of their own), so progress bars drawn
inside a claim test are swallowed. The pytest plugin installs a sink (:func:`set_sink`) that writes each line to
the terminal's standard error with capturing suspended, in the controller and in every xdist worker (a worker's
standard error is the terminal's). Without a sink (library use) lines go to the logger ``harness.runtime.progress``.

A line reads ``[kvclaims] smollm2-135m kv_main: 32/55 pairs, 1,536 tokens, 45.1 tok/s, ETA 0:00:28``: items done
of the total, generated tokens so far, their rate over the wall time since the first batch started, and the
remaining time at that rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ProgressMeter", "emit", "set_sink"]

_LOG = logging.getLogger("harness.runtime.progress")
_SINK: Callable[[str], None] | None = None


def set_sink(sink: Callable[[str], None] | None) -> None:
    """Where progress lines go (None: the ``harness.runtime.progress`` logger at INFO)."""
    global _SINK
    _SINK = sink


def emit(line: str) -> None:
    """Write one progress line to the sink (never raises: progress must not break a measurement)."""
    try:
        if _SINK is None:
            _LOG.info(line)
        else:
            _SINK(line)
    except Exception:  # noqa: BLE001 - a closed terminal or stream must not fail the run
        _LOG.debug("progress line dropped: %s", line)


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class ProgressMeter:
    """Counts items (and generated tokens) of one task and emits a line per :meth:`advance`.

    ``label`` names the task (model and condition), ``total`` the items it will do, ``unit`` what an item is.
    """

    label: str
    total: int
    unit: str = "items"
    done: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def advance(self, items: int, tokens: int = 0) -> str:
        """Record ``items`` more items (``tokens`` more generated tokens), emit the line and return it."""
        self.done += items
        self.tokens += tokens
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        parts = [f"{self.done}/{self.total} {self.unit}"]
        if self.tokens:
            parts += [f"{self.tokens:,} tokens", f"{self.tokens / elapsed:.1f} tok/s"]
        if 0 < self.done < self.total:
            parts.append(f"ETA {_clock(elapsed / self.done * (self.total - self.done))}")
        elif self.done >= self.total:
            parts.append(f"done in {_clock(elapsed)}")
        line = f"[kvclaims] {self.label}: " + ", ".join(parts)
        emit(line)
        return line
