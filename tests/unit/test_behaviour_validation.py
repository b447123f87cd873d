"""Validation statistics of the behaviour score (AUROC, its bootstrap CI, proportions with CIs, recall at a false-positive
rate, the per-fold record and its targets) and the annotation tools (blind sheet, passes, κ, adjudication)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from harness.behaviour.annotation import (
    Annotation,
    AnnotationError,
    adjudicated_labels,
    blind_sheet,
    kappa_with_ci,
    opaque_id,
    read_pass,
)
from harness.behaviour.corpus import CorpusItem
from harness.behaviour.validation import TARGETS, auroc, bootstrap_auroc_ci, fold_record, rate_with_ci, recall_at_fpr


def test_auroc_known_values() -> None:
    assert auroc([3, 4, 1, 2], [1, 1, 0, 0]) == 1.0
    assert auroc([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0
    assert auroc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5
    assert auroc([2, 1, 2], [1, 0, 0]) == pytest.approx(0.75)


def test_auroc_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="need both classes"):
        auroc([1, 2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        auroc([1, 2], [1, 2])
    with pytest.raises(ValueError, match="equal length"):
        auroc([1, 2, 3], [1, 0])


scores_labels = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=-5, max_value=5), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
    )
)


@settings(deadline=None, max_examples=200)
@given(scores_labels)
def test_auroc_equals_mann_whitney_u_and_is_antisymmetric(data: tuple[list[int], list[int]]) -> None:
    s, y = np.array(data[0], dtype=float), np.array(data[1])
    value = auroc(s, y)
    u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert value == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))
    assert 0.0 <= value <= 1.0
    assert auroc(-s, y) == pytest.approx(1.0 - value)
    assert auroc(np.exp(s / 3), y) == pytest.approx(value)  # invariant to monotone transforms


def test_bootstrap_ci_brackets_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    y = np.array([1] * 30 + [0] * 30)
    s = rng.normal(size=60) + y
    low, high = bootstrap_auroc_ci(s, y, n_boot=500, seed=3)
    assert 0.0 <= low <= auroc(s, y) <= high <= 1.0
    assert (low, high) == bootstrap_auroc_ci(s, y, n_boot=500, seed=3)
    assert bootstrap_auroc_ci(y.astype(float), y, n_boot=200) == (1.0, 1.0)


@settings(deadline=None, max_examples=100)
@given(st.integers(min_value=1, max_value=500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_rate_ci_brackets_the_rate(kn: tuple[int, int]) -> None:
    k, n = kn
    r = rate_with_ci(k, n)
    assert r["rate"] == k / n and r["k"] == k and r["n"] == n
    assert 0.0 <= r["ci"][0] <= r["rate"] <= r["ci"][1] <= 1.0


def test_rate_of_nothing_is_undefined() -> None:
    assert rate_with_ci(0, 0)["rate"] is None


def test_recall_at_fpr_known_values() -> None:
    scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    assert recall_at_fpr(scores, labels, 0.0) == 0.75  # threshold 0.6: three of four positives, no negative
    assert recall_at_fpr(scores, labels, 0.25) == 1.0  # threshold 0.2: every positive, one negative of four
    assert recall_at_fpr(scores, labels, 0.5) == 1.0
    assert recall_at_fpr([0.1, 0.9], [1, 0], 0.0) == 0.0


def _item(n: int, label: str, kind: str, source: str = "handwritten_a") -> CorpusItem:
    return CorpusItem(f"i{n}", f"text {n}", label, source, kind, f"u{n}")


def test_fold_record_counts_rates_and_targets_both_ways() -> None:
    """A fold whose scores separate perfectly meets every target; one that calls a topic-matched negative and a
    disruption text recursive and misses positives fails them; borderline items are counted apart."""
    items = ([_item(i, "recursive", "plain_statement") for i in range(8)]
             + [_item(10 + i, "not_recursive", "plain_statement") for i in range(8)]
             + [_item(20 + i, "not_recursive", "word_salad") for i in range(8)]
             + [_item(30, "borderline", "plain_statement")])
    good = np.asarray([0.9] * 8 + [0.1] * 8 + [0.0] * 8 + [0.7])
    record = fold_record(items, good, 0.5)
    assert record["n_recursive"] == 8 and record["n_not_recursive"] == 16
    assert record["recall"]["rate"] == 1.0 and record["fpr_all_negatives"]["rate"] == 0.0
    assert record["borderline"] == {"n": 1, "called_recursive": 1.0}
    assert all(record["targets"].values())
    bad = np.asarray([0.9] * 4 + [0.1] * 4 + [0.8] + [0.1] * 7 + [0.9] + [0.0] * 7 + [0.0])
    record = fold_record(items, bad, 0.5)
    assert record["recall"]["rate"] == 0.5 and record["fpr_topic_matched"]["rate"] == 1 / 8
    assert record["fpr_disruption"]["rate"] == 1 / 8
    assert record["targets"] == {"recall": False, "fpr": False, "auroc": False, "topic_matched_fpr": False}
    assert TARGETS == {"recall_min": 0.8, "fpr_max": 0.05, "auroc_min": 0.9, "topic_matched_fpr_max": 0.1}


def test_opaque_ids_and_the_blind_sheet_reveal_no_provenance() -> None:
    keys = ["smollm2-135m/natural_recursive/p1/0", "gemma3-270m/control_random/p2/0", "handwritten/hw-x-r01"]
    ids = [opaque_id(k) for k in keys]
    assert all(len(i) == 13 and i.startswith("t") for i in ids) and len(set(ids)) == 3
    assert not any(part in i for i in ids for part in ("smollm", "gemma", "natural", "hw", "random"))
    texts = {i: f"text {n}" for n, i in enumerate(sorted(ids * 1))}
    sheet = blind_sheet(texts, seed=0)
    assert sheet == blind_sheet(dict(reversed(list(texts.items()))), seed=0)
    assert {r["id"] for r in sheet} == set(ids) and all(set(r) == {"id", "text"} for r in sheet)


def _pass(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_read_pass_rejects_bad_labels_unknown_repeated_and_missing_ids(tmp_path: Path) -> None:
    ok = _pass(tmp_path, "ok.jsonl", [{"id": "a", "label": "recursive"}, {"id": "b", "label": "borderline", "reason": "x"}])
    assert read_pass(ok, ["a", "b"])["b"] == Annotation("b", "borderline", "x")
    cases = [([{"id": "a", "label": "yes"}], "is not one of"), ([{"id": "z", "label": "recursive"}], "not on the"),
             ([{"id": "a", "label": "recursive"}, {"id": "a", "label": "recursive"}], "labelled twice"),
             ([{"id": "a", "label": "recursive"}], "unlabelled")]
    for n, (rows, message) in enumerate(cases):
        with pytest.raises(AnnotationError, match=message):
            read_pass(_pass(tmp_path, f"bad{n}.jsonl", rows), ["a", "b"])


def test_kappa_matches_known_values_and_adjudication_settles_exactly_the_disagreements() -> None:
    first = ["recursive", "not_recursive", "not_recursive", "recursive", "borderline", "not_recursive"]
    assert kappa_with_ci(first, first)["kappa"] == 1.0
    second = ["recursive", "not_recursive", "recursive", "recursive", "not_recursive", "not_recursive"]
    from sklearn.metrics import cohen_kappa_score

    k = kappa_with_ci(first, second, n_boot=200)
    assert k["kappa"] == pytest.approx(cohen_kappa_score(first, second)) and k["agreement"] == pytest.approx(4 / 6)
    assert k["ci"][0] <= k["kappa"] <= k["ci"][1]
    a = {str(i): Annotation(str(i), lab, "") for i, lab in enumerate(first)}
    b = {str(i): Annotation(str(i), lab, "") for i, lab in enumerate(second)}
    with pytest.raises(AnnotationError, match="no adjudication"):
        adjudicated_labels(a, b, {})
    settled = {"2": Annotation("2", "not_recursive", "topic only"), "4": Annotation("4", "borderline", "")}
    labels = adjudicated_labels(a, b, settled)
    assert labels["2"] == "not_recursive" and labels["4"] == "borderline" and labels["0"] == "recursive"
    with pytest.raises(AnnotationError, match="both passes say"):
        adjudicated_labels(a, b, settled | {"0": Annotation("0", "not_recursive", "")})
