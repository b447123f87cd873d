"""The feature vector the behaviour classifier reads from one continuation (feature set 2, fixed 2026-12-07
before any content-labelled text existed).

``[t_1 … t_384, s_1 … s_384, lexicon_rate, log_lexicon_spans, distinct_2, repeat_share, log_words, pieces_per_word]``:

- ``t``: the unit MiniLM embedding of the whole text (:func:`harness.behaviour.embedding.embed_texts`; the zero
  vector for a blank text);
- ``s``: the element-wise maximum of the unit MiniLM embeddings of the text's sentences (:func:`sentences`), so one
  self-observing clause inside an otherwise ordinary text stays visible however long the text is (the rubric,
  docs/METHODS.md §6.1, calls such a text recursive); equal to ``t`` for a one-sentence text;
- ``lexicon_rate``: self-observation phrases per 100 words (:func:`harness.behaviour.lexicon.lexicon_rate`);
  ``log_lexicon_spans``: ln(1 + number of matched phrases);
- ``distinct_2``, ``repeat_share``: the degeneration measures (:mod:`harness.behaviour.degeneration`), in [0, 1];
- ``log_words``: ln(1 + number of words), so length is visible to the classifier and fragments can be told apart;
- ``pieces_per_word``: MiniLM WordPiece tokens per word (≈ 1.2 for English prose, higher for gibberish); 0 when
  the text has no word.

The classifier standardises each column with its training data's mean and SD (stored in the artefact).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from harness.behaviour.degeneration import distinct_n, repeat_share
from harness.behaviour.embedding import embed_texts, load_embedding_model
from harness.behaviour.lexicon import lexicon_matches, lexicon_rate
from harness.behaviour.text import words

__all__ = ["FEATURE_NAMES", "FEATURE_SET", "feature_matrix", "sentences", "text_features"]

FEATURE_SET = 2
"""Version of the feature definition (1: whole-text embedding and degeneration measures, issue 10)."""

EMBEDDING_DIM = 384
"""Width of a MiniLM embedding."""

TEXT_FEATURES: tuple[str, ...] = (
    "lexicon_rate", "log_lexicon_spans", "distinct_2", "repeat_share", "log_words", "pieces_per_word",
)
"""The non-embedding columns, after the two embedding blocks."""

FEATURE_NAMES: tuple[str, ...] = (
    *(f"t{i}" for i in range(EMBEDDING_DIM)), *(f"s{i}" for i in range(EMBEDDING_DIM)), *TEXT_FEATURES,
)
"""Column names of :func:`feature_matrix`."""

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentences(text: str) -> list[str]:
    """The non-blank sentences of ``text``: split after ``.``, ``!``, ``?`` or ``…`` followed by whitespace, and at
    line breaks; the whole (stripped) text when it has no such break; ``[]`` for a blank text."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _pieces_per_word(text: str, n_words: int) -> float:
    if n_words == 0:
        return 0.0
    tokenizer = load_embedding_model().tokenizer
    return len(tokenizer.tokenize(text)) / n_words


def text_features(text: str) -> tuple[float, ...]:
    """The :data:`TEXT_FEATURES` of one text."""
    n = len(words(text))
    return (lexicon_rate(text), math.log1p(len(lexicon_matches(text))), distinct_n(text, 2), repeat_share(text),
            math.log1p(n), _pieces_per_word(text, n))


def _sentence_max(texts: Sequence[str]) -> np.ndarray:
    """Element-wise max of the sentence embeddings of each text (zeros for a blank text)."""
    split = [sentences(t) for t in texts]
    flat = [s for parts in split for s in parts]
    vectors = dict(zip(flat, embed_texts(flat))) if flat else {}
    out = np.zeros((len(texts), EMBEDDING_DIM))
    for row, parts in enumerate(split):
        if parts:
            out[row] = np.max([vectors[s] for s in parts], axis=0)
    return out


def feature_matrix(texts: Sequence[str]) -> np.ndarray:
    """float64 ``[len(texts), 774]`` in :data:`FEATURE_NAMES` order."""
    if isinstance(texts, str):
        raise TypeError("feature_matrix takes a sequence of texts, not a single string")
    whole = embed_texts(texts).reshape(len(texts), EMBEDDING_DIM)
    extra = np.asarray([text_features(t) for t in texts], dtype=np.float64).reshape(len(texts), len(TEXT_FEATURES))
    return np.hstack([whole, _sentence_max(texts), extra])
