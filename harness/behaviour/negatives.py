"""Synthetic negatives for the behaviour classifier: texts that look like disruption, not like recursive content.

Each builder is deterministic given its ``numpy.random.Generator`` and its source text(s), which are natural
*recursive* continuations (the hardest case: the negatives carry recursive vocabulary without recursive
self-observation as language):

- :func:`word_salad`: words drawn at random from a pool of recursive continuations' words (no syntax);
- :func:`shuffled_words`: one recursive continuation's words in random order (same bag of words, no sentence);
- :func:`token_gibberish`: pseudo-words glued from random 2–4 character pieces of the source texts, with stray
  punctuation and digits (what a norm-matched random cache tends to produce);
- :func:`repetition_loop`: a 3–8 word phrase of a continuation repeated to 40+ words;
- :func:`fragment`: the first 1–6 words of a continuation.

All are labelled 0 in :mod:`harness.behaviour.corpus`; :func:`synthetic_items` builds them per model and split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.behaviour.text import words

__all__ = [
    "NEGATIVES_PER_SOURCE", "SYNTHETIC_KINDS", "fragment", "repetition_loop", "shuffled_words", "synthetic_items", "token_gibberish", "word_salad"]

_PUNCT = (".", ",", ";", ":", "!", "?", "-", "(", ")", "'", '"', "/", "*")


def word_salad(pool: Sequence[str], rng: np.random.Generator, n_words: int = 36) -> str:
    """``n_words`` words drawn with replacement from ``pool``, a period every 6–12 words."""
    if not pool:
        raise ValueError("word_salad needs a non-empty word pool")
    out, next_stop = [], int(rng.integers(6, 13))
    for i in range(n_words):
        w = pool[int(rng.integers(len(pool)))]
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if i + 1 == next_stop:
            out[-1] += "."
            next_stop += int(rng.integers(6, 13))
    return " ".join(out)


def shuffled_words(text: str, rng: np.random.Generator) -> str:
    """The words of ``text`` in a random order (lower-case, no punctuation)."""
    ws = words(text)
    return " ".join(ws[i] for i in rng.permutation(len(ws)))


def token_gibberish(sources: Sequence[str], rng: np.random.Generator, n_words: int = 30) -> str:
    """``n_words`` pseudo-words, each 1–3 random 2–4 character pieces of ``sources``, with stray punctuation/digits."""
    blob = "".join(s for s in sources if s)
    if len(blob) < 8:
        raise ValueError("token_gibberish needs source text of at least 8 characters")
    out = []
    for _ in range(n_words):
        pieces = []
        for _ in range(int(rng.integers(1, 4))):
            size = int(rng.integers(2, 5))
            start = int(rng.integers(0, len(blob) - size))
            pieces.append(blob[start : start + size].strip())
        word = "".join(pieces) or "x"
        roll = rng.random()
        if roll < 0.15:
            word += _PUNCT[int(rng.integers(len(_PUNCT)))]
        elif roll < 0.22:
            word = str(int(rng.integers(0, 10_000)))
        out.append(word)
    return " ".join(out)


def repetition_loop(text: str, rng: np.random.Generator, min_words: int = 40) -> str:
    """A phrase of 3–8 consecutive words of ``text`` repeated until the loop has ``min_words`` words or more."""
    ws = words(text)
    if len(ws) < 3:
        raise ValueError("repetition_loop needs a text of at least 3 words")
    size = int(rng.integers(3, min(8, len(ws)) + 1))
    start = int(rng.integers(0, len(ws) - size + 1))
    phrase = " ".join(ws[start : start + size])
    return " ".join([phrase] * -(-min_words // size))


def fragment(text: str, rng: np.random.Generator) -> str:
    """The first 1–6 words of ``text``, as written (punctuation kept)."""
    raw = text.split()
    return " ".join(raw[: int(rng.integers(1, 7))])


SYNTHETIC_KINDS: tuple[str, ...] = ("word_salad", "shuffled_recursive", "token_gibberish", "repetition_loop", "fragment")
"""The synthetic negative sources, in the order :func:`synthetic_items` builds them."""


NEGATIVES_PER_SOURCE = 3
"""Negatives of each kind per source continuation. Chosen on the train split only (5-fold grouped cross-validation of
SmolLM2's train items): with one of each, 7–10 % of word salad and shuffled recursive texts were called recursive;
with three, about 3 %."""


def synthetic_items(recursive_texts: Sequence[tuple[str, str]], seed: int,
                    per_source: int = NEGATIVES_PER_SOURCE) -> list[tuple[str, str, str]]:
    """``per_source`` negatives of each :data:`SYNTHETIC_KINDS` per source continuation: ``(kind, unit, text)`` where
    ``unit`` is the source's unit id (so the negative inherits its split). ``recursive_texts`` is ``[(unit, text)]``
    of one model and one split; word salad and gibberish draw on the words / characters of all of them. Sources
    with fewer than 3 words are skipped."""
    usable = [(u, t) for u, t in recursive_texts if len(words(t)) >= 3]
    pool = [w for _, t in usable for w in words(t)]
    texts = [t for _, t in usable]
    rng = np.random.default_rng(seed)
    out = []
    for unit, text in usable:
        for _ in range(per_source):
            out.append(("word_salad", unit, word_salad(pool, rng)))
            out.append(("shuffled_recursive", unit, shuffled_words(text, rng)))
            out.append(("token_gibberish", unit, token_gibberish(texts, rng)))
            out.append(("repetition_loop", unit, repetition_loop(text, rng)))
            out.append(("fragment", unit, fragment(text, rng)))
    return out
