"""Content-addressed on-disk cache of raw per-item measurements (DESIGN §8).

A measurement (e.g. the R_V of every prompt of a bank on one model) is stored as JSON under a key that is
the sha256 of a canonical JSON of *everything that determines it*: what is measured and how (parameters),
the model's provenance (name, weights sha256 / revision, dtype, device), the exact prompt texts, the torch
and transformers versions, and a fingerprint of the source code of the modules that compute it. Change any
of these and the key changes; nothing stale can be read back. Statistics are always recomputed from the raw
values, so tables and verdicts can be regenerated without a model.

Writes are atomic (temporary file, then ``os.replace``) under a file lock, so xdist workers can share it.
Modes: ``off`` (never read or write), ``read`` (read, never write), ``readwrite`` (default), ``refresh``
(recompute and overwrite).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

from filelock import FileLock

from harness.storage import cache_root

CacheMode = Literal["off", "read", "readwrite", "refresh"]
CACHE_MODES: tuple[str, ...] = ("off", "read", "readwrite", "refresh")
T = TypeVar("T")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the byte-stable form that keys are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def code_fingerprint(modules: Iterable[ModuleType]) -> str:
    """sha256 of the source text of ``modules`` (in the given order)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of the numerical stack that can change a measurement."""
    import numpy
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": numpy.__version__}


def measurement_key(parts: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``parts`` plus the software versions."""
    return hashlib.sha256(canonical_json({**parts, "_versions": software_versions()}).encode()).hexdigest()


class MeasurementCache:
    """JSON measurements under ``<root>/<kind>/<key>.json``."""

    def __init__(self, root: Path | None = None, mode: CacheMode = "readwrite") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}")
        self.root = root if root is not None else cache_root() / "measurements"
        self.mode = mode

    def path(self, kind: str, key: str) -> Path:
        """File holding the measurement ``kind``/``key``."""
        return self.root / kind / f"{key}.json"

    def get_or_compute(self, kind: str, parts: dict[str, Any], compute: Callable[[], T]) -> T:
        """Return the cached JSON value for ``parts`` or compute it (and store it, per the mode).

        ``compute`` must return a JSON-serializable value built from builtins.
        """
        if self.mode == "off":
            return compute()
        key = measurement_key({"kind": kind, **parts})
        target = self.path(kind, key)
        if self.mode != "refresh" and target.exists():
            return json.loads(target.read_text())
        value = compute()
        if self.mode in ("readwrite", "refresh"):
            self._write(target, value)
        return value

    @staticmethod
    def _write(target: Path, value: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(value, fh)
            os.replace(tmp, target)
