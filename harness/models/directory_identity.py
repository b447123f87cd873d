"""The identity of a ``path:`` model directory's files, part of the model identity that keys cached measurements.

A ``path:`` model is named by its folder, and a training run may write a new checkpoint over the same folder; keyed by
the name alone, the measurement store would hand back the old checkpoint's numbers. :func:`directory_fingerprint`
hashes what ``ls -l`` would show of the folder's files (names, sizes, modification times) — cheap for any model size,
and changed by any rewrite of a weights, config or tokenizer file. It does not hash contents: a file rewritten with
identical size and modification time (``touch -r``) would keep the fingerprint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["directory_fingerprint"]


def directory_fingerprint(directory: Path) -> str:
    """sha256 (hex) over ``name, size in bytes, modification time in ns`` of every regular file directly inside
    ``directory`` (sorted by name; sub-folders are not read)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
