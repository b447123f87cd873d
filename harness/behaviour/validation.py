"""Validation of the registered behaviour score, leave-one-source-out (issue 22).

For each source S of the corpus (:data:`harness.behaviour.corpus.SOURCES`: each embedded model's continuations and
the hand-written texts), the registered recipe (:func:`harness.behaviour.classifier.fit_recipe`, the same model,
features, C grid and threshold as the frozen artefact) is fitted on every other source and measured on S, whose
texts, prompts and synthetic negatives it never saw. Per fold, on S's non-borderline items, with the registered
degeneration gate applied as in :func:`harness.behaviour.score_continuations`:

- AUROC of the gated probability, recursive vs every negative, with a stratified percentile-bootstrap 95 % CI;
- recall (true-positive rate) and false-positive rate of the registered decision (gated p ≥ 0.5), with Wilson CIs:
  on every negative, on the disruption kinds (:data:`~harness.behaviour.corpus.DISRUPTION_KINDS`) and on the
  topic-matched negatives (hand-written twins; fluent model text labelled not recursive);
- the recall reachable at a false-positive rate ≤ 0.05 (the ROC point; reported, not the registered decision);
- per kind (condition, style or synthetic kind): n, the share called recursive and the mean score;
- borderline items: their count and the share called recursive (never part of a registered number).

The registered targets (:data:`TARGETS`, fixed 2026-12-07 before any fit) are checked per fold; a missed target is
reported as missed, never re-run with another recipe. Fixture sets that no fit ever sees (texts written for the
tests, in a style absent from the corpus; topic-only and donor-topic texts) are scored with the frozen artefact.
``python -m harness.behaviour validate`` writes ``reports/scorer-validation/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.behaviour.corpus import DISRUPTION_KINDS, HANDWRITTEN_SOURCES, SOURCES, CorpusItem

__all__ = [
    "TARGETS", "auroc", "bootstrap_auroc_ci", "fold_record", "gated_probabilities", "leave_one_source_out",
    "rate_with_ci", "recall_at_fpr", "score_fixture_set",
]

TARGETS: dict[str, float] = {
    "recall_min": 0.80,
    "fpr_max": 0.05,
    "auroc_min": 0.90,
    "topic_matched_fpr_max": 0.10,
}
"""Registered before validation (issue 22): on each held-out source, recall ≥ 0.8 with false-positive rate ≤ 0.05
at the registered threshold, AUROC ≥ 0.9, and false-positive rate ≤ 0.10 on topic-matched non-recursive texts."""

FLUENT_MODEL_KINDS: tuple[str, ...] = (
    "natural_recursive", "natural_baseline", "kv_main", "kv_alpha_0.5", "v_patch_late", "control_cross_baseline",
)
"""Model-text kinds whose negatives are fluent text near the recursive prompts' topics (the topic-matched negatives
of a model fold)."""


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """AUROC of ``scores`` for ``labels`` (1 positive, 0 negative): P(pos > neg) + P(pos = neg) / 2."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError(f"labels must be 0/1, got values {sorted(set(np.unique(y).tolist()))}")
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need both classes, got {len(pos)} positives and {len(neg)} negatives")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def bootstrap_auroc_ci(
    scores: Sequence[float], labels: Sequence[int], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of :func:`auroc`, resampling positives and negatives separately."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    labels_b = np.concatenate([np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)])
    for b in range(n_boot):
        stats[b] = auroc(np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]), labels_b)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def rate_with_ci(hits: int, n: int, level: float = 0.95) -> dict[str, Any]:
    """A proportion with its Wilson CI (statsmodels): ``{"rate", "ci", "k", "n"}``; rate None when n = 0."""
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return {"rate": None, "ci": [None, None], "k": 0, "n": 0}
    low, high = proportion_confint(hits, n, alpha=1 - level, method="wilson")
    rate = hits / n  # the bounds clipped to bracket the rate (the Wilson formula leaves ~1e-18 round-off at k = 0 or n)
    return {"rate": rate, "ci": [min(float(low), rate), max(float(high), rate)], "k": int(hits), "n": int(n)}


