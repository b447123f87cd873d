"""kvclaims harness. Importing it makes the process offline by construction (before transformers or
huggingface_hub are imported by any harness module): the suite never downloads and never connects."""

from __future__ import annotations

import os
import sys

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")
"""Set to ``1`` on import unless the user already set them to a true value."""
_TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})
"""The values huggingface_hub and transformers read as true."""


def force_offline(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Make Hugging Face libraries offline: each of :data:`OFFLINE_VARIABLES` becomes ``1`` unless it is already
    true (an explicit ``HF_HUB_OFFLINE=0`` is overridden: the suite promises never to download). A
    ``huggingface_hub`` imported before the harness has its offline constant switched on as well."""
    for name in OFFLINE_VARIABLES:
        if environ.get(name, "").strip().upper() not in _TRUE_VALUES:
            environ[name] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and environ is os.environ:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
        constants.HF_HUB_DISABLE_TELEMETRY = True  # type: ignore[attr-defined]


force_offline()
