"""The feature vector the behaviour classifier reads from one continuation (issue 10).

``[e_1 … e_384, distinct_2, repeat_share, log_words, pieces_per_word]``:

- ``e``: the unit MiniLM embedding (:func:`harness.behaviour.embedding.embed_texts`; the zero vector for a blank text);
- ``distinct_2``, ``repeat_share``: the degeneration measures (:mod:`harness.behaviour.degeneration`), in [0, 1];
- ``log_words``: ln(1 + number of words), so length is visible to the classifier and fragments can be told apart;
- ``pieces_per_word``: MiniLM WordPiece tokens per word (≈ 1.2 for English prose, higher for gibberish); 0 when
  the text has no word.

The classifier standardises each column with the training split's mean and SD (stored in the artefact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.behaviour.degeneration import distinct_n, repeat_share
from harness.behaviour.embedding import embed_texts, load_embedding_model
from harness.behaviour.text import words

__all__ = ["FEATURE_NAMES", "feature_matrix", "text_features"]

TEXT_FEATURES: tuple[str, ...] = ("distinct_2", "repeat_share", "log_words", "pieces_per_word")
"""The non-embedding columns, after the 384 embedding columns."""

FEATURE_NAMES: tuple[str, ...] = (*(f"e{i}" for i in range(384)), *TEXT_FEATURES)
"""Column names of :func:`feature_matrix`."""


def _pieces_per_word(text: str, n_words: int) -> float:
    if n_words == 0:
        return 0.0
    tokenizer = load_embedding_model().tokenizer
    return len(tokenizer.tokenize(text)) / n_words


def text_features(text: str) -> tuple[float, ...]:
    """The :data:`TEXT_FEATURES` of one text."""
    n = len(words(text))
    return (distinct_n(text, 2), repeat_share(text), math.log1p(n), _pieces_per_word(text, n))


def feature_matrix(texts: Sequence[str]) -> np.ndarray:
    """float64 ``[len(texts), 388]`` in :data:`FEATURE_NAMES` order."""
    if isinstance(texts, str):
        raise TypeError("feature_matrix takes a sequence of texts, not a single string")
    emb = embed_texts(texts)
    extra = np.asarray([text_features(t) for t in texts], dtype=np.float64).reshape(len(texts), len(TEXT_FEATURES))
    return np.hstack([emb, extra])
