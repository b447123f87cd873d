"""The labelled corpus the behaviour classifier is trained and validated on (issue 10).

Every item is a text with a label (1 = recursive self-observation content, 0 = not), a ``source`` naming how it
was made, the ``model`` that generated it (``synthetic`` for texts made without a model) and a ``split``
(``train`` / ``heldout``) fixed before any text existed by :func:`split_of` on the item's *unit* id:

- generated items (:func:`harness.transfer.scorer_corpus.generate_model_items`), decoded by the engine under the registered behavioural regime
  (:data:`harness.foundation.behavioural_regime.BEHAVIOUR_DECODING`) on the bank's exact-length pairs and extra prompts:
  ``natural_recursive`` (label 1), ``natural_baseline``, ``cross_baseline_patch`` (another baseline's K/V in the
  baseline recipient), ``random_kv_patch`` (norm-matched Gaussian K/V) and ``offtopic_natural`` (natural
  continuations of the grounding and long-control prompts: fluent text on other topics). The unit is the recipient
  prompt, so a held-out prompt's continuations, patched or not, never meet training;
- synthetic negatives (:mod:`harness.behaviour.negatives`) built from the natural continuations of the *same split*
  (word salad of recursive words, shuffled recursive continuations, token gibberish, repetition loops, fragments),
  so held-out synthetic items share no source text with training ones.

The corpus of both embedded models is stored gzipped in ``harness/behaviour/data/classifier_corpus.jsonl.gz``
beside the frozen classifier, so the training is auditable and reproducible without generating anything.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "CORPUS_PATH",
    "DISRUPTION_SOURCES",
    "SPLIT_SALT",
    "CorpusItem",
    "corpus_sha256",
    "read_corpus",
    "split_of",
    "write_corpus",
]

CORPUS_PATH = Path(__file__).parent / "data" / "classifier_corpus.jsonl.gz"
"""The committed training + validation corpus (both embedded models and the synthetic negatives)."""

SPLIT_SALT = "scorer-validation-v1:"
"""Salt of the hash split; the same as the earlier scorer validation's, so a prompt keeps its split."""

DISRUPTION_SOURCES: tuple[str, ...] = (
    "cross_baseline_patch", "random_kv_patch", "word_salad", "shuffled_recursive", "token_gibberish",
    "repetition_loop", "fragment",
)
"""Negatives that a disrupted or degenerate patched run could produce: the false-positive rate at the registered
threshold is reported on the held-out ones (natural baseline and off-topic texts are the ordinary negatives)."""


def split_of(unit_id: str) -> str:
    """``"train"`` or ``"heldout"`` from the parity of the first byte of sha256(salt + unit id): fixed in code before
    any output existed, independent of the text."""
    digest = hashlib.sha256((SPLIT_SALT + unit_id).encode("utf-8")).digest()
    return "train" if digest[0] % 2 == 0 else "heldout"


@dataclass(frozen=True)
class CorpusItem:
    """One labelled text. ``unit`` is the id that decides the split (a recipient prompt id, or a synthetic item's)."""

    id: str
    text: str
    label: int
    source: str
    model: str
    unit: str
    split: str

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"corpus item {self.id!r}: label must be 0 or 1, got {self.label!r}")
        if self.split not in ("train", "heldout"):
            raise ValueError(f"corpus item {self.id!r}: split must be train or heldout, got {self.split!r}")


def write_corpus(items: Iterable[CorpusItem], path: Path = CORPUS_PATH) -> str:
    """Write ``items`` as gzipped JSON lines (sorted by id, fixed gzip mtime, so equal corpora give equal bytes);
    returns the sha256 of the uncompressed content."""
    rows = sorted(items, key=lambda i: i.id)
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("corpus item ids must be unique")
    payload = "".join(json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(payload)
    return hashlib.sha256(payload).hexdigest()


def read_corpus(path: Path = CORPUS_PATH) -> list[CorpusItem]:
    """The items of a corpus file written by :func:`write_corpus`."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [CorpusItem(**json.loads(line)) for line in f if line.strip()]


def corpus_sha256(path: Path = CORPUS_PATH) -> str:
    """sha256 of the uncompressed corpus content (what the classifier artefact records)."""
    with gzip.open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
