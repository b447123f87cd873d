"""Value-space metrics: participation ratio, R_V, per-KV-head PR, and the content-token window (DESIGN §4.1-4.2).

Conventions:
- A window matrix ``x`` has shape ``[T, D]``: T token positions (rows) by D features (columns), e.g. the
  last W = 16 content tokens of a prompt by the ``n_kv_heads * head_dim`` outputs of ``v_proj``.
- PR is computed from the singular values ``s`` of ``x`` (of the column-centred ``x`` when ``centered``) in
  float64. ``eigen`` (default, the standard definition): PR = (Σ s²)² / Σ s⁴, i.e. (Σλ)²/Σλ² over the
  eigenvalues λ = s² of xᵀx. ``singular`` (the seed's DEC8 scripts): PR = (Σ s)² / Σ s².
  Both are dimensionless "effective number of dimensions", 1 ≤ PR ≤ rank(x) ≤ min(T, D).
- R_V = PR(V at the late layer) / PR(V at the early layer) over the same token window; < 1 means the
  late-layer value space is more contracted than the early one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
import torch

PRKind = Literal["eigen", "singular"]
DEFAULT_WINDOW = 16
"""Default V window W, in content tokens."""


class PromptTooShortError(ValueError):
    """A prompt has fewer than W + 1 content tokens; it is rejected, never padded."""


class DegenerateWindowError(ValueError):
    """The window matrix is all zeros (PR undefined) or holds NaN/inf."""


def _as_float64(x: torch.Tensor | np.ndarray) -> np.ndarray:
    array = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D window matrix [T, D], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DegenerateWindowError("window matrix contains NaN or inf")
    return array


def singular_values(x: torch.Tensor | np.ndarray, *, centered: bool = False) -> np.ndarray:
    """Singular values (float64, descending) of ``x`` or of its column-centred version."""
    array = _as_float64(x)
    if centered:
        array = array - array.mean(axis=0, keepdims=True)
    return np.linalg.svd(array, compute_uv=False)


def pr_from_singular_values(s: np.ndarray, kind: PRKind = "eigen") -> float:
    """Participation ratio from singular values (see module docstring for the two kinds)."""
    s = np.asarray(s, np.float64)
    if kind == "eigen":
        lam = s**2
        num, den = lam.sum() ** 2, (lam**2).sum()
    elif kind == "singular":
        num, den = s.sum() ** 2, (s**2).sum()
    else:
        raise ValueError(f"unknown PR kind {kind!r}; expected 'eigen' or 'singular'")
    if not den > 0:
        raise DegenerateWindowError("participation ratio is undefined for an all-zero window")
    return float(num / den)


def participation_ratio(
    x: torch.Tensor | np.ndarray, kind: PRKind = "eigen", *, centered: bool = False
) -> float:
    """Participation ratio of a ``[T, D]`` window matrix: effective dimensionality, 1 ≤ PR ≤ min(T, D).

    Raises:
        DegenerateWindowError: all-zero matrix (after centring, if requested) or non-finite entries.
    """
    return pr_from_singular_values(singular_values(x, centered=centered), kind)


def r_v(
    v_early: torch.Tensor | np.ndarray,
    v_late: torch.Tensor | np.ndarray,
    kind: PRKind = "eigen",
    *,
    centered: bool = False,
) -> float:
    """R_V = PR(v_late) / PR(v_early), both ``[T, D]`` over the same token window (dimensionless)."""
    if tuple(v_early.shape) != tuple(v_late.shape):
        raise ValueError(f"early and late windows differ in shape: {tuple(v_early.shape)} vs {tuple(v_late.shape)}")
    pr_late = participation_ratio(v_late, kind, centered=centered)
    return rv_from_pr(participation_ratio(v_early, kind, centered=centered), pr_late)


def rv_from_pr(pr_early: float, pr_late: float) -> float:
    """R_V = ``pr_late / pr_early`` from two participation ratios of the same token window (dimensionless).

    The one place the ratio is formed: :func:`r_v` and every table of stored PRs go through it.
    """
    return pr_late / pr_early


def per_head_pr(
    x: torch.Tensor | np.ndarray,
    n_kv_heads: int,
    head_dim: int,
    kind: PRKind = "eigen",
    *,
    centered: bool = False,
) -> list[float]:
    """PR of each KV head's ``[T, head_dim]`` block of a ``[T, n_kv_heads * head_dim]`` V window.

    Columns ``h*head_dim:(h+1)*head_dim`` belong to KV head h (the layout of ``v_proj`` and of the cache).
    """
    array = _as_float64(x)
    if array.shape[1] != n_kv_heads * head_dim:
        raise ValueError(
            f"window has {array.shape[1]} features, expected n_kv_heads*head_dim = {n_kv_heads}*{head_dim}"
        )
    return [
        participation_ratio(array[:, h * head_dim : (h + 1) * head_dim], kind, centered=centered)
        for h in range(n_kv_heads)
    ]


def content_window(
    token_ids: Sequence[int],
    special_ids: Collection[int],
    window: int = DEFAULT_WINDOW,
    *,
    prompt_id: str = "<unnamed>",
) -> list[int]:
    """Positions of the last ``window`` content tokens (special tokens such as BOS excluded).

    Raises:
        PromptTooShortError: fewer than ``window + 1`` content tokens; the message names ``prompt_id``.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    content = [i for i, tok in enumerate(token_ids) if tok not in special_ids]
    if len(content) < window + 1:
        raise PromptTooShortError(
            f"prompt {prompt_id!r} has {len(content)} content tokens; the V window W={window} needs at least "
            f"{window + 1}. Lengthen the prompt or lower the window."
        )
    return content[-window:]
