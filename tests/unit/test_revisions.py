"""Revision series on ``--model`` (harness.models.revisions): recognition, steps, one-line errors, and that each
checkpoint stays its own report row key and xdist group."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.models import (
    ModelReferenceError,
    UnknownModelError,
    check_series,
    checkpoint_of,
    checkpoint_provenance,
    find_series,
    resolve_spec,
)
from harness.models.revisions import parse_hf_reference, step_in_name
from harness.report.identity import clean_nodeid
from harness.runtime.xdist_scheduling import ModelGroupScheduling

PYTHIA = "hf:EleutherAI/pythia-160m"


def test_hf_revisions_of_one_id_form_a_series_ordered_by_step() -> None:
    names = [f"{PYTHIA}@step8000", "toy-llama", f"{PYTHIA}@step1000", "hf:EleutherAI/pythia-410m@step1000"]
    (series,) = check_series(names)
    assert series.name == PYTHIA and series.step_source == "name"
    assert series.models == (f"{PYTHIA}@step1000", f"{PYTHIA}@step8000")
    assert [m.step for m in series.members] == [1000, 8000]


def test_step_named_directories_of_one_parent_form_a_series() -> None:
    (series,) = check_series(["path:/ckpts/step8000/", "path:/ckpts/step1000", "path:/other/step5", "path:/ckpts/x"])
    assert series.name == "path:/ckpts"
    assert [(m.label, m.step) for m in series.members] == [("step1000", 1000), ("step8000", 8000)]


def test_what_is_not_a_series() -> None:
    assert check_series([f"{PYTHIA}@step1000"]) == []  # one checkpoint
    assert check_series([PYTHIA, f"{PYTHIA}@step1000"]) == []  # the default branch is not a checkpoint
    assert check_series(["path:/models/llama", "path:/models/qwen"]) == []  # one folder, no steps: not a run
    assert check_series(["smollm2-135m", "gemma3-270m"]) == []


def test_revisions_without_steps_are_numbered_in_the_order_given() -> None:
    (series,) = check_series([f"{PYTHIA}@v2", "toy-llama", f"{PYTHIA}@main"])
    assert series.step_source == "order"
    assert [(m.label, m.step) for m in series.members] == [("v2", 1), ("main", 2)]


@pytest.mark.parametrize(("names", "message"), [
    ([f"{PYTHIA}@step1000", f"{PYTHIA}@main"], "main names no training step while step1000 does"),
    (["path:/c/step100", "path:/c/global_step100"], "step100 and global_step100 both read as training step 100"),
    ([f"{PYTHIA}@"], "empty revision after '@'"),
    (["hf:EleutherAI/pythia-160m@a@b"], "is not hf:<org/name>[@revision]"),
])
def test_malformed_input_is_one_line(names: list[str], message: str) -> None:
    with pytest.raises(ModelReferenceError) as caught:
        check_series(names)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert isinstance(caught.value, UnknownModelError)  # selected_models turns it into a usage error


def test_resolve_spec_keeps_the_revision_and_names_a_malformed_one() -> None:
    spec = resolve_spec(f"{PYTHIA}@step1000")
    assert (spec.source, spec.location, spec.revision) == ("hf", "EleutherAI/pythia-160m", "step1000")
    with pytest.raises(ModelReferenceError, match="empty revision"):
        resolve_spec(f"{PYTHIA}@")


def test_step_names() -> None:
    assert step_in_name("step143000") == 143000
    assert step_in_name("checkpoint-500") == 500
    assert step_in_name("run3-step_20") == 20
    assert step_in_name("main") is None
    assert parse_hf_reference("toy-llama") is None


def test_provenance_names_the_checkpoint() -> None:
    assert checkpoint_provenance("path:/ckpts/step1000") == {
        "checkpoint": {"series": "path:/ckpts", "label": "step1000", "step": 1000}}
    assert checkpoint_provenance(f"{PYTHIA}@main")["checkpoint"]["step"] is None
    assert checkpoint_provenance("toy-llama") == {} == checkpoint_provenance(f"{PYTHIA}@")


@given(st.lists(st.integers(0, 10**7), min_size=2, max_size=8, unique=True), st.randoms(use_true_random=False))
def test_series_is_sorted_by_step_whatever_the_order_given(steps: list[int], rng: Random) -> None:
    names = [f"{PYTHIA}@step{s}" for s in steps]
    rng.shuffle(names)
    (series,) = check_series(names)
    assert [m.step for m in series.members] == sorted(steps)
    assert set(series.models) == set(names)


@given(st.lists(st.from_regex(r"[a-z][a-z0-9.]{0,8}", fullmatch=True), min_size=2, max_size=6, unique=True))
def test_step_free_revisions_are_numbered_one_to_k_in_the_order_given(labels: list[str]) -> None:
    labels = [label for label in labels if step_in_name(label) is None]
    names = [f"{PYTHIA}@{label}" for label in labels]
    found, problems = find_series(names)
    assert problems == []
    if len(names) < 2:
        assert found == []
        return
    (series,) = found
    assert [m.step for m in series.members] == list(range(1, len(names) + 1))
    assert list(series.models) == names


@given(st.lists(st.integers(0, 50), min_size=2, max_size=6))
def test_a_series_is_placed_or_reported_never_both(steps: list[int]) -> None:
    names = [f"path:/run/step{s}-{i}" for i, s in enumerate(steps)]
    found, problems = find_series(names)
    assert len(found) + len(problems) == 1
    assert bool(problems) == (len(set(steps)) < len(steps))


def test_two_revisions_stay_distinct_rows_and_xdist_groups() -> None:
    a, b, other = f"{PYTHIA}@step1000", f"{PYTHIA}@step8000", "hf:EleutherAI/pythia-410m@step1000"
    scheduler = ModelGroupScheduling.__new__(ModelGroupScheduling)
    scheduler.models = (a, b, other)
    node = "claims/test_rv_contraction.py::test_rv_contraction"
    # xdist alone would cut each suffix at its first '@' and put a and other in one group 'step1000'
    assert scheduler._split_scope(f"{node}[{a}]@{a}") == a
    assert scheduler._split_scope(f"{node}[{other}]@{other}") == other
    assert scheduler._split_scope(f"{node}[{b}]") == b  # pytest >= 9.2 drops the suffix: read the parameter
    assert clean_nodeid(f"{node}[{a}]@{a}") == clean_nodeid(f"{node}[{a}]") == f"{node}[{a}]"
    assert checkpoint_of(a) != checkpoint_of(b)
