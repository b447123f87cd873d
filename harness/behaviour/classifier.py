"""The registered behaviour score: P(recursive | continuation) from a small frozen classifier (issue 10).

Model: L2-regularised logistic regression (scikit-learn, C = 1.0, balanced class weights, lbfgs) on the standardised
:mod:`harness.behaviour.features` of a text (MiniLM embedding + degeneration, length and gibberish measures),
trained once on the ``train`` split of the committed corpus (:mod:`harness.behaviour.corpus`) and frozen as JSON
numbers in ``harness/behaviour/data/recursive_classifier.json`` (no pickle): the scaler's means and SDs, the
coefficients, the intercept, the decision threshold and the corpus sha256 it was trained on. Applying it needs
numpy only: ``p = 1 / (1 + exp(−(((x − mean) / sd) · w + b)))``, rounded to 1e-6 like the embedding cosines.

Decision: a text is *recursive* when its degeneration-gated probability is ≥ :data:`THRESHOLD` (0.5: the balanced
logistic model's own decision point, registered before validation; never tuned on the held-out split).
Hyper-parameters (C, class weights, features) were fixed before training and not searched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.behaviour.corpus import CORPUS_PATH, CorpusItem, corpus_sha256
from harness.behaviour.embedding import SCORE_DECIMALS
from harness.behaviour.features import FEATURE_NAMES, feature_matrix

__all__ = [
    "ARTEFACT_PATH",
    "ARTEFACT_VERSION",
    "THRESHOLD",
    "RecursiveClassifier",
    "load_classifier",
    "recursive_probabilities",
    "train_classifier",
]

ARTEFACT_PATH = Path(__file__).parent / "data" / "recursive_classifier.json"
"""The frozen classifier (JSON)."""

ARTEFACT_VERSION = 1
"""Version of the frozen classifier; a retrained artefact is a new version and moves every behavioural claim."""

THRESHOLD = 0.5
"""Registered decision threshold on the gated probability (see the module docstring)."""

C_REGULARISATION = 1.0
"""Inverse L2 strength of the logistic regression (scikit-learn's default), fixed before training."""


@dataclass(frozen=True)
class RecursiveClassifier:
    """The frozen classifier's numbers (see the module docstring)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    version: int
    corpus_sha256: str

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(recursive) per row of a :func:`~harness.behaviour.features.feature_matrix`, rounded to 1e-6."""
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return np.round(1.0 / (1.0 + np.exp(-z)), SCORE_DECIMALS)


def train_classifier(items: Sequence[CorpusItem], *, corpus_sha: str | None = None) -> dict[str, Any]:
    """Fit the classifier on the ``train`` items of ``items`` and return the artefact as a JSON-ready dict.

    Held-out items are never passed to the fit; the returned dict records how many items of each source and label
    were used. ``corpus_sha`` defaults to the committed corpus file's.
    """
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = [i for i in items if i.split == "train"]
    if not train or len({i.label for i in train}) < 2:
        raise ValueError("training needs train-split items of both labels")
    x = feature_matrix([i.text for i in train])
    y = np.asarray([i.label for i in train])
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=C_REGULARISATION, class_weight="balanced", max_iter=10_000, solver="lbfgs")
    model.fit((x - scaler.mean_) / scale, y)
    counts: dict[str, dict[str, int]] = {}
    for i in train:
        counts.setdefault(i.source, {}).setdefault(i.model, 0)
        counts[i.source][i.model] += 1
    return {
        "version": ARTEFACT_VERSION,
        "threshold": THRESHOLD,
        "features": list(FEATURE_NAMES),
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scale],
        "coef": [float(v) for v in model.coef_[0]],
        "intercept": float(model.intercept_[0]),
        "training": {
            "corpus_sha256": corpus_sha or corpus_sha256(CORPUS_PATH),
            "split": "train",
            "n_items": len(train),
            "n_positive": int(y.sum()),
            "counts_by_source_and_model": counts,
            "model": f"LogisticRegression(C={C_REGULARISATION}, class_weight='balanced', solver='lbfgs')",
            "scikit_learn": sklearn.__version__,
        },
    }


def _from_dict(d: dict[str, Any]) -> RecursiveClassifier:
    if list(d["features"]) != list(FEATURE_NAMES):
        raise ValueError("the classifier artefact's features differ from harness.behaviour.features")
    if float(d["threshold"]) != THRESHOLD:
        raise ValueError(f"the artefact's threshold {d['threshold']} differs from the registered {THRESHOLD}")
    return RecursiveClassifier(
        mean=np.asarray(d["mean"], dtype=np.float64), scale=np.asarray(d["scale"], dtype=np.float64),
        coef=np.asarray(d["coef"], dtype=np.float64), intercept=float(d["intercept"]),
        threshold=float(d["threshold"]), version=int(d["version"]), corpus_sha256=d["training"]["corpus_sha256"],
    )


@cache
def load_classifier(path: Path = ARTEFACT_PATH) -> RecursiveClassifier:
    """The frozen classifier (read once per process). Raises FileNotFoundError / ValueError for a missing or
    inconsistent artefact."""
    if not path.is_file():
        raise FileNotFoundError(f"the behaviour classifier artefact is missing: {path}")
    return _from_dict(json.loads(path.read_text(encoding="utf-8")))


def recursive_probabilities(texts: Sequence[str]) -> np.ndarray:
    """P(recursive) of each text under the frozen classifier (0 for a blank text), float64 ``[len(texts)]``."""
    if not texts:
        return np.zeros(0)
    p = load_classifier().probabilities(feature_matrix(texts))
    return np.where([bool(t.strip()) for t in texts], p, 0.0)
