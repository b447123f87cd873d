"""Behaviour scorers on generated text only (DESIGN §4.7).

Every function here takes *continuations* (decoded generated tokens, see
:func:`~harness.behaviour.text.decode_continuation`), never prompts. Per continuation,
:func:`score_continuations` returns a :class:`BehaviourScore` with:

- ``classifier_p``: P(recursive | text) from the frozen classifier (:mod:`harness.behaviour.classifier`, issue 10),
  in [0, 1]; ``classifier_gated``: the same, or 0 for a degenerate or empty output — **the registered score**
  (:data:`BEHAVIOUR_SCORE`); ``recursive``: the registered decision, ``classifier_gated`` ≥ the threshold 0.5;
- ``lexicon_raw``: recursive-lexicon matches per 100 words (:mod:`harness.behaviour.lexicon`);
- ``embedding_raw``: max(0, cosine-to-recursive-centroid − cosine-to-baseline-centroid) with the offline
  MiniLM (:mod:`harness.behaviour.embedding`);
- the degeneration measures and gate (:mod:`harness.behaviour.degeneration`);
- ``lexicon_gated`` / ``embedding_gated``: the raw scores, or 0 when the output is degenerate, so a loop of
  recursive words never counts as recursive behaviour.

The lexicon and embedding scores stay in every record beside the registered score; they no longer decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.behaviour.classifier import THRESHOLD, recursive_probabilities
from harness.behaviour.degeneration import (
    DISTINCT2_MIN,
    REPEAT_SHARE_MAX,
    Degeneration,
    degeneration,
    distinct_n,
    gated,
    repeat_share,
)
from harness.behaviour.embedding import EmbeddingScore, EmbeddingUnavailableError, embedding_scores
from harness.behaviour.lexicon import LEXICON, LexiconPattern, lexicon_matches, lexicon_rate
from harness.behaviour.text import decode_continuation, normalise, words
from harness.foundation.behavioural_regime import BEHAVIOUR_SCORE

__all__ = [
    "BEHAVIOUR_SCORE",
    "DISTINCT2_MIN",
    "LEXICON",
    "REPEAT_SHARE_MAX",
    "THRESHOLD",
    "BehaviourScore",
    "Degeneration",
    "EmbeddingScore",
    "EmbeddingUnavailableError",
    "LexiconPattern",
    "decode_continuation",
    "degeneration",
    "distinct_n",
    "embedding_scores",
    "lexicon_matches",
    "lexicon_rate",
    "normalise",
    "repeat_share",
    "score_continuations",
    "words",
]

@dataclass(frozen=True)
class BehaviourScore:
    """All behaviour measures of one generated continuation (see the package docstring for units)."""

    classifier_p: float
    classifier_gated: float
    recursive: bool
    lexicon_raw: float
    lexicon_gated: float
    embedding_raw: float
    embedding_gated: float
    embedding_margin: float
    distinct_2: float
    repeat_share: float
    degenerate: bool
    n_words: int


def score_continuations(continuations: Sequence[str], embedding: bool = True) -> list[BehaviourScore]:
    """Score generated continuations (never prompts). ``embedding=False`` skips the MiniLM and the classifier
    (their scores are 0)."""
    if isinstance(continuations, str):
        raise TypeError("score_continuations takes a sequence of continuations, not a single string")
    n = len(continuations)
    embedded = embedding_scores(continuations) if embedding else [EmbeddingScore(0.0, 0.0, 0.0, 0.0)] * n
    probabilities = recursive_probabilities(continuations) if embedding and n else [0.0] * n
    out = []
    for text, emb, p in zip(continuations, embedded, probabilities):
        deg = degeneration(text)
        lex = lexicon_rate(text)
        gated_p = gated(p, deg)
        out.append(
            BehaviourScore(
                classifier_p=float(p),
                classifier_gated=gated_p,
                recursive=gated_p >= THRESHOLD,
                lexicon_raw=lex,
                lexicon_gated=0.0 if deg.degenerate else lex,
                embedding_raw=emb.score,
                embedding_gated=0.0 if deg.degenerate else emb.score,
                embedding_margin=emb.margin,
                distinct_2=deg.distinct_2,
                repeat_share=deg.repeat_share,
                degenerate=deg.degenerate,
                n_words=deg.n_words,
            )
        )
    return out
