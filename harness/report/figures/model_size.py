"""Model sizes for ordering figure rows and facets (the cross-model / scaling view).

Where the size comes from, first found wins:

1. the record's ``details["model_provenance"]``: ``n_parameters`` (or ``num_parameters``), an exact count a
   loader may record;
2. the nominal size in the model's name, e.g. ``smollm2-135m`` → 135 M, ``llama3-70b`` → 70 B, ``mixtral-8x7b``
   → 8 × 7 B (nominal: shared attention makes the true count smaller); then in its Hub id or location
   (the provenance ``location``), e.g. ``Qwen/Qwen2.5-7B``. The loader records ``n_parameters`` for every model.

A nominal size is the developers' rounded figure, not a count, and the label says so ("nominal"). Models with
no size found sort after the others, in their first-seen order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_NOMINAL = re.compile(r"(?<![0-9.])(?:(?P<experts>\d+)x)?(?P<size>\d+(?:\.\d+)?)(?P<unit>[mb])(?![a-z0-9])",
                      re.IGNORECASE)
_UNIT = {"m": 1e6, "b": 1e9}
_EXACT_KEYS = ("n_parameters", "num_parameters")


@dataclass(frozen=True)
class ModelSize:
    """A model's parameter count (None when unknown) and where it came from (``exact`` or ``nominal``)."""

    parameters: float | None
    source: str

    def label(self) -> str:
        """'135M (nominal)', '7.24B' for an exact count, 'size unknown'."""
        if self.parameters is None:
            return "size unknown"
        p = self.parameters
        text = f"{p / 1e9:.3g}B" if p >= 1e9 else f"{p / 1e6:.3g}M"
        return f"{text} (nominal)" if self.source == "nominal" else text


def nominal_parameters(text: str) -> float | None:
    """The nominal size written in a model name or Hub id ('gemma3-270m' → 2.7e8; 'mixtral-8x7b' → 5.6e10)."""
    match = None
    for match in _NOMINAL.finditer(text):
        pass  # the last size token: 'Qwen2.5-0.5B' has only one, 'org-7b/name-1.5b' names the model last
    if match is None:
        return None
    experts = int(match["experts"]) if match["experts"] else 1
    return experts * float(match["size"]) * _UNIT[match["unit"].lower()]


def model_size(model: str, records: Sequence[dict[str, Any]] = ()) -> ModelSize:
    """The size of ``model`` from its records' provenance, its name or its registry location (module doc)."""
    provenance: dict[str, Any] = {}
    for rec in records:
        if rec.get("model") == model:
            provenance = ((rec.get("details") or {}).get("model_provenance") or {})
            if provenance:
                break
    for key in _EXACT_KEYS:
        value = provenance.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return ModelSize(float(value), "exact")
    for text in (model, provenance.get("location")):
        if isinstance(text, str):
            found = nominal_parameters(text)
            if found is not None:
                return ModelSize(found, "nominal")
    return ModelSize(None, "unknown")


def model_order(records: Sequence[dict[str, Any]]) -> list[str]:
    """The models of ``records`` by increasing size; unknown sizes last; ties in first-seen order."""
    models = list(dict.fromkeys(str(r.get("model")) for r in records))
    sizes = {m: model_size(m, records).parameters for m in models}
    return sorted(models, key=lambda m: (sizes[m] is None, sizes[m] or 0.0, models.index(m)))
