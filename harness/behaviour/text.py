"""Text normalisation shared by the behaviour scorers, and decoding of generated tokens only.

Every scorer in this package reads a *continuation*: the text decoded from the generated token ids,
never the prompt. :func:`decode_continuation` is the one place where a full output sequence is cut at
the prompt boundary.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Sequence

__all__ = ["decode_continuation", "normalise", "words"]

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": " - "})
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def normalise(text: str) -> str:
    """Unicode NFKC, lower case, straight quotes and hyphens, runs of whitespace collapsed to one space."""
    folded = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return " ".join(folded.split())


def words(text: str) -> list[str]:
    """The words of ``text`` after :func:`normalise`: runs of letters/digits, with inner ``'`` or ``-`` kept
    (``self-aware`` and ``don't`` are one word each). Punctuation is dropped."""
    return _WORD.findall(normalise(text))


def decode_continuation(tokenizer: Any, token_ids: Sequence[int], prompt_length: int) -> str:
    """Decode only the generated part of an output sequence (ids after the first ``prompt_length``).

    ``token_ids`` is the full sequence a ``generate`` call returns (prompt ids followed by new ids), for
    one sequence. Special tokens are skipped. Raises ``ValueError`` if ``prompt_length`` is out of range.
    """
    ids = list(token_ids)
    if not 0 <= prompt_length <= len(ids):
        raise ValueError(f"prompt_length {prompt_length} outside the output sequence of {len(ids)} tokens")
    return tokenizer.decode(ids[prompt_length:], skip_special_tokens=True)
