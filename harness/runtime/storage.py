"""The suite's on-disk root: converted model copies, sha256 sidecars and measurement stores live under it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root directory of converted models and measurement stores: ``$KVCLAIMS_CACHE`` or ``~/.cache/kvclaims``."""
    return Path(os.environ.get("KVCLAIMS_CACHE", Path.home() / ".cache" / "kvclaims"))


