"""The content-labelled corpus the behaviour classifier is trained and validated on (issue 22).

Every item is a text with the label a reading against the rubric gave it (docs/METHODS.md §6.1: ``recursive``,
``not_recursive`` or ``borderline``; :mod:`harness.behaviour.annotation`), never a label derived from the prompt
or condition that produced it. Its ``source`` is the fold of the leave-one-source-out validation:

- ``smollm2-135m`` / ``gemma3-270m``: continuations of that embedded model (:data:`MODEL_TEXTS_PATH`), decoded under
  the registered behavioural regime from the corpus prompts in ``prompts/scorer-corpus/`` (disjoint from the
  claims' bank, checked by a test), natural and patched (``kind`` is the condition name); ``unit`` is the recipient
  prompt, so the continuations of one prompt stay together in every split;
- ``handwritten_a`` … ``handwritten_d``: texts written for the corpus by four writers who never saw each other's
  texts, each in six styles of their own, each recursive text with a topic-matched non-recursive twin
  (:data:`HANDWRITTEN_PATHS`; ``kind`` is the style, ``unit`` the twin pair). Several writers, because the embedded
  models' continuations contain no recursive text (both passes agree): a fold holding out every hand-written text
  would leave the fit without a single positive, so each writer is a fold of their own;
- synthetic disruption (:mod:`harness.behaviour.negatives`: word salad, shuffled words, gibberish, loops,
  fragments), built from the recursive-labelled texts of one source and belonging to that source's fold
  (``kind`` is the synthetic kind), so a held-out source's words never reach training through them.

Each read text carries both passes' labels (``labels``) beside the adjudicated ``label``; synthetic items are
``not_recursive`` by construction and carry none. Borderline items stay in the file and are left out of every fit
and registered validation number (rubric §6.1).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.behaviour.annotation import BORDERLINE, LABELS, NOT_RECURSIVE, RECURSIVE, Annotation, opaque_id, read_pass
from harness.behaviour.negatives import SYNTHETIC_KINDS, synthetic_items

__all__ = [
    "ANNOTATION_DIR", "CORPUS_PATH", "DISRUPTION_KINDS", "HANDWRITTEN_PATHS", "HANDWRITTEN_SOURCES",
    "MODEL_TEXTS_PATH", "SOURCES", "CorpusItem", "annotation_files", "assemble_corpus", "claim_scored_texts", "corpus_sha256",
    "handwritten_texts", "model_texts", "read_corpus", "read_texts", "sheet_sources", "write_corpus",
]

DATA_DIR = Path(__file__).parent / "data"
CORPUS_PATH = DATA_DIR / "classifier_corpus.jsonl.gz"
"""The assembled corpus (every source, every label, the synthetic negatives), gzipped JSON lines."""
MODEL_TEXTS_PATH = DATA_DIR / "model_texts.jsonl"
"""The embedded models' continuations of the corpus prompts, with their opaque id and provenance (the key that the
annotation sheet leaves out)."""
HANDWRITTEN_PATHS: dict[str, Path] = {name: DATA_DIR / f"{name}.jsonl" for name in (
    "handwritten_a", "handwritten_b", "handwritten_c", "handwritten_d")}
"""The hand-written texts by source (writer): ``id``, ``style``, ``intended`` (what the writer meant; not a label),
``twin``, ``text``."""
REPORTS_DIR = Path(__file__).resolve().parents[2] / "reports"
"""The committed runs whose scored continuations are kept out of the corpus."""
ANNOTATION_DIR = DATA_DIR / "annotation"
"""``sheet.jsonl`` (blind), ``pass_a.jsonl``, ``pass_b.jsonl`` and ``adjudication.jsonl``."""

HANDWRITTEN_SOURCES: tuple[str, ...] = tuple(HANDWRITTEN_PATHS)
SOURCES: tuple[str, ...] = ("smollm2-135m", "gemma3-270m", *HANDWRITTEN_SOURCES)
"""The folds of the leave-one-source-out validation."""

DISRUPTION_KINDS: tuple[str, ...] = ("control_random", *SYNTHETIC_KINDS)
"""Kinds that stand for a disrupted or degenerate output: norm-matched random K/V and the synthetic negatives."""

SYNTHETIC_SEED = 22
"""Seed of the synthetic negatives (one stream per source, :func:`assemble_corpus`)."""


@dataclass(frozen=True)
class CorpusItem:
    """One labelled text (see the module docstring). ``labels`` maps pass id → that pass's label."""

    id: str
    text: str
    label: str
    source: str
    kind: str
    unit: str
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"corpus item {self.id!r}: label must be one of {LABELS}, got {self.label!r}")

    @property
    def y(self) -> int | None:
        """1 for recursive, 0 for not recursive, None for borderline (left out of fits and rates)."""
        return None if self.label == BORDERLINE else int(self.label == RECURSIVE)


