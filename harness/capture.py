"""Batched prefill capture of value-projection windows (DESIGN §4.1).

V is the output of each layer's value projection (``self_attn.v_proj``; the V block of a fused
``qkv_proj``), shape ``[tokens, n_kv_heads * head_dim]``, captured by a forward hook during one clean
prefill pass with no intervention. The window is the last W content tokens (special tokens excluded);
prompts with fewer than W + 1 content tokens are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from harness.hooks import TraceDict
from harness.metrics import DEFAULT_WINDOW, PRKind, content_window, per_head_pr, r_v
from harness.models import LoadedModel
from harness.tokens import encode, left_pad, pad_id, special_ids


@dataclass(frozen=True)
class VWindows:
    """Captured V windows: ``values[layer]`` is float32 ``[n_prompts, W, n_kv_heads*head_dim]`` on CPU.

    ``positions[i]`` are the absolute token positions (in prompt i's own, unpadded tokens) of its window.
    """

    prompt_ids: tuple[str, ...]
    window: int
    positions: tuple[tuple[int, ...], ...]
    values: dict[int, torch.Tensor]


@torch.no_grad()
def capture_v_windows(
    lm: LoadedModel,
    prompts: Sequence[tuple[str, str]],
    layers: Sequence[int],
    *,
    window: int = DEFAULT_WINDOW,
    batch_size: int = 8,
) -> VWindows:
    """Prefill ``(prompt_id, text)`` pairs in left-padded batches and keep the V window at each layer.

    Raises:
        PromptTooShortError: naming the first prompt with fewer than ``window + 1`` content tokens
            (checked for all prompts before any forward pass).
    """
    bad = [layer for layer in layers if not 0 <= layer < lm.geometry.n_layers]
    if bad:
        raise ValueError(f"{lm.name} has {lm.geometry.n_layers} layers; cannot capture layers {bad}")
    specials = special_ids(lm.tokenizer)
    token_lists = [encode(lm.tokenizer, text) for _, text in prompts]
    positions = [
        content_window(ids, specials, window, prompt_id=pid) for (pid, _), ids in zip(prompts, token_lists)
    ]
    paths = {layer: lm.path(layer, "v_proj") for layer in layers}
    columns = lm.v_columns
    collected: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(prompts), batch_size):
        chunk = token_lists[start : start + batch_size]
        batch = left_pad(chunk, pad_id(lm.tokenizer)).to(lm.input_device)
        with TraceDict(lm.model, paths.values()) as traces:
            lm.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
            )
        for layer, path in paths.items():
            out = traces[path].output[..., columns]
            for row, offset in enumerate(batch.offsets):
                index = torch.as_tensor([offset + p for p in positions[start + row]], device=out.device)
                collected[layer].append(out[row].index_select(0, index).to("cpu", torch.float32))
    return VWindows(
        tuple(pid for pid, _ in prompts),
        window,
        tuple(tuple(p) for p in positions),
        {layer: torch.stack(rows) for layer, rows in collected.items()},
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
