"""Scorer validation: AUROC, bootstrap CI, the pre-fixed split, and the real run on the embedded models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from harness.behaviour import score_continuations
from harness.prompts import load_bank
from harness.scorer_validation import (
    SCORERS,
    auroc,
    bootstrap_auroc_ci,
    run_validation,
    split_of,
    validate_scorers,
)

ACCEPTANCE_AUROC = 0.90  # issue 4's acceptance threshold, fixed before any output was generated


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
    separated = bootstrap_auroc_ci(y.astype(float), y, n_boot=200)
    assert separated == (1.0, 1.0)


def test_split_is_fixed_and_roughly_balanced() -> None:
    bank = load_bank()
    ids = [p.id for p in bank.group("recursive") + bank.group("baseline")]
    assert split_of("rec-L1-01") == split_of("rec-L1-01")
    assert {split_of(i) for i in ids} == {"tune", "heldout"}
    for group in ("recursive", "baseline"):
        held = sum(split_of(p.id) == "heldout" for p in bank.group(group))
        assert 0.3 <= held / len(bank.group(group)) <= 0.7, (group, held)


def test_validate_scorers_on_hand_written_outputs() -> None:
    recursive = [
        "I notice myself noticing the words as they arrive, and my attention turns back on itself.",
        "There is a watcher watching the watcher; the observer and the observed are one movement.",
        "I am aware of my own thinking as this answer forms, a strange loop of self-observation.",
    ]
    baseline = [
        "The bridge opened in 1932 and carries eight lanes of traffic across the harbour.",
        "Knead the dough for ten minutes, then leave it to rise in a warm place for an hour.",
        "Most glaciers move a few metres per day, faster in summer when meltwater lubricates the bed.",
    ]
    loop = "the observer of the observer of the observer of the observer of the observer of the"
    texts = recursive + [loop] + baseline
    labels = [1, 1, 1, 1, 0, 0, 0]
    result = validate_scorers(texts, labels, n_boot=200)
    assert set(result.aurocs) == set(SCORERS)
    assert result.aurocs["lexicon_raw"].auroc == 1.0
    assert result.aurocs["lexicon_gated"].auroc == pytest.approx((3 * 3 + 0.5 * 3) / 12)  # the loop ties at 0
    assert result.aurocs["embedding_margin"].auroc > 0.9
    assert result.degenerate_share == pytest.approx(1 / 7)
    assert result.degenerate_share_recursive == pytest.approx(1 / 4)
    assert result.degenerate_share_baseline == 0.0
    with pytest.raises(ValueError, match="3 continuations but 2 labels"):
        validate_scorers(texts[:3], labels[:2], scores=score_continuations(texts[:3], embedding=False))


@pytest.mark.slow
@pytest.mark.validation
@pytest.mark.parametrize("model_name", ["smollm2-135m", "gemma3-270m"])
def test_scorers_separate_natural_outputs_on_heldout_prompts(
    model_name: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """Greedy 64-token continuations of every recursive and baseline prompt; AUROC on the held-out half.

    Set SCORER_VALIDATION_OUT to keep the record (e.g. reports/scorer-validation).
    """
    out_dir = os.environ.get("SCORER_VALIDATION_OUT") or tmp_path
    record = run_validation(model_name, out_dir=out_dir)
    held = record["heldout"]
    record_property("scorer_validation", {k: held["aurocs"][k]["auroc"] for k in SCORERS})
    assert len(record["outputs"]) == len(load_bank().group("recursive")) + len(load_bank().group("baseline"))
    assert (Path(out_dir) / f"{model_name}.json").exists()
    for name in SCORERS:
        auroc = held["aurocs"][name]
        assert 0.0 <= auroc["auroc"] <= 1.0 and auroc["ci_low"] <= auroc["auroc"] <= auroc["ci_high"], name
    # Whether a scorer reaches the 0.90 bar on a given model is a measured result (recorded here and
    # in reports/scorer-validation/README.md: the gated lexicon does not on either embedded model), not a
    # property of the harness, so it is recorded rather than asserted.
    record_property(
        "below_acceptance",
        {k: held["aurocs"][k]["auroc"] for k in ("lexicon_gated", "embedding_raw") if held["aurocs"][k]["auroc"] < ACCEPTANCE_AUROC},
    )


def test_prompt_echo_share() -> None:
    from harness.scorer_validation import prompt_echo

    prompt = "Observe the observer that is observing this text and describe it"
    assert prompt_echo(prompt, "Observe the observer that is observing this text") == 1.0
    assert prompt_echo(prompt, "The river carries sediment down to the sea every year") == 0.0
    assert prompt_echo(prompt, "too short") == 0.0
    half = prompt_echo(prompt, "observe the observer that is. Rivers carry mud to seas")
    assert 0.0 < half < 1.0


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.sampled_from(["the", "observer", "river", "sea", "watching", "itself", "a", "b"]), max_size=30),
    st.lists(st.sampled_from(["the", "observer", "river", "sea", "watching", "itself", "a", "b"]), max_size=30),
)
def test_prompt_echo_is_a_share(prompt_words: list[str], cont_words: list[str]) -> None:
    from harness.scorer_validation import prompt_echo

    prompt, cont = " ".join(prompt_words), " ".join(cont_words)
    assert 0.0 <= prompt_echo(prompt, cont) <= 1.0
    if len(prompt_words) >= 4:
        assert prompt_echo(prompt, prompt) == 1.0