def read_texts(path: Path) -> list[dict[str, str]]:
    """The JSON lines of a text file (model texts or hand-written texts)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def model_texts(path: Path = MODEL_TEXTS_PATH) -> list[dict[str, str]]:
    """The generated corpus texts with provenance: ``id`` (opaque), ``model``, ``condition``, ``pair_id``,
    ``recipient_id``, ``donor_id``, ``text``."""
    return read_texts(path)


def handwritten_texts(paths: Mapping[str, Path] = HANDWRITTEN_PATHS) -> list[dict[str, str]]:
    """The hand-written texts of every writer whose file exists, each with its ``source`` and its opaque annotation
    id (``sheet_id``) added."""
    return [row | {"source": source, "sheet_id": opaque_id(f"handwritten/{row['id']}")}
            for source, path in paths.items() if path.is_file() for row in read_texts(path)]


def sheet_sources(generated: Sequence[Mapping[str, str]] | None = None,
                  handwritten: Sequence[Mapping[str, str]] | None = None) -> dict[str, str]:
    """Sheet id → source (model name or ``handwritten``) of every read text."""
    generated = model_texts() if generated is None else generated
    handwritten = handwritten_texts() if handwritten is None else handwritten
    return {r["id"]: r["model"] for r in generated} | {r["sheet_id"]: r["source"] for r in handwritten}


def annotation_files(directory: Path = ANNOTATION_DIR) -> tuple[dict[str, Annotation], dict[str, Annotation],
                                                                 dict[str, Annotation]]:
    """The two passes (``pass_a.jsonl``, ``pass_b.jsonl``; each must label every read text once) and the
    adjudication log (``adjudication.jsonl``; it must settle exactly the texts they disagree on)."""
    ids = sorted(sheet_sources())
    first, second = (read_pass(directory / f"pass_{p}.jsonl", ids) for p in ("a", "b"))
    disagreements = [i for i in ids if first[i].label != second[i].label]
    adjudication = read_pass(directory / "adjudication.jsonl", disagreements) if disagreements else {}
    return first, second, adjudication


def claim_scored_texts(reports: Path = REPORTS_DIR) -> set[str]:
    """Every continuation a claim scored in a committed run (``reports/*/samples.jsonl``), stripped."""
    out: set[str] = set()
    for path in sorted(reports.glob("*/samples.jsonl")):
        out |= {str(row.get("text", "")).strip() for row in read_texts(path)}
    return out - {""}


def assemble_corpus(generated: Sequence[Mapping[str, str]], handwritten: Sequence[Mapping[str, str]],
                    labels: Mapping[str, str], passes: Mapping[str, Mapping[str, str]],
                    exclude: Collection[str] = ()) -> list[CorpusItem]:
    """The corpus from the read texts and their adjudicated ``labels`` (sheet id → label; ``passes``: pass id →
    sheet id → label), plus the synthetic negatives of every source built from its recursive-labelled texts.
    A model text whose stripped text is in ``exclude`` (the continuations claims scored, :func:`claim_scored_texts`:
    a small model gives some generic outputs, e.g. a bare number, to prompts of both banks) is left out, so no text
    a claim scores is training data. Raises KeyError naming a text without a label."""
    items: list[CorpusItem] = []
    generated = [row for row in generated if row["text"].strip() not in exclude]

    def labelled(sheet_id: str) -> tuple[str, dict[str, str]]:
        if sheet_id not in labels:
            raise KeyError(f"text {sheet_id!r} has no adjudicated label")
        return labels[sheet_id], {p: by_id[sheet_id] for p, by_id in sorted(passes.items())}

    for row in generated:
        label, both = labelled(row["id"])
        items.append(CorpusItem(row["id"], row["text"], label, row["model"], row["condition"], row["recipient_id"],
                                both))
    for row in handwritten:
        label, both = labelled(row["sheet_id"])
        unit = "~".join(sorted((row["id"], row["twin"])))
        items.append(CorpusItem(row["sheet_id"], row["text"], label, row["source"], row["style"], unit, both))
    for index, source in enumerate(sorted({i.source for i in items})):
        recursive = [(i.unit, i.text) for i in items if i.source == source and i.label == RECURSIVE]
        for n, (kind, unit, text) in enumerate(synthetic_items(recursive, SYNTHETIC_SEED + index)):
            items.append(CorpusItem(f"{source}/{kind}/{n}", text, NOT_RECURSIVE, source, kind, unit))
    return items


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
