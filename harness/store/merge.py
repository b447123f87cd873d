"""Merge measurement stores: ``python -m harness.store merge SRC… --into DST``.

Each SRC and DST is a store root (what :class:`harness.runtime.measurement_store.MeasurementStore` takes as ``root``):
entries are ``<root>/<kind>/<key>.json`` with a 64-hex-digit key; lock files (``<key>.lock``, ``<key>.json.lock``),
temporary files (``*.tmp``) and the ``<kind>/corrupt/`` folders beside them are not entries and are neither read nor
copied.

Everything is checked before anything is written: every source entry must pass
:func:`~harness.runtime.measurement_store.check_entry` against the key of its file name; a kind/key held by two
sources, or by a source and DST, must hold the same value (the sha256 of its canonical JSON): units are
deterministic, so shards that computed the same one agree, and an identical duplicate is kept once. A corrupt entry,
a conflict, a missing or empty SRC, or DST equal to a SRC refuses the whole merge with one line
(:class:`MergeError`) and DST is left as it was. Entries are then copied byte for byte, each through a temporary
file in its target folder, fsync and ``os.replace``, under the same per-entry file lock the store takes when it
writes; a merge of sources already merged copies nothing and leaves DST byte-identical.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.runtime.measurement_store import check_entry, value_sha256

KEY = re.compile(r"[0-9a-f]{64}")
"""A measurement key: the sha256 hex of what determines the measurement."""


class MergeError(ValueError):
    """A merge refused (nothing written): a missing or empty source, DST equal to a source, a corrupt entry, or two
    places holding different values for one kind/key. The message is one line."""


@dataclass(frozen=True)
class StoreEntry:
    """One verified entry of a store: where it is, and the sha256 of its value and of its file's bytes."""

    store: Path
    kind: str
    key: str
    path: Path
    value_sha256: str
    file_sha256: str

    @property
    def name(self) -> str:
        """``<kind>/<key[:16]>…``, how messages name the entry."""
        return f"{self.kind}/{self.key[:16]}…"


@dataclass(frozen=True)
class MergeSummary:
    """What a merge did: ``entries`` distinct kind/keys found in ``stores`` sources, of which ``copied`` were written
    into ``into`` and ``present`` were there already with the same value; ``shared`` of them were in more than one
    source."""

    entries: int
    stores: int
    into: Path
    copied: int
    present: int
    shared: int

    def line(self) -> str:
        """The one summary line the command prints."""
        shared = f" ({self.shared} held by more than one source)" if self.shared else ""
        return (f"merged {self.entries} entries from {self.stores} stores into {self.into}: {self.copied} copied, "
                f"{self.present} already present{shared}")


def entry_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    """``(kind, key, path)`` of every entry file under store ``root`` (``<root>/<kind>/<key>.json``), in kind and key
    order; anything else (lock and temporary files, ``corrupt/`` folders, other names) is skipped."""
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(kind_dir.glob("*.json")):
            if KEY.fullmatch(path.stem) and path.is_file():
                yield kind_dir.name, path.stem, path


