"""Content labels for the behaviour score's corpus: blind annotation sheets, two passes, agreement, adjudication.

Every text of the corpus is read against the written rubric (docs/METHODS.md §6.1) by two passes that do not see
each other's labels, the prompt, the condition, the model or any score:

- :func:`blind_sheet` gives each text an opaque id (sha256 of a salted key, so the id says nothing about where
  the text came from) and shuffles the texts with a fixed seed, so no order leaks a source;
- each pass writes one JSON line per text, ``{"id", "label", "reason"}`` with a label of :data:`LABELS`
  (:func:`read_pass` checks the labels and that every sheet id is labelled exactly once);
- :func:`kappa_with_ci`: Cohen's κ between the passes (three-way labels, unitless, 1 = perfect agreement, 0 = chance)
  with a percentile bootstrap 95 % CI over texts;
- disagreements are settled by a third reading against the rubric, committed with a reason per text
  (:func:`adjudicated_labels`); both original labels stay in the corpus beside the adjudicated one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ANNOTATION_SALT", "BORDERLINE", "LABELS", "NOT_RECURSIVE", "RECURSIVE", "Annotation", "AnnotationError",
    "adjudicated_labels", "blind_sheet", "kappa_with_ci", "opaque_id", "read_pass",
]

RECURSIVE, NOT_RECURSIVE, BORDERLINE = "recursive", "not_recursive", "borderline"
LABELS: tuple[str, ...] = (RECURSIVE, NOT_RECURSIVE, BORDERLINE)
"""The rubric's three labels (docs/METHODS.md §6.1)."""

ANNOTATION_SALT = "kvclaims-annotation-v1:"
"""Salt of :func:`opaque_id`."""


class AnnotationError(ValueError):
    """A malformed annotation file (the message names the file and the line)."""


@dataclass(frozen=True)
class Annotation:
    """One reader's label of one text; ``reason`` may be empty for a clear case."""

    text_id: str
    label: str
    reason: str


def opaque_id(key: str) -> str:
    """An id that reveals nothing of ``key`` (a text's provenance key): ``"t"`` + 12 hex digits of sha256."""
    return "t" + hashlib.sha256((ANNOTATION_SALT + key).encode("utf-8")).hexdigest()[:12]


def blind_sheet(texts: Mapping[str, str], seed: int = 0) -> list[dict[str, str]]:
    """``[{"id", "text"}]`` for annotators: the opaque ids of ``texts`` (id → text) in an order shuffled with
    ``seed`` (after sorting by id, so the order depends on nothing but the ids and the seed)."""
    ids = sorted(texts)
    order = np.random.default_rng(seed).permutation(len(ids))
    return [{"id": ids[i], "text": texts[ids[i]]} for i in order]


def read_pass(path: Path, sheet_ids: Sequence[str]) -> dict[str, Annotation]:
    """The labels of one pass, keyed by text id. Raises :class:`AnnotationError` for a malformed line, an unknown
    label, an id not on the sheet, an id labelled twice, or a sheet id left unlabelled."""
    expected = set(sheet_ids)
    out: dict[str, Annotation] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text_id, label = str(row["id"]), str(row["label"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AnnotationError(f"{path}, line {n}: not a JSON object with 'id' and 'label' ({exc})") from None
        if label not in LABELS:
            raise AnnotationError(f"{path}, line {n}: label {label!r} is not one of {', '.join(LABELS)}")
        if text_id not in expected:
            raise AnnotationError(f"{path}, line {n}: id {text_id!r} is not on the annotation sheet")
        if text_id in out:
            raise AnnotationError(f"{path}, line {n}: id {text_id!r} is labelled twice")
        out[text_id] = Annotation(text_id, label, str(row.get("reason") or ""))
    missing = expected - set(out)
    if missing:
        raise AnnotationError(f"{path}: {len(missing)} sheet texts are unlabelled, e.g. {sorted(missing)[0]!r}")
    return out


def kappa_with_ci(first: Sequence[str], second: Sequence[str], *, n_boot: int = 2000, level: float = 0.95,
                  seed: int = 0) -> dict[str, Any]:
    """Cohen's κ of two label sequences over the same texts (sklearn), with a percentile bootstrap CI resampling
    texts, the raw agreement share and n. κ is None when it is undefined (a single label used throughout)."""
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"kappa needs two non-empty label sequences of equal length, got {a.shape} and {b.shape}")

    def kappa(x: np.ndarray, y: np.ndarray) -> float | None:
        if len(set(x.tolist()) | set(y.tolist())) < 2:
            return None
        value = float(cohen_kappa_score(x, y, labels=list(LABELS)))
        return value if np.isfinite(value) else None

    rng = np.random.default_rng(seed)
    draws = [k for k in (kappa(a[i], b[i]) for i in (rng.integers(0, len(a), len(a)) for _ in range(n_boot)))
             if k is not None]
    tail = (1 - level) / 2
    ci = [float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))] if draws else [None, None]
    return {"kappa": kappa(a, b), "ci": ci, "agreement": float(np.mean(a == b)), "n": int(len(a))}


def adjudicated_labels(first: Mapping[str, Annotation], second: Mapping[str, Annotation],
                       adjudication: Mapping[str, Annotation]) -> dict[str, str]:
    """The label of every text: the passes' common label where they agree, the adjudicator's where they do not.
    Raises :class:`AnnotationError` when a disagreement has no adjudication or an adjudication concerns a text the
    passes agree on."""
    if set(first) != set(second):
        raise AnnotationError("the two passes label different texts")
    out: dict[str, str] = {}
    for text_id, a in first.items():
        b = second[text_id]
        if a.label == b.label:
            if text_id in adjudication:
                raise AnnotationError(f"text {text_id!r} is adjudicated although both passes say {a.label!r}")
            out[text_id] = a.label
        elif text_id in adjudication:
            out[text_id] = adjudication[text_id].label
        else:
            raise AnnotationError(f"text {text_id!r}: the passes disagree ({a.label} / {b.label}) and it has no "
                                  "adjudication")
    return out
