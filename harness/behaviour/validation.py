"""Validation of the registered behaviour score on the held-out split of the corpus (issue 10).

Per model, on held-out items only (:mod:`harness.behaviour.corpus`; the classifier never saw them):

- AUROC of the registered score (``classifier_gated``) for natural recursive vs natural baseline continuations, and
  vs every negative, with a stratified percentile-bootstrap 95 % CI (:func:`auroc`, :func:`bootstrap_auroc_ci`);
  the earlier score (``embedding_gated``, the clipped centroid margin) beside it on the same texts;
- the **false-positive rate** of the registered decision (gated probability ≥ threshold) on the held-out disruption
  negatives, per source and pooled, with Wilson 95 % CIs; the true-positive rate on natural recursive texts;
- the mean registered score per source.

The texts were decoded under the registered behavioural regime (the only one registered:
:data:`harness.foundation.behavioural_regime.BEHAVIOUR_DECODING`), which the record names. ``python -m harness.behaviour validate``
writes ``reports/scorer-validation/<model>.json`` and prints a Markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.behaviour.corpus import DISRUPTION_SOURCES, CorpusItem

__all__ = ["auroc", "bootstrap_auroc_ci", "rate_with_ci", "validate_model"]


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


def _auroc_entry(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    low, high = bootstrap_auroc_ci(scores, labels)
    return {"auroc": auroc(scores, labels), "ci": [low, high], "n_positive": int(labels.sum()),
            "n_negative": int((labels == 0).sum())}


def validate_model(items: Sequence[CorpusItem], model: str) -> dict[str, Any]:
    """The validation record of ``model`` on its held-out items (see the module docstring)."""
    from harness.behaviour import score_continuations
    from harness.behaviour.classifier import THRESHOLD, load_classifier
    from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING

    held = [i for i in items if i.model == model and i.split == "heldout"]
    if not held:
        raise ValueError(f"the corpus has no held-out items of model {model!r}")
    scored = score_continuations([i.text for i in held])
    registered = np.asarray([s.classifier_gated for s in scored])
    old = np.asarray([s.embedding_gated for s in scored])
    labels = np.asarray([i.label for i in held])
    source = np.asarray([i.source for i in held])
    natural = np.isin(source, ("natural_recursive", "natural_baseline"))
    decided = registered >= THRESHOLD
    disruption = np.isin(source, DISRUPTION_SOURCES)
    return {
        "model": model,
        "decoding": BEHAVIOUR_DECODING.describe(),
        "classifier_version": load_classifier().version,
        "threshold": THRESHOLD,
        "n_heldout": len(held),
        "auroc_recursive_vs_baseline": {
            "classifier_gated": _auroc_entry(registered[natural], labels[natural]),
            "embedding_gated": _auroc_entry(old[natural], labels[natural]),
        },
        "auroc_recursive_vs_all_negatives": {
            "classifier_gated": _auroc_entry(registered, labels),
            "embedding_gated": _auroc_entry(old, labels),
        },
        "true_positive_rate": rate_with_ci(int(decided[source == "natural_recursive"].sum()),
                                           int((source == "natural_recursive").sum())),
        "false_positive_rate_disruption": rate_with_ci(int(decided[disruption].sum()), int(disruption.sum())),
        "false_positive_rate_by_source": {
            s: rate_with_ci(int(decided[source == s].sum()), int((source == s).sum()))
            for s in sorted(set(source.tolist())) if s != "natural_recursive"
        },
        "mean_score_by_source": {
            s: {"classifier_gated": float(registered[source == s].mean()),
                "embedding_gated": float(old[source == s].mean()), "n": int((source == s).sum())}
            for s in sorted(set(source.tolist()))
        },
        "degenerate_share_by_source": {
            s: float(np.mean([sc.degenerate for sc, src in zip(scored, source) if src == s]))
            for s in sorted(set(source.tolist()))
        },
    }
