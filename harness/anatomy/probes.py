"""What the anatomy measurements share: a prompt's token row, a plain prefill, and the on-disk store entry keyed by
the measuring module's code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any


from harness.engine import kvcache
from harness.engine.tokens import encode, pad_id
from harness.models import LoadedModel
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint

__all__ = ["prefill_rows", "prompt_row", "stored_measurement"]


def stored_measurement(
    lm: LoadedModel, kind: str, prompts: Sequence[Prompt], params: dict[str, Any], store: MeasurementStore | None,
    compute: Callable[[], Any], module: str,
) -> Any:
    """``compute()`` through the measurement store, keyed by the model's identity, the prompts (id, text, system),
    ``params`` and the code of ``module`` (the measuring module's name) and all it imports; computed without a
    store when ``cache`` is None."""
    parts = {
        "model": lm.identity,
        "prompts": [[p.id, p.text, p.system] for p in prompts],
        "params": params,
        "code": code_fingerprint([sys.modules[module]]),
    }
    return (store or MeasurementStore(mode="off")).get_or_compute(kind, parts, compute)


def prompt_row(lm: LoadedModel, prompt: Prompt) -> list[int]:
    """The prompt's token ids (special tokens included); at least 2, or ValueError."""
    ids = encode(lm.tokenizer, prompt.text)
    if len(ids) < 2:
        raise ValueError(f"prompt {prompt.id!r} has {len(ids)} token(s); the anatomy checks need at least 2")
    return ids


def prefill_rows(lm: LoadedModel, rows: Sequence[Sequence[int]], position_offset: int = 0) -> kvcache.Prefill:
    """A plain (unpatched) prefill of ``rows``, left-padded with the tokenizer's pad id."""
    return kvcache.prefill(lm.model, rows, pad_id=pad_id(lm.tokenizer), position_offset=position_offset)
