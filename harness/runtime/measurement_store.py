"""Content-addressed on-disk cache of raw per-item measurements (DESIGN §8).

A measurement (e.g. the R_V of every prompt of a bank on one model) is stored as JSON under a key that is
the sha256 of a canonical JSON of *everything that determines it*: what is measured and how (parameters),
the model's provenance (name, weights sha256 / revision, dtype, device), the exact prompt texts, the torch
and transformers versions, and a fingerprint of the code of the modules that compute it and of every
``harness`` module they import (:func:`code_fingerprint`). Change any of these and the key changes; nothing
stale can be read back. Statistics are always recomputed from the raw values, so tables and verdicts can be
regenerated without a model.

Writes are atomic (temporary file, fsync, then ``os.replace``) under a file lock, so xdist workers can share it.
Computing is once per key: in ``readwrite`` and ``refresh`` modes :meth:`MeasurementStore.get_or_compute` holds the
compute-once lock of the key (:mod:`harness.runtime.compute_lock`: ``fcntl.flock`` on ``<kind>/<key>.lock``, POSIX only)
while it re-checks the cache, computes and writes, so a second worker asking for the same item waits and reads the
first one's entry; a holder that dies releases the lock with its process.
Each entry is an envelope ``{"format", "key", "sha256", "value"}``: a read checks that the file is JSON of that
shape, names its own key and that the sha256 of the canonical JSON of ``value`` matches. An entry that fails
(truncated by a crash, 0 bytes, not JSON, wrong shape, another key) is moved aside to
``<kind>/corrupt/<key>.<UTC time>.json`` with a :class:`CorruptCacheEntryWarning` naming both paths, and the
value is recomputed (in ``read`` mode the file is left where it is). Modes: ``off`` (never read or write), ``read`` (read, never write), ``readwrite`` (default), ``refresh``
(recompute and overwrite).

Work units (:meth:`MeasurementStore.get_or_compute_units`): a measurement computed in batches (continuations, prefill
captures, first-step logits) is computed in *units*, runs of ``unit_size`` consecutive items of the request counted from
its first item, each unit in one batch, whatever is already stored and whoever asks; an item's key names its unit. A
batched forward pass is equal to a single one only to rounding, so without fixed units the stored value of an item
would depend on which claim (or which shard, or which order of tests) asked for it first. With them a value depends
only on its key: a serial run, any split into shards and any executor store the same bytes under the same keys.

A store that may not compute (``compute=False``: the reduce of a merged store, with no model weights at hand)
raises :class:`MissingMeasurementError`, naming the entry, for anything absent.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

from filelock import FileLock

from harness.runtime.compute_lock import compute_lock
from harness.runtime.storage import cache_root

CacheMode = Literal["off", "read", "readwrite", "refresh"]
CACHE_MODES: tuple[str, ...] = ("off", "read", "readwrite", "refresh")
ENTRY_FORMAT = 1
"""Version of the entry envelope ``{"format", "key", "sha256", "value"}``."""
T = TypeVar("T")
LOG = logging.getLogger(__name__)


class CorruptCacheEntryWarning(UserWarning):
    """A measurement store entry failed its check (not JSON, wrong shape, wrong key or sha256); it is recomputed."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the byte-stable form that keys are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def code_fingerprint(
    objects: Iterable[ModuleType | Callable[..., Any] | type], *, package: str = "harness", exclude: Iterable[str] = (),
) -> str:
    """sha256 over the code of the ``package`` modules that ``objects`` depend on.

    Each object (a module, or a function or class, which stands for the module defining it) is a root; the
    fingerprint covers the roots and every ``package`` module reachable from them through import statements
    (module level or inside functions, absolute or relative), found by reading the source files, not by
    importing. A module's code is its ``ast.dump`` with the docstrings of the module, its classes and
    functions removed, so editing a docstring or a comment leaves the fingerprint unchanged and editing code
    (of a root or of any dependency) changes it. Modules are hashed in name order, so the order of
    ``objects`` does not matter. Computed once per process for each set of roots.

    ``exclude`` names sub-packages or modules (e.g. ``"harness.behaviour"``) that are neither followed nor
    hashed: for a caller whose stored values provably do not depend on them (the continuation cache stores
    texts, which every run re-scores with the current scorers). Say why at the call site.
    """
    roots = tuple(sorted({_module_name(obj) for obj in objects}))
    return _closure_fingerprint(roots, package, tuple(sorted(set(exclude))))


