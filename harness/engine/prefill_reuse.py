"""Reuse of identical prefills within one process: a speed path that leaves every bit of every result unchanged.

The conditions of a run prefill the same token rows again and again: the recursive prompts are the natural
recursive recipient's prefix in one condition and the donor's in the next, the baseline prompts are the recipient
of every B⊕A condition and of the first-step disruption runs. A prefill is a pure function of the model (its weights,
dtype, device and attention implementation), the token rows (their order fixes the left padding), the pad id, the
position offset and the CPU thread count; the same inputs give the same bits. :func:`reused_prefill` keeps the
prefills it computed, per model, up to a byte budget (least recently used out first), and on a repeated request
hands back a clone of the stored one instead of running the model again.

It computes afresh and stores nothing whenever a forward hook or pre-hook is registered on any module of the model
or globally (hooks can edit what a prefill computes: activation patches, captures; transformers' own recording hooks,
which never return a value, are the one exception), or when the model is in training
mode. Every caller gets its own clone (the stored prefill is never handed out), so mutating a returned cache cannot
reach a later run.

Budget: ``$KVCLAIMS_PREFILL_REUSE_MB`` (megabytes, 0 turns reuse off); by default 1,024 MB for a model whose input
embeddings sit on the CPU and 0 elsewhere (GPU memory is kept for batches; a GPU prefill is cheap next to decoding).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import torch

from harness.engine.kvcache import Prefill, clone, input_device, layer_kv, num_layers, prefill

__all__ = ["BUDGET_ENV", "DEFAULT_CPU_BUDGET_MB", "RECORDING_HOOK_MODULES", "ReuseStats", "budget_bytes", "has_forward_hooks",
           "prefill_bytes", "reuse_stats", "reused_prefill"]

BUDGET_ENV = "KVCLAIMS_PREFILL_REUSE_MB"
DEFAULT_CPU_BUDGET_MB = 1024
"""Default budget for a model on the CPU, in megabytes (about 10 batches of 32 SmolLM2 prompts of 70 tokens)."""

_Key = tuple[tuple[tuple[int, ...], ...], int, int, int, str]


@dataclass
class ReuseStats:
    """Per-model counters: prefills served from the store (``hits``), computed and stored (``misses``), computed
    without storing because hooks were active, the model was training or the budget is 0 (``bypassed``), and the bytes
    held now (``stored_bytes``)."""

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    stored_bytes: int = 0


@dataclass
class _Store:
    budget: int
    entries: OrderedDict[_Key, tuple[Prefill, int]] = field(default_factory=OrderedDict)
    stats: ReuseStats = field(default_factory=ReuseStats)

    def fit(self, budget: int) -> None:
        """Take ``budget`` as the limit and drop the least recently used prefills until the store fits it."""
        self.budget = budget
        while self.entries and self.stats.stored_bytes > budget:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.stats.stored_bytes -= dropped

    def put(self, key: _Key, value: Prefill, size: int) -> None:
        if size > self.budget:
            return
        self.entries[key] = (value, size)
        self.stats.stored_bytes += size
        self.fit(self.budget)


_STORES: WeakKeyDictionary[torch.nn.Module, _Store] = WeakKeyDictionary()


def budget_bytes(model: torch.nn.Module) -> int:
    """The store's budget for ``model`` in bytes (see the module docstring); a malformed variable is a one-line
    ``ValueError``."""
    raw = os.environ.get(BUDGET_ENV)
    if raw is None:
        return DEFAULT_CPU_BUDGET_MB << 20 if input_device(model).type == "cpu" else 0
    try:
        megabytes = float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV}={raw!r} is not a number of megabytes (0 turns prefill reuse off)") from None
    if not megabytes >= 0:
        raise ValueError(f"{BUDGET_ENV}={raw!r} must be ≥ 0 megabytes (0 turns prefill reuse off)")
    return int(megabytes * (1 << 20))


RECORDING_HOOK_MODULES = frozenset({"transformers.utils.output_capturing"})
"""Modules whose forward hooks only record outputs and never return a value, so they cannot change what a prefill
computes: transformers 5.x installs ``output_capturing_hook`` on every layer at the first forward that asks for
attentions or hidden states and leaves it there (it returns at once unless a capture is active)."""


def _may_edit(hook: object) -> bool:
    return getattr(hook, "__module__", None) not in RECORDING_HOOK_MODULES


def has_forward_hooks(model: torch.nn.Module) -> bool:
    """True when a forward hook or pre-hook that may edit outputs is registered on a module of ``model`` or globally
    (transformers' recording hooks, :data:`RECORDING_HOOK_MODULES`, do not count)."""
    module_api = torch.nn.modules.module
    if module_api._global_forward_hooks or module_api._global_forward_pre_hooks:
        return True
    return any(_may_edit(hook) for m in model.modules()
               for hooks in (m._forward_hooks, m._forward_pre_hooks) for hook in hooks.values())


def prefill_bytes(prefill_: Prefill) -> int:
    """Bytes of a prefill's stored keys, values and attention mask."""
    total = prefill_.attention_mask.numel() * prefill_.attention_mask.element_size()
    for layer in range(num_layers(prefill_)):
        total += sum(t.numel() * t.element_size() for t in layer_kv(prefill_, layer))
    return total


def reuse_stats(model: torch.nn.Module) -> ReuseStats:
    """A copy of ``model``'s counters (all zero before its first :func:`reused_prefill`)."""
    store = _STORES.get(model)
    return ReuseStats(**vars(store.stats)) if store is not None else ReuseStats()


def reused_prefill(model: torch.nn.Module, rows: Sequence[Sequence[int]], *, pad_id: int,
                   position_offset: int = 0) -> Prefill:
    """:func:`harness.engine.kvcache.prefill` of ``rows``, served from ``model``'s store when the same rows were prefilled
    before in this process (a clone, bit for bit the stored prefill); computed, stored and returned as a clone
    otherwise. Bypasses the store under hooks, in training mode or with a zero budget (see the module docstring)."""
    store = _STORES.get(model)
    if store is None:
        store = _STORES[model] = _Store(budget_bytes(model))
    store.fit(budget_bytes(model))  # the variable is read on every call: a test or a user may change it
    if store.budget == 0 or model.training or has_forward_hooks(model):
        store.stats.bypassed += 1
        return prefill(model, rows, pad_id=pad_id, position_offset=position_offset)
    key: _Key = (tuple(tuple(int(t) for t in r) for r in rows), int(pad_id), int(position_offset),
                 torch.get_num_threads(), str(getattr(model.config, "_attn_implementation", None)))
    found = store.entries.get(key)
    if found is not None:
        store.entries.move_to_end(key)
        store.stats.hits += 1
        return clone(found[0])
    computed = prefill(model, rows, pad_id=pad_id, position_offset=position_offset)
    store.stats.misses += 1
    store.put(key, computed, prefill_bytes(computed))
    return clone(computed)
