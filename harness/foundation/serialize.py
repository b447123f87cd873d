"""Serialisation helpers shared by records, cache keys and claim results.

- :func:`to_builtin` turns the package's values (dataclasses, enums, numpy and torch values, containers)
  into JSON builtins. Its ``nonfinite`` policy says what becomes of NaN and ±inf floats:

  - ``"keep"``: they stay floats. Used for cache keys, run records and condition descriptions, where the
    value is hashed or written with Python's ``json`` (which writes ``NaN``/``Infinity``), and a NaN must
    stay distinguishable from a missing value.
  - ``"null"``: they become ``None``. Used for claim results (``claims.json``), which must be strict JSON.

  Anything else (an arbitrary object) raises TypeError rather than reaching a JSON writer or a hash.
- :func:`encode_array` / :func:`decode_array`: a float32 array as ``{"shape": [...], "f32": base64}`` (the raw
  little-endian float32 bytes in C order), exact in both directions.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

__all__ = ["NonFinite", "decode_array", "encode_array", "to_builtin"]

NonFinite = Literal["keep", "null"]
"""What :func:`to_builtin` does with NaN and ±inf floats: keep them as floats, or write None."""


def to_builtin(obj: Any, *, nonfinite: NonFinite) -> Any:
    """Recursively convert ``obj`` to JSON builtins (dict with ``str`` keys, list, str, int, float, bool, None).

    Enums become their value; dataclass instances a dict of their fields; numpy scalars and arrays and torch
    tensors Python numbers and nested lists; tuples and lists lists; sets lists sorted by ``repr``; mapping
    keys ``str`` of their converted key. NaN and ±inf floats follow ``nonfinite`` (see the module docstring).
    Raises TypeError for any other object.
    """
    if nonfinite not in ("keep", "null"):
        raise ValueError(f"to_builtin: nonfinite must be 'keep' or 'null', got {nonfinite!r}")
    return _convert(obj, nonfinite == "keep")


def _convert(obj: Any, keep: bool) -> Any:
    if isinstance(obj, enum.Enum):
        return _convert(obj.value, keep)
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if keep or math.isfinite(f) else None
    if isinstance(obj, str):
        return str(obj)
    if obj is None:
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _convert(getattr(obj, f.name), keep) for f in dataclasses.fields(obj)}
    if isinstance(obj, torch.Tensor):
        values = obj.detach().cpu().tolist()
        return values if keep else _convert(values, keep)
    if isinstance(obj, np.ndarray):
        return [_convert(v, keep) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(_convert(k, keep)): _convert(v, keep) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [_convert(v, keep) for v in items]
    raise TypeError(f"to_builtin: cannot convert {type(obj).__name__} ({obj!r:.80}) to a JSON builtin")


def encode_array(x: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """``x`` cast to float32 as ``{"shape": list of ints, "f32": base64 of the C-order float32 bytes}``."""
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    return {"shape": list(arr.shape), "f32": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(obj: Mapping[str, Any]) -> np.ndarray:
    """The float32 array of an :func:`encode_array` dict (a writable copy)."""
    return np.frombuffer(base64.b64decode(obj["f32"]), dtype=np.float32).reshape(obj["shape"]).copy()
