"""The fixed text set of the cross-model projector: training texts and held-out texts, disjoint.

The data file ``harness/exchange/data/projector_texts.json`` holds ``train`` and ``heldout`` lists of
``{"id", "topic", "context", "continuation"}``: prose from the Python standard library's ``pydoc_data.topics`` (the
language reference), cut into windows of 24 words of context and 12 of continuation (the file's ``source`` field says
how). Whole topics go to one split, and no training text shares an 8-word run with a held-out text. The continuation
starts with a space (it continues the context's last word).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OVERLAP_WORDS", "TEXTS_PATH", "ProjectorText", "TextSet", "load_text_set", "word_runs"]

TEXTS_PATH = Path(__file__).parent / "data" / "projector_texts.json"
"""The registered text set (training and held-out texts)."""


OVERLAP_WORDS = 8
"""Held-out and training texts must not share a run of this many words (the reference repeats paragraphs)."""


@dataclass(frozen=True)
class ProjectorText:
    """One text: ``context`` (what the cache is built from) and ``continuation`` (what the receiver is scored on)."""

    id: str
    topic: str
    context: str
    continuation: str


def word_runs(text: ProjectorText, size: int = OVERLAP_WORDS) -> set[tuple[str, ...]]:
    """Every run of ``size`` consecutive words of the text (context then continuation)."""
    words = (text.context + text.continuation).split()
    return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}


@dataclass(frozen=True)
class TextSet:
    """Training and held-out texts and ``sha256``, the hash of the data file's bytes (part of every projector key)."""

    train: tuple[ProjectorText, ...]
    heldout: tuple[ProjectorText, ...]
    sha256: str
    source: str


def load_text_set(path: Path = TEXTS_PATH) -> TextSet:
    """The text set at ``path``; raises ValueError when a split is empty, an id repeats, a text is empty or a held-out
    text shares its topic or a run of :data:`OVERLAP_WORDS` words with a training text."""
    raw = path.read_bytes()
    data = json.loads(raw)
    splits = {name: tuple(ProjectorText(r["id"], r["topic"], r["context"], r["continuation"]) for r in data[name])
              for name in ("train", "heldout")}
    everything = splits["train"] + splits["heldout"]
    if not splits["train"] or not splits["heldout"]:
        raise ValueError(f"{path}: the train and heldout splits must both be non-empty")
    if len({t.id for t in everything}) != len(everything):
        raise ValueError(f"{path}: text ids repeat")
    if any(not t.context.strip() or not t.continuation.strip() for t in everything):
        raise ValueError(f"{path}: a text has an empty context or continuation")
    shared_topics = {t.topic for t in splits["train"]} & {t.topic for t in splits["heldout"]}
    if shared_topics:
        raise ValueError(f"{path}: held-out and training texts share topics {sorted(shared_topics)}")
    held_runs = set().union(*(word_runs(t) for t in splits["heldout"]))
    overlapping = [t.id for t in splits["train"] if word_runs(t) & held_runs]
    if overlapping:
        raise ValueError(f"{path}: training texts {overlapping[:5]} share a {OVERLAP_WORDS}-word run with a held-out text")
    return TextSet(train=splits["train"], heldout=splits["heldout"], sha256=hashlib.sha256(raw).hexdigest(),
                   source=str(data.get("source", "")))