def clear_fingerprint_cache() -> None:
    """Forget the fingerprints computed so far (they are otherwise read once per process)."""
    _closure_fingerprint.cache_clear()
    _module_code.cache_clear()
    _package_root.cache_clear()


def _module_name(obj: ModuleType | Callable[..., Any] | type) -> str:
    if isinstance(obj, ModuleType):
        return obj.__name__
    name = getattr(obj, "__module__", None)
    if not isinstance(name, str):
        raise TypeError(f"code_fingerprint: {obj!r} is neither a module nor a function or class of one")
    return name


@functools.lru_cache(maxsize=None)
def _closure_fingerprint(roots: tuple[str, ...], package: str, exclude: tuple[str, ...]) -> str:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or any(_inside(name, excluded) for excluded in exclude):
            continue
        seen.add(name)
        todo.extend(_module_code(name, package)[1])
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(f"{name}\n{_module_code(name, package)[0]}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _module_code(name: str, package: str) -> tuple[str, tuple[str, ...]]:
    """The docstring-free ``ast.dump`` of module ``name`` and the ``package`` modules it imports."""
    path = _source_path(name, package)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    deps: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if _inside(a.name, package))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            if _inside(base, package):
                deps.add(base)
                deps.update(f"{base}.{a.name}" for a in node.names if _module_path(f"{base}.{a.name}", package))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:]
    deps.discard(name)
    return ast.dump(tree), tuple(sorted(d for d in deps if _module_path(d, package)))


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module name of a ``from ... import`` statement inside module ``importer``."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _source_path(name: str, package: str) -> Path:
    loaded = sys.modules.get(name)
    file = getattr(loaded, "__file__", None)
    if file and file.endswith(".py"):
        return Path(file)
    path = _module_path(name, package)
    if path is None:
        raise ValueError(f"code_fingerprint: no Python source found for module {name!r}")
    return path


def _module_path(name: str, package: str) -> Path | None:
    """Source file of ``package`` module ``name`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    if not _inside(name, package):
        return None
    root = _package_root(package)
    if root is None:
        return None
    relative = Path(*name.split(".")[1:]) if name != package else Path()
    for candidate in (root / relative.with_suffix(".py") if name != package else None, root / relative / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def _package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def software_versions() -> dict[str, str]:
    """Versions of the numerical stack that can change a measurement."""
    import numpy
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": numpy.__version__}


def measurement_key(parts: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``parts`` plus the software versions."""
    return hashlib.sha256(canonical_json({**parts, "_versions": software_versions()}).encode()).hexdigest()


