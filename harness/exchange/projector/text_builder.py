"""How the projector's text set (``harness/exchange/data/projector_texts.json``) was built, runnable again:
``python -m harness.exchange.projector.text_builder [OUT]``.

Source: the Python standard library's ``pydoc_data.topics`` (the language reference topics). Paragraphs with an
interactive prompt (``>>>``), a call (``name(``) or a line indented by 8 or more spaces (code) are dropped; the rest
are cut into windows of :data:`CONTEXT_WORDS` + :data:`CONTINUATION_WORDS` words whose every word is plain
(:data:`PLAIN_WORD`). Topics are shuffled with ``random.Random(SEED)``; whole topics go to the held-out split until
it holds :data:`HELDOUT` texts (its windows do not overlap), the rest to training (windows overlap, stride
:data:`TRAIN_STRIDE` words), at most :data:`TRAIN` of them, dropping any training window that shares a run of
:data:`~harness.exchange.projector.texts.OVERLAP_WORDS` words with a held-out text (the reference repeats
paragraphs across topics). The output depends on the Python version's ``pydoc_data``: the committed file records
the version it was built with (3.11.7).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from harness.exchange.projector.texts import OVERLAP_WORDS, TEXTS_PATH

__all__ = ["CONTEXT_WORDS", "CONTINUATION_WORDS", "HELDOUT", "SEED", "TRAIN", "TRAIN_STRIDE", "build_text_set"]

CONTEXT_WORDS, CONTINUATION_WORDS = 24, 12
"""Words of context and of continuation per text."""
TRAIN_STRIDE = 12
"""Words between the starts of consecutive training windows of a paragraph."""
HELDOUT, TRAIN = 56, 200
"""Held-out texts (≥ the claim's planned n, 49) and at most this many training texts."""
SEED = 20261205
"""Seed of the topic shuffle."""
PLAIN_WORD = re.compile(r"[A-Za-z0-9,.;:!?%/'\"()\-]+")
"""A word a window may contain."""


def _paragraphs(topics: dict[str, str]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for name, body in sorted(topics.items()):
        for para in re.split(r"\n\s*\n", body):
            if ">>>" in para or re.search(r"\w\(|^\s{8,}\S", para, re.M):
                continue
            out.setdefault(name, []).append(para.split())
    return out


def _windows(words: list[str], stride: int) -> list[dict[str, str]]:
    size = CONTEXT_WORDS + CONTINUATION_WORDS
    found = []
    for start in range(0, len(words) - size + 1, stride):
        chunk = words[start:start + size]
        if all(PLAIN_WORD.fullmatch(w) for w in chunk):
            found.append({"context": " ".join(chunk[:CONTEXT_WORDS]),
                          "continuation": " " + " ".join(chunk[CONTEXT_WORDS:])})
    return found


def _runs(row: dict[str, str]) -> set[tuple[str, ...]]:
    words = (row["context"] + row["continuation"]).split()
    return {tuple(words[i:i + OVERLAP_WORDS]) for i in range(len(words) - OVERLAP_WORDS + 1)}


def build_text_set(topics: dict[str, str]) -> dict[str, Any]:
    """The text set (the JSON object of the data file) from ``{topic: text}``."""
    paragraphs = _paragraphs(topics)
    names = sorted(paragraphs)
    random.Random(SEED).shuffle(names)
    held: list[dict[str, str]] = []
    train: list[dict[str, str]] = []
    for name in names:
        to_held = len(held) < HELDOUT
        stride = CONTEXT_WORDS + CONTINUATION_WORDS if to_held else TRAIN_STRIDE
        for words in paragraphs[name]:
            (held if to_held else train).extend({"topic": name, **w} for w in _windows(words, stride))
    held = held[:HELDOUT]
    held_runs = set().union(*(_runs(r) for r in held))
    train = [r for r in train if not _runs(r) & held_runs][:TRAIN]
    for split, rows in (("heldout", held), ("train", train)):
        for k, r in enumerate(rows):
            r["id"] = f"{split}-{k:03d}"
    source = (f"Python {sys.version.split()[0]} standard library pydoc_data.topics (language reference topics): "
              f"prose paragraphs cut into {CONTEXT_WORDS + CONTINUATION_WORDS}-word windows, {CONTEXT_WORDS} words of "
              f"context and {CONTINUATION_WORDS} of continuation; topic order shuffled with random.Random({SEED}), "
              f"whole topics go to one split (held-out first, until {HELDOUT} texts; its windows do not overlap); "
              f"training windows overlap (stride {TRAIN_STRIDE} words); a training window sharing any "
              f"{OVERLAP_WORDS}-word run with a held-out text is dropped (the reference repeats paragraphs across "
              "topics)")
    return {"source": source, "context_words": CONTEXT_WORDS, "continuation_words": CONTINUATION_WORDS,
            "train": train, "heldout": held}


if __name__ == "__main__":
    import pydoc_data.topics

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TEXTS_PATH
    target.write_text(json.dumps(build_text_set(pydoc_data.topics.topics), indent=1), encoding="utf-8")
