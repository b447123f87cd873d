"""Batched prefill capture of value-projection windows and attention entropy (DESIGN §4.1).

V is the output of each layer's value projection (``self_attn.v_proj``; the V block of a fused
``qkv_proj``), shape ``[tokens, n_kv_heads * head_dim]``, captured by a forward hook during one clean
prefill pass with no intervention. The window is the last W content tokens (special tokens excluded);
prompts with fewer than W + 1 content tokens are rejected.

Optionally the same pass records the attention entropy of every query head at the window's query
positions: a hook on each attention module reads the eager attention probabilities
``[batch, n_heads, queries, keys]`` the module returns, reduces them to entropies (nats) at once and
keeps only those; the probabilities themselves are never stored. Sliding-window layers attend to at
most ``sliding_window`` keys, so their entropies are over that key set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from harness.engine.attention import attention_entropy
from harness.engine.hooks import TraceDict, resolve_module
from harness.engine.tokens import encode, left_pad, pad_id, special_ids
from harness.geometry.metrics import DEFAULT_WINDOW, PRKind, content_window, per_head_pr, r_v
from harness.models import LoadedModel
from harness.models.architectures import select_columns


class AttentionWeightsUnavailableError(RuntimeError):
    """The attention modules returned no probabilities (not eager attention), so entropy cannot be measured."""


@dataclass(frozen=True)
class VWindows:
    """Captured V windows: ``values[layer]`` is float32 ``[n_prompts, W, n_kv_heads*head_dim]`` on CPU.

    ``positions[i]`` are the absolute token positions (in prompt i's own, unpadded tokens) of its window.
    ``entropy[layer]`` (when requested) is float32 ``[n_prompts, n_heads]``: per query head, the entropy in
    nats of its attention distribution, averaged over the W window query positions.
    """

    prompt_ids: tuple[str, ...]
    window: int
    positions: tuple[tuple[int, ...], ...]
    values: dict[int, torch.Tensor]
    entropy: dict[int, torch.Tensor] | None = None


@contextmanager
def _entropy_hooks(
    lm: LoadedModel, layers: Sequence[int], rows: Sequence[torch.Tensor], sink: dict[int, list[torch.Tensor]]
) -> Iterator[None]:
    """Hook each layer's attention module; per batch row, append the window-mean entropy per head to ``sink``.

    ``rows[b]`` are the padded query indices of row b's window. Hooks are removed on exit, also on error.
    """

    def make_hook(layer: int):  # noqa: ANN202 - a torch forward hook
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            probs = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if probs is None:
                raise AttentionWeightsUnavailableError(
                    f"{lm.name}: layer {layer}'s attention returned no probabilities; attention entropy needs "
                    "attn_implementation='eager'"
                )
            for b, index in enumerate(rows):
                window_probs = probs[b].index_select(1, index.to(probs.device))  # [heads, W, keys]
                sink[layer].append(attention_entropy(window_probs).mean(dim=1).to("cpu", torch.float32))

        return hook

    handles = []
    try:
        for layer in layers:
            handles.append(resolve_module(lm.model, lm.path(layer, "attn")).register_forward_hook(make_hook(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def capture_v_windows(
    lm: LoadedModel,
    prompts: Sequence[tuple[str, str]],
    layers: Sequence[int],
    *,
    window: int = DEFAULT_WINDOW,
    batch_size: int = 8,
    attention_entropy_layers: Sequence[int] = (),
) -> VWindows:
    """Prefill ``(prompt_id, text)`` pairs in left-padded batches and keep the V window at each layer.

    With ``attention_entropy_layers`` the same pass also records, at those layers, each query head's
    attention entropy averaged over the window's query positions (``VWindows.entropy``).

    Raises:
        PromptTooShortError: naming the first prompt with fewer than ``window + 1`` content tokens
            (checked for all prompts before any forward pass).
        AttentionWeightsUnavailableError: entropy was requested from a model without eager attention.
    """
    entropy_layers = sorted(set(attention_entropy_layers))
    bad = [layer for layer in [*layers, *entropy_layers] if not 0 <= layer < lm.shape.n_layers]
    if bad:
        raise ValueError(f"{lm.name} has {lm.shape.n_layers} layers; cannot capture layers {bad}")
    specials = special_ids(lm.tokenizer)
    token_lists = [encode(lm.tokenizer, text) for _, text in prompts]
    positions = [
        content_window(ids, specials, window, prompt_id=pid) for (pid, _), ids in zip(prompts, token_lists)
    ]
    layers = sorted(set(layers))
    paths = {layer: lm.path(layer, "v_proj") for layer in layers}  # deepest last: the forward stops there
    columns = lm.v_columns
    collected: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    entropies: dict[int, list[torch.Tensor]] = {layer: [] for layer in entropy_layers}
    for start in range(0, len(prompts), batch_size):
        chunk = token_lists[start : start + batch_size]
        batch = left_pad(chunk, pad_id(lm.tokenizer)).to(lm.input_device)
        rows = [torch.as_tensor([offset + p for p in positions[start + row]]) for row, offset in enumerate(batch.offsets)]
        # stop after the deepest v_proj, unless an entropy layer's attention module finishes only after it
        stop = bool(layers) and (not entropy_layers or max(entropy_layers) < max(layers))
        with TraceDict(lm.model, paths.values(), stop=stop) as traces, _entropy_hooks(lm, entropy_layers, rows, entropies):
            lm.model.base_model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
            )
        for layer, path in paths.items():
            out = select_columns(traces[path].output, columns)
            for row, index in enumerate(rows):
                collected[layer].append(out[row].index_select(0, index.to(out.device)).to("cpu", torch.float32))
    return VWindows(
        tuple(pid for pid, _ in prompts),
        window,
        tuple(tuple(p) for p in positions),
        {layer: torch.stack(per_prompt) for layer, per_prompt in collected.items()},
        {layer: torch.stack(per_prompt) for layer, per_prompt in entropies.items()} if entropy_layers else None,
    )


def rv_per_prompt(
    windows: VWindows, early: int, late: int, kind: PRKind = "eigen", *, centered: bool = False
) -> list[float]:
    """R_V = PR(late)/PR(early) for each captured prompt, in ``windows.prompt_ids`` order."""
    return [
        r_v(windows.values[early][i], windows.values[late][i], kind, centered=centered)
        for i in range(len(windows.prompt_ids))
    ]


def per_head_pr_per_prompt(
    windows: VWindows, layer: int, n_kv_heads: int, head_dim: int, kind: PRKind = "eigen", *, centered: bool = False
) -> list[list[float]]:
    """Per-KV-head PR at ``layer`` for each captured prompt: ``[n_prompts][n_kv_heads]``."""
    return [
        per_head_pr(windows.values[layer][i], n_kv_heads, head_dim, kind, centered=centered)
        for i in range(len(windows.prompt_ids))
    ]
