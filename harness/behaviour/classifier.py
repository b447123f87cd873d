"""The registered behaviour score: P(recursive | continuation) from a small frozen classifier (issue 22).

Recipe (fixed 2026-12-07, before any content-labelled text existed, and the same in every leave-one-source-out fit
of the validation): L2-regularised logistic regression (scikit-learn, balanced class weights, lbfgs) on the
standardised :mod:`harness.behaviour.features` (feature set 2) of a text, with the inverse regularisation strength C
chosen from :data:`C_GRID` by 5-fold cross-validation *inside the training data*, grouped by unit (a prompt's
continuations, a hand-written twin pair) and scored by log loss. Training data: every non-borderline item of the
content-labelled corpus (:mod:`harness.behaviour.corpus`); the frozen artefact is fitted on all sources, each
validation fit on all but one. Frozen as JSON numbers in ``harness/behaviour/data/recursive_classifier.json`` (no
pickle): the scaler's means and SDs, the coefficients, the intercept, the decision threshold, the chosen C and the
corpus sha256. Applying it needs numpy only: ``p = 1 / (1 + exp(−(((x − mean) / sd) · w + b)))``, rounded to 1e-6
like the embedding cosines.

Decision: a text is *recursive* when its degeneration-gated probability is ≥ :data:`THRESHOLD` (0.5: the balanced
logistic model's own decision point, registered before validation; never tuned on held-out data).
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
from harness.behaviour.features import FEATURE_NAMES, FEATURE_SET, feature_matrix

__all__ = [
    "ARTEFACT_PATH",
    "ARTEFACT_VERSION",
    "C_GRID",
    "THRESHOLD",
    "RecursiveClassifier",
    "fit_recipe",
    "load_classifier",
    "recursive_probabilities",
    "train_classifier",
]

ARTEFACT_PATH = Path(__file__).parent / "data" / "recursive_classifier.json"
"""The frozen classifier (JSON)."""

ARTEFACT_VERSION = 2
"""Version of the frozen classifier; a retrained artefact is a new version and moves every behavioural claim.
(1: trained on labels given by the producing prompt, issue 10; 2: content labels, feature set 2, issue 22.)"""

THRESHOLD = 0.5
"""Registered decision threshold on the gated probability (see the module docstring)."""

C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0)
"""Candidate inverse L2 strengths; the fit picks one by grouped cross-validation inside its training data."""

CV_FOLDS = 5
"""Folds of that inner cross-validation (grouped by unit)."""


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


def fit_recipe(items: Sequence[CorpusItem]) -> tuple[Any, np.ndarray, np.ndarray, float]:
    """Fit the registered recipe on ``items`` (borderline items skipped): ``(model, mean, scale, C)``, where
    ``model`` is the fitted scikit-learn logistic regression on ``(x − mean) / scale``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    usable = [i for i in items if i.y is not None]
    y = np.asarray([i.y for i in usable])
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs items of both labels")
    x = feature_matrix([i.text for i in usable])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    groups = np.asarray([f"{i.source}/{i.unit}" for i in usable])
    folds = GroupKFold(n_splits=min(CV_FOLDS, len(set(groups))))

    def model_with(c: float) -> Any:
        return LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=10_000)

    losses = [float(np.mean(cross_val_score(model_with(c), z, y, groups=groups, cv=folds, scoring="neg_log_loss")))
              for c in C_GRID]
    c = C_GRID[int(np.argmax(losses))]  # ties: the smaller C (stronger regularisation)
    model = model_with(c).fit(z, y)
    return model, mean, scale, c


def train_classifier(items: Sequence[CorpusItem], *, corpus_sha: str | None = None) -> dict[str, Any]:
    """Fit the recipe on every non-borderline item of ``items`` and return the artefact as a JSON-ready dict,
    recording how many items of each source, kind and label were used. ``corpus_sha`` defaults to the committed
    corpus file's."""
    import sklearn

    model, mean, scale, c = fit_recipe(items)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for i in items:
        if i.y is not None:
            by_kind = counts.setdefault(i.source, {}).setdefault(i.kind, {"recursive": 0, "not_recursive": 0})
            by_kind[i.label] += 1
    return {
        "version": ARTEFACT_VERSION,
        "threshold": THRESHOLD,
        "feature_set": FEATURE_SET,
        "features": list(FEATURE_NAMES),
        "mean": [float(v) for v in mean],
        "scale": [float(v) for v in scale],
        "coef": [float(v) for v in model.coef_[0]],
        "intercept": float(model.intercept_[0]),
        "training": {
            "corpus_sha256": corpus_sha or corpus_sha256(CORPUS_PATH),
            "n_items": int(sum(v for s in counts.values() for k in s.values() for v in k.values())),
            "counts_by_source_kind_label": counts,
            "C": c,
            "model": (f"LogisticRegression(C={c}, class_weight='balanced', solver='lbfgs'); C chosen from "
                      f"{list(C_GRID)} by {CV_FOLDS}-fold grouped CV (log loss) on the training data"),
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