class MeasurementStore:
    """JSON measurements under ``<root>/<kind>/<key>.json``."""

    def __init__(self, root: Path | None = None, mode: CacheMode = "readwrite", *, compute: bool = True) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}")
        if not compute and mode != "read":
            raise ValueError(f"a store that may not compute reads only (mode 'read'), not {mode!r}")
        self.root = root if root is not None else cache_root() / "measurements"
        self.mode = mode
        self.compute = compute

    def path(self, kind: str, key: str) -> Path:
        """File holding the measurement ``kind``/``key``."""
        return self.root / kind / f"{key}.json"

    def lock_path(self, kind: str, key: str) -> Path:
        """The compute-once lock file of ``kind``/``key`` (beside its entry)."""
        return self.root / kind / f"{key}.lock"

    def get_or_compute(self, kind: str, parts: dict[str, Any], compute: Callable[[], T]) -> T:
        """Return the cached JSON value for ``parts`` or compute it (and store it, per the mode).

        ``compute`` must return a JSON-serializable value built from builtins. A stored entry that fails its
        check is moved aside (see the module docstring), warned about, and recomputed.

        In ``readwrite`` and ``refresh`` modes the key's compute-once lock is held from the re-check to the write, so
        concurrent callers (other processes) compute a key once: the others wait and read the entry. In ``refresh``
        mode an entry is taken as this run's when it was written after this call began waiting for the lock (its
        mtime; an entry written in the same clock tick may be recomputed once more, never a stale one reused).
        ``off`` and ``read`` modes take no lock (they never write, so there is nothing for a waiter to read).
        """
        if self.mode == "off":
            return compute()
        key = measurement_key({"kind": kind, **parts})
        target = self.path(kind, key)
        if self.mode != "refresh" and target.exists():
            found, value = self._read(kind, key, target)
            if found:
                return value
        if self.mode == "read":
            if not self.compute:
                raise MissingMeasurementError(kind, key, target)
            return compute()
        waiting_since_ns = time.time_ns()
        lock_path = self.lock_path(kind, key)
        with contextlib.nullcontext() if lock_path in _HELD_LOCKS else compute_lock(lock_path):
            if _written_since(target, waiting_since_ns if self.mode == "refresh" else None):
                found, value = self._read(kind, key, target)
                if found:
                    return value
            value = compute()
            self._write(target, key, value)
        return value

    @contextlib.contextmanager
    def holding(self, kind: str, parts_list: Iterable[dict[str, Any]]) -> Iterator[None]:
        """Hold the compute-once locks of several keys while the caller computes them outside
        :meth:`get_or_compute` (batched generation) and stores each through it; :meth:`get_or_compute` in this process
        takes no second lock on a held key. Locks are taken in key order, so two processes holding overlapping sets
        cannot deadlock; ``off`` and ``read`` modes take none. The caller re-checks the cache once inside: another
        process may have stored some of the keys while this one waited."""
        if self.mode not in ("readwrite", "refresh"):
            yield
            return
        keys = sorted({measurement_key({"kind": kind, **parts}) for parts in parts_list})
        with contextlib.ExitStack() as stack:
            for key in keys:
                path = self.lock_path(kind, key)
                if path in _HELD_LOCKS:
                    continue
                stack.enter_context(compute_lock(path))
                _HELD_LOCKS.add(path)
                stack.callback(_HELD_LOCKS.discard, path)
            yield

    def get_or_compute_units(
        self, kind: str, parts_list: Sequence[dict[str, Any]], compute: Callable[[list[int]], list[Any]], *,
        unit_size: int,
    ) -> list[Any]:
        """Per item of ``parts_list``, its value, computed in work units (see the module docstring).

        The items are cut into units of ``unit_size`` consecutive items from the first (the last unit may be
        shorter). Item ``i``'s key is its parts plus ``"unit"``: the sha256 of the canonical JSON of its unit's parts
        list. A unit with any item absent is computed whole, by one call ``compute(indices)`` (the unit's item
        indices, ascending; it returns one JSON value per index, in order), under the compute-once locks of all its
        items, and each item is stored as soon as the unit is done. Raises ValueError for ``unit_size`` < 1.
        """
        if unit_size < 1:
            raise ValueError(f"unit_size must be at least 1, got {unit_size}")
        values: list[Any] = [None] * len(parts_list)
        for start in range(0, len(parts_list), unit_size):
            indices = list(range(start, min(start + unit_size, len(parts_list))))
            keyed = unit_parts([parts_list[i] for i in indices])
            found = [self.lookup(kind, parts) for parts in keyed]
            if any(f is _ABSENT for f in found):
                with self.holding(kind, keyed):
                    found = [self.lookup(kind, parts) for parts in keyed]
                    if any(f is _ABSENT for f in found):
                        computed = compute(indices)
                        if len(computed) != len(indices):
                            raise ValueError(f"{kind}: a unit of {len(indices)} items computed {len(computed)} values")
                        found = [self.get_or_compute(kind, parts, lambda v=v: v) for parts, v in zip(keyed, computed)]
            for i, value in zip(indices, found):
                values[i] = value
        return values

    def put(self, kind: str, parts: dict[str, Any], value: Any) -> None:
        """Write ``value`` under ``parts`` whatever is stored there (atomic; nothing in ``off`` and ``read`` modes): for
        a description of the run rather than a measurement (a model's manifest, a shard's record)."""
        if self.mode in ("readwrite", "refresh"):
            key = measurement_key({"kind": kind, **parts})
            self._write(self.path(kind, key), key, value)

    def reading_only(self) -> MeasurementStore:
        """The same store, read-only and unable to compute: what a weightless reduce reads through."""
        return MeasurementStore(self.root, "read", compute=False)

    def lookup(self, kind: str, parts: dict[str, Any]) -> Any:
        """The stored value of ``parts``, or the sentinel :data:`ABSENT` when it is not stored (nothing is computed;
        a store that may not compute raises :class:`MissingMeasurementError` instead)."""
        if self.mode in ("off", "refresh"):
            return _ABSENT
        key = measurement_key({"kind": kind, **parts})
        target = self.path(kind, key)
        found, value = self._read(kind, key, target) if target.exists() else (False, None)
        if found:
            return value
        if not self.compute:
            raise MissingMeasurementError(kind, key, target)
        return _ABSENT

    def _read(self, kind: str, key: str, target: Path) -> tuple[bool, Any]:
        """``(True, value)`` for a sound entry; ``(False, None)`` when absent or corrupt (then moved aside)."""
        try:
            raw = target.read_bytes()
        except FileNotFoundError:
            return False, None
        value, problem = check_entry(raw, key)
        if problem is None:
            return True, value
        self._set_aside(kind, key, target, raw, problem)
        return False, None

    def _set_aside(self, kind: str, key: str, target: Path, raw: bytes, problem: str) -> None:
        if self.mode == "read":
            where = "left in place (--claims-cache read never writes); delete it or run with readwrite"
        else:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            aside = self.root / kind / "corrupt" / f"{key}.{stamp}.json"
            aside.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(target) + ".lock"):
                try:
                    if target.read_bytes() != raw:  # another worker rewrote it meanwhile: not ours to move
                        return
                    os.replace(target, aside)
                except FileNotFoundError:  # another worker moved it aside already
                    return
            where = f"moved aside to {aside}"
        message = f"measurement store entry {target} is corrupt ({problem}); {where}; recomputing it"
        LOG.warning(message)
        warnings.warn(message, CorruptCacheEntryWarning, stacklevel=3)

    @staticmethod
    def _write(target: Path, key: str, value: Any) -> None:
        try:
            MeasurementStore._write_entry(target, key, value)
        except OSError as exc:
            raise StoreWriteError(f"the measurement store cannot write {target}: {exc.strerror or exc}; its finished "
                                  "entries are intact (free space, or point KVCLAIMS_CACHE at another disk, and re-run: "
                                  "only what is missing is computed)") from exc

    @staticmethod
    def _write_entry(target: Path, key: str, value: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        envelope = {"format": ENTRY_FORMAT, "key": key, "sha256": value_sha256(value), "value": value}
        with FileLock(str(target) + ".lock"):
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(envelope, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT = _Absent()
ABSENT: Any = _ABSENT
"""What :meth:`MeasurementStore.lookup` returns for an entry that is not stored."""


def unit_parts(parts_list: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The keys' parts of one work unit's items: each item's parts plus ``"unit"``, the sha256 of the canonical JSON
    of the whole unit's parts list (so an item's key names every item it was computed with)."""
    unit = value_sha256(list(parts_list))
    return [{**parts, "unit": unit} for parts in parts_list]


class MissingMeasurementError(LookupError):
    """An entry a store that may not compute does not hold (the reduce of a merged store: one of the shards did
    not compute it, or the run asks for something the shards were not run with)."""

    def __init__(self, kind: str, key: str, path: Path) -> None:
        self.kind, self.key, self.path = kind, key, path
        super().__init__(f"the measurement store holds no {kind} entry {key[:16]}… ({path}); it can only read "
                         "(no model weights in this run)")


class StoreWriteError(RuntimeError):
    """An entry could not be written (a full disk, say); one line naming the entry and the reason. Nothing
    half-written is left: the temporary file is removed and earlier entries are untouched."""


_HELD_LOCKS: set[Path] = set()
"""Compute-once lock files this process holds through :meth:`MeasurementStore.holding`."""


def _written_since(target: Path, since_ns: int | None) -> bool:
    """Whether ``target`` exists and (when ``since_ns`` is given) was last modified at or after ``since_ns`` (ns)."""
    try:
        return since_ns is None or target.stat().st_mtime_ns >= since_ns
    except FileNotFoundError:
        return False


def value_sha256(value: Any) -> str:
    """sha256 hex of the canonical JSON of a stored value (the same before writing and after reading back)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def check_entry(raw: bytes, key: str) -> tuple[Any, str | None]:
    """``(value, None)`` for a sound entry of ``key``; ``(None, problem)`` otherwise (problem in a few words)."""
    if not raw.strip():
        return None, f"{len(raw)} bytes, empty"
    try:
        entry = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON ({len(raw)} bytes, truncated?): {exc}"
    if not isinstance(entry, dict) or set(entry) != {"format", "key", "sha256", "value"}:
        shape = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        return None, f"not a cache entry (expected keys format, key, sha256, value; found {shape})"
    if entry["format"] != ENTRY_FORMAT:
        return None, f"entry format {entry['format']!r}, expected {ENTRY_FORMAT}"
    if entry["key"] != key:
        return None, f"it holds key {str(entry['key'])[:16]}…, not its file name's key"
    if entry["sha256"] != value_sha256(entry["value"]):
        return None, "sha256 of the value does not match the one stored with it"
    return entry["value"], None
