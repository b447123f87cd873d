"""Token alignment between two tokenizers of the same text, by character spans.

A tokenization is a list of ``(start, end)`` character spans into the text (end exclusive), as a fast tokenizer's
``offset_mapping`` gives them. Special tokens the tokenizer adds (BOS and the like) have empty spans ``(0, 0)``;
they carry no text and are never aligned: :func:`tokenize_with_spans` reports them as a leading *special prefix*.

Rule (:func:`align_by_last_character`): each receiver token is paired with the sharer token whose span covers the
receiver token's last character (``end − 1``). A receiver token that ends inside a sharer token thus sees the sharer
token that has read at least as far; a sharer token that covers several receiver tokens is shared by them. When no
sharer span covers that character (a tokenizer that drops characters, e.g. a space it folds into the next token),
the nearest sharer token that ends at or before it is taken; when there is none, the first sharer token.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AlignmentError", "TokenizedText", "align_by_last_character", "tokenize_with_spans"]

Span = tuple[int, int]


class AlignmentError(ValueError):
    """Spans that cannot be aligned: empty, unordered, overlapping, or a special token inside the text."""


@dataclass(frozen=True)
class TokenizedText:
    """A text under one tokenizer: ``ids`` (every token, special prefix first), ``spans`` of the content tokens
    (character offsets, end exclusive) and ``n_special`` (leading special tokens: ids[:n_special] have no span)."""

    ids: tuple[int, ...]
    spans: tuple[Span, ...]
    n_special: int

    @property
    def content_ids(self) -> tuple[int, ...]:
        """The ids of the content tokens (those with a span)."""
        return self.ids[self.n_special:]


def tokenize_with_spans(tokenizer: Any, text: str) -> TokenizedText:
    """``text`` under ``tokenizer`` (a fast tokenizer: one that returns ``offset_mapping``), special tokens included
    as the tokenizer adds them. Raises AlignmentError for a special (empty-span) token after the first content token
    and ValueError for a tokenizer that gives no offsets."""
    if not text:
        raise ValueError("tokenize_with_spans: empty text")
    try:
        enc = tokenizer(text, return_offsets_mapping=True)
    except NotImplementedError as exc:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} gives no character offsets (needs a fast tokenizer)") from exc
    ids = tuple(int(i) for i in enc["input_ids"])
    offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    n_special = next((i for i, (a, b) in enumerate(offsets) if b > a), len(offsets))
    content = offsets[n_special:]
    if any(b <= a for a, b in content):
        raise AlignmentError(f"a special token follows content tokens in {text[:40]!r}; only a leading prefix is supported")
    return TokenizedText(ids=ids, spans=tuple(content), n_special=n_special)


def _check(spans: Sequence[Span], name: str) -> None:
    if not spans:
        raise AlignmentError(f"{name} has no content tokens")
    previous_end = 0
    for i, (start, end) in enumerate(spans):
        if end <= start or start < previous_end:
            raise AlignmentError(f"{name} span {i} {(start, end)} is empty or overlaps the one before")
        previous_end = end


def align_by_last_character(receiver: Sequence[Span], sharer: Sequence[Span]) -> tuple[int, ...]:
    """For each receiver span, the index of the sharer span covering its last character (see the module docstring
    for the fallback when none covers it). Both span lists must be non-empty, ordered and non-overlapping."""
    _check(receiver, "receiver tokenization")
    _check(sharer, "sharer tokenization")
    starts = [s for s, _ in sharer]
    chosen = []
    for _, end in receiver:
        last = end - 1
        i = bisect.bisect_right(starts, last) - 1
        chosen.append(max(i, 0))
    return tuple(chosen)