def recall_at_fpr(scores: Sequence[float], labels: Sequence[int], fpr_max: float) -> float:
    """The largest recall of a decision ``score > t`` over thresholds t whose false-positive rate is ≤ ``fpr_max``."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    best = 0.0
    for t in np.unique(np.concatenate([s, [-np.inf]])):
        if np.mean(neg > t) <= fpr_max:
            best = max(best, float(np.mean(pos > t)))
    return best


def gated_probabilities(probabilities: Sequence[float], texts: Sequence[str]) -> np.ndarray:
    """The registered gate of :func:`harness.behaviour.score_continuations`: p, or 0 for an empty or degenerate text."""
    from harness.behaviour.degeneration import degeneration, gated

    return np.asarray([gated(p, degeneration(t)) for p, t in zip(probabilities, texts)], dtype=np.float64)


def _rate(decided: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    return rate_with_ci(int(decided[mask].sum()), int(mask.sum()))


def fold_record(held: Sequence[CorpusItem], gated: np.ndarray, threshold: float) -> dict[str, Any]:
    """The measurements of one held-out fold (see the module docstring) from its items and gated probabilities."""
    labelled = np.asarray([i.y is not None for i in held])
    y = np.asarray([-1 if i.y is None else i.y for i in held])
    kind = np.asarray([i.kind for i in held])
    decided = gated >= threshold
    pos, neg = labelled & (y == 1), labelled & (y == 0)
    topic = neg & ~np.isin(kind, DISRUPTION_KINDS) & np.asarray(
        [i.source in HANDWRITTEN_SOURCES or i.kind in FLUENT_MODEL_KINDS for i in held])
    record: dict[str, Any] = {"n_items": int(labelled.sum()), "n_recursive": int(pos.sum()), "n_not_recursive": int(neg.sum())}
    if pos.any() and neg.any():
        low, high = bootstrap_auroc_ci(gated[labelled], y[labelled])
        record["auroc"] = {"auroc": auroc(gated[labelled], y[labelled]), "ci": [low, high]}
        record["recall_at_fpr_0.05"] = recall_at_fpr(gated[labelled], y[labelled], TARGETS["fpr_max"])
    else:
        record["auroc"] = {"auroc": None, "ci": [None, None]}
        record["recall_at_fpr_0.05"] = None
    record |= {
        "recall": _rate(decided, pos),
        "fpr_all_negatives": _rate(decided, neg),
        "fpr_disruption": _rate(decided, neg & np.isin(kind, DISRUPTION_KINDS)),
        "fpr_topic_matched": _rate(decided, topic),
        "by_kind": {
            k: {"n_recursive": int((pos & (kind == k)).sum()), "n_not_recursive": int((neg & (kind == k)).sum()),
                "recall": _rate(decided, pos & (kind == k))["rate"],
                "fpr": _rate(decided, neg & (kind == k))["rate"],
                "mean_score": float(gated[kind == k].mean())}
            for k in sorted(set(kind.tolist()))
        },
        "borderline": {"n": int((~labelled).sum()), "called_recursive": _rate(decided, ~labelled)["rate"]},
    }
    record["targets"] = _targets_met(record)
    return record


def _targets_met(record: Mapping[str, Any]) -> dict[str, bool | None]:
    def at_least(value: float | None, bound: float) -> bool | None:
        return None if value is None else value >= bound

    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    return {
        "recall": at_least(record["recall"]["rate"], TARGETS["recall_min"]),
        "fpr": at_most(record["fpr_all_negatives"]["rate"], TARGETS["fpr_max"]),
        "auroc": at_least(record["auroc"]["auroc"], TARGETS["auroc_min"]),
        "topic_matched_fpr": at_most(record["fpr_topic_matched"]["rate"], TARGETS["topic_matched_fpr_max"]),
    }


def leave_one_source_out(items: Sequence[CorpusItem], sources: Sequence[str] = SOURCES) -> dict[str, Any]:
    """One :func:`fold_record` per source, each from a fit of the registered recipe on the other sources."""
    from harness.behaviour.classifier import THRESHOLD, RecursiveClassifier, fit_recipe
    from harness.behaviour.features import feature_matrix

    folds: dict[str, Any] = {}
    for source in sources:
        train = [i for i in items if i.source != source]
        held = [i for i in items if i.source == source]
        model, mean, scale, c = fit_recipe(train)
        fitted = RecursiveClassifier(mean, scale, model.coef_[0], float(model.intercept_[0]), THRESHOLD, 0, "")
        texts = [i.text for i in held]
        gated = gated_probabilities(fitted.probabilities(feature_matrix(texts)), texts)
        folds[source] = fold_record(held, gated, THRESHOLD) | {"C": c, "n_train": sum(i.y is not None for i in train)}
    return folds


def score_fixture_set(rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The frozen score on texts no fit saw (rows with ``text`` and ``label``): n, the share called recursive per
    label with Wilson CIs, and the mean score."""
    from harness.behaviour import score_continuations

    scored = score_continuations([r["text"] for r in rows])
    out: dict[str, Any] = {}
    for label in sorted({r["label"] for r in rows}):
        mask = np.asarray([r["label"] == label for r in rows])
        decided = np.asarray([s.recursive for s in scored])
        out[label] = {"called_recursive": _rate(decided, mask),
                      "mean_score": float(np.mean([s.classifier_gated for s, m in zip(scored, mask) if m]))}
    return out