def read_entry(store: Path, kind: str, key: str, path: Path) -> StoreEntry:
    """The verified entry at ``path``; :class:`MergeError` naming the file and its problem when it fails
    :func:`~harness.runtime.measurement_store.check_entry` or cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MergeError(f"cannot read {path}: {exc.strerror or exc}; nothing merged") from None
    value, problem = check_entry(raw, key)
    if problem is not None:
        raise MergeError(f"corrupt entry {path}: {problem}; nothing merged (move it aside or delete it, then merge "
                         "again)")
    return StoreEntry(store, kind, key, path, value_sha256(value), hashlib.sha256(raw).hexdigest())


def scan_store(store: Path) -> list[StoreEntry]:
    """Every entry of source ``store``, verified; :class:`MergeError` for a missing store, one that holds no entry
    (most likely a mistyped path) or a corrupt entry."""
    if not store.exists():
        raise MergeError(f"{store} does not exist (give a measurement store root: the folder holding "
                         "<kind>/<key>.json)")
    if not store.is_dir():
        raise MergeError(f"{store} is not a directory (give a measurement store root)")
    entries = [read_entry(store, kind, key, path) for kind, key, path in entry_files(store)]
    if not entries:
        hint = f"; did you mean {store / 'measurements'}?" if (store / "measurements").is_dir() else ""
        raise MergeError(f"{store} holds no measurement store entries (<kind>/<64 hex digits>.json){hint}")
    return entries


def plan_merge(sources: Sequence[Path], into: Path) -> tuple[list[StoreEntry], int, int]:
    """Check everything and write nothing: the entries to copy into ``into`` (one per kind/key), how many are
    already there with the same value, and how many were held by more than one source. :class:`MergeError` for any
    reason the merge is refused (see the module docstring)."""
    _check_places(sources, into)
    chosen: dict[tuple[str, str], StoreEntry] = {}
    shared: set[tuple[str, str]] = set()
    for store in sources:
        for entry in scan_store(store):
            first = chosen.setdefault((entry.kind, entry.key), entry)
            if first is not entry:
                _same_value(first, entry)
                shared.add((entry.kind, entry.key))
    to_copy: list[StoreEntry] = []
    for entry in chosen.values():
        target = into / entry.kind / entry.path.name
        if target.exists():
            _same_value(entry, read_entry(into, entry.kind, entry.key, target))
        else:
            to_copy.append(entry)
    return to_copy, len(chosen) - len(to_copy), len(shared)


def merge_stores(sources: Sequence[Path], into: Path) -> MergeSummary:
    """Copy every entry of every store in ``sources`` into store ``into`` (created if absent) after checking them all
    (:func:`plan_merge`); entries ``into`` already holds with the same value are left untouched. Raises
    :class:`MergeError` (one line; nothing written) when the merge is refused."""
    to_copy, present, shared = plan_merge(sources, into)
    copied = sum(_copy_entry(entry, into) for entry in to_copy)
    present += len(to_copy) - copied
    return MergeSummary(entries=copied + present, stores=len(sources), into=into, copied=copied, present=present,
                        shared=shared)


def _check_places(sources: Sequence[Path], into: Path) -> None:
    """:class:`MergeError` for no source, a source named twice, DST equal to a source, or DST not a directory."""
    if not sources:
        raise MergeError("no source store given (python -m harness.store merge SRC... --into DST)")
    seen: dict[Path, Path] = {}
    for store in sources:
        same = seen.setdefault(store.resolve(), store)
        if same is not store:
            raise MergeError(f"{store} is given twice as a source (also as {same}); nothing merged")
    if into.resolve() in seen:
        raise MergeError(f"the destination {into} is also a source ({seen[into.resolve()]}); merge into another "
                         "folder; nothing merged")
    if into.exists() and not into.is_dir():
        raise MergeError(f"the destination {into} is not a directory; nothing merged")


def _same_value(first: StoreEntry, other: StoreEntry, outcome: str = "nothing merged") -> None:
    """:class:`MergeError` naming both places when two entries of one kind/key hold different values."""
    if first.value_sha256 != other.value_sha256:
        raise MergeError(f"conflicting entry {first.name}: {first.store} and {other.store} hold different values "
                         f"(sha256 {first.value_sha256[:12]}… vs {other.value_sha256[:12]}…); {outcome}")


def _copy_entry(entry: StoreEntry, into: Path) -> int:
    """Write ``entry``'s file, byte for byte, to ``into/<kind>/<key>.json`` atomically (a temporary file in the target
    folder, fsync, ``os.replace``) under the store's per-entry write lock; 1 when written, 0 when an identical entry
    appeared there since the check. :class:`MergeError` when the source file changed since the check or a different
    value appeared in ``into`` meanwhile (entries copied before it stay: each is sound)."""
    raw = entry.path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != entry.file_sha256:
        raise MergeError(f"{entry.path} changed during the merge; the entries copied before it are sound, merge again")
    target = into / entry.kind / entry.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            _same_value(entry, read_entry(into, entry.kind, entry.key, target),
                        f"{into} was written to during the merge; the entries copied before it are sound")
            return 0
        write_atomically(target, raw)
    return 1


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in its folder, fsync and ``os.replace``: a reader sees
    the old file or the whole new one, never a part; the temporary file is removed if anything fails."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem[:16]}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
