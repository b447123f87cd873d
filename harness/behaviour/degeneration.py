"""Degeneration measures on generated text and the gate that marks an output as degenerate.

Small models under greedy decoding often fall into loops ("the process of the process of ...").
A loop of recursive-sounding words must not count as recursive behaviour, so every behaviour score
comes in a raw and a *gated* form: the gated form is 0 for outputs this module marks degenerate.

Measures (on the words of :func:`harness.behaviour.text.words`):

- ``distinct_n``: number of distinct word n-grams / number of word n-grams, in (0, 1]. 1 = no n-gram
  repeats. A text with fewer than n words has no n-gram and gets 1.0.
- ``repeat_share``: length (in words) of the longest word sequence that occurs at least twice in the
  text (occurrences may overlap), divided by the number of words; in [0, 1). 0 = no word repeats.
  A period-p loop repeated k times has share 1 - 1/k.

Gate (fixed before any scorer-validation data were generated): an output is **degenerate** when
``distinct_n(2) < 0.5`` or ``repeat_share > 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.behaviour.text import words

__all__ = ["DISTINCT2_MIN", "REPEAT_SHARE_MAX", "Degeneration", "degeneration", "distinct_n", "gated", "repeat_share"]

DISTINCT2_MIN: float = 0.5
"""Outputs with distinct-2 below this are degenerate."""

REPEAT_SHARE_MAX: float = 0.5
"""Outputs whose longest repeated word sequence covers more than this share of the words are degenerate."""


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams of ``text`` (1.0 when there are fewer than ``n`` words)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = _ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else 1.0


def _has_repeat(tokens: list[str], length: int) -> bool:
    seen: set[tuple[str, ...]] = set()
    for gram in _ngrams(tokens, length):
        if gram in seen:
            return True
        seen.add(gram)
    return False


def longest_repeat(text: str) -> int:
    """Length in words of the longest word sequence occurring at least twice in ``text`` (0 if none)."""
    tokens = words(text)
    low, high = 0, max(len(tokens) - 1, 0)  # a repeat of length L needs at least L + 1 words
    while low < high:  # if a length-L repeat exists, so does every shorter one: binary search
        mid = (low + high + 1) // 2
        if _has_repeat(tokens, mid):
            low = mid
        else:
            high = mid - 1
    return low


def repeat_share(text: str) -> float:
    """:func:`longest_repeat` divided by the number of words (0.0 for an empty text)."""
    n_words = len(words(text))
    return longest_repeat(text) / n_words if n_words else 0.0


@dataclass(frozen=True)
class Degeneration:
    """Degeneration measures of one output and the gate's verdict."""

    n_words: int
    distinct_2: float
    repeat_share: float
    degenerate: bool


def degeneration(text: str) -> Degeneration:
    """All measures and the gate for one generated text (see the module docstring for the gate)."""
    d2, share = distinct_n(text, 2), repeat_share(text)
    return Degeneration(
        n_words=len(words(text)),
        distinct_2=d2,
        repeat_share=share,
        degenerate=d2 < DISTINCT2_MIN or share > REPEAT_SHARE_MAX,
    )


def gated(probability: float, deg: Degeneration) -> float:
    """The registered gate: ``probability`` for a text with words that is not degenerate, else 0."""
    return 0.0 if deg.degenerate or deg.n_words == 0 else float(probability)
