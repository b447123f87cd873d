"""User claims (harness.registry.user_claims): a ``*.claim.yaml`` file is validated like a built-in claim (rule,
family, planned n or a stated reason, version history) and registered all or nothing; each problem is one line
naming the file. Every test restores the registry it changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.registry import CLAIMS, MULTIPLICITY_FAMILIES, VERSION_HISTORY, changes_of
from harness.registry.rules import P_BELOW, ci, ci_within, contrasts_above, value
from harness.registry.user_claims import USER_CLAIM_SOURCES, UserClaimError, parse_rule, register_user_claims

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "user_claim" / "mid_stack_rv.claim.yaml"


@pytest.fixture
def registry() -> Iterator[None]:
    """The registry's tables as they were before the test, put back after it."""
    tables = (CLAIMS, MULTIPLICITY_FAMILIES, VERSION_HISTORY, USER_CLAIM_SOURCES)
    saved = [dict(t) for t in tables]
    yield
    for table, copy in zip(tables, saved):
        table.clear()
        table.update(copy)  # type: ignore[arg-type]


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _write(tmp_path: Path, data: dict[str, Any], name: str = "mine") -> Path:
    path = tmp_path / f"{name}.claim.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_documented_example_registers_with_its_plan_family_and_history(registry: None) -> None:
    (spec,) = register_user_claims([EXAMPLE])
    assert CLAIMS["mid_stack_rv_contraction"] is spec
    assert spec.planned_n == 39  # g plan: true g -1.2 against the bound -0.5, 95% CI part
    assert spec.family == "my_paper" and spec.alpha_test == pytest.approx(0.05)
    assert MULTIPLICITY_FAMILIES["my_paper"].members == ("mid_stack_rv_contraction",)
    assert [c.version for c in changes_of(spec.id)] == [2]
    assert USER_CLAIM_SOURCES[spec.id] == EXAMPLE.resolve()
    assert register_user_claims([EXAMPLE]) == []  # a file registered before is not read again


def test_the_registry_is_restored_between_tests() -> None:
    assert "mid_stack_rv_contraction" not in CLAIMS and "my_paper" not in MULTIPLICITY_FAMILIES


@pytest.mark.parametrize(("text", "criterion"), [
    ("ci < -0.5", ci("<", -0.5)), ("value <= 0", value("<=", 0.0)), ("p_below", P_BELOW),
    ("ci_within -0.1 0.1", ci_within(-0.1, 0.1)), ("contrasts_above 0 a b", contrasts_above(0.0, ("a", "b"))),
])
def test_rule_words_give_the_registry_criteria(text: str, criterion: Any) -> None:
    assert parse_rule(text) == criterion


@pytest.mark.parametrize("text", ["ci << 1", "ci < x", "p_below 0.05", "mean > 0", ""])
def test_a_rule_that_is_not_a_criterion_names_the_allowed_forms(text: str) -> None:
    with pytest.raises(ValueError, match="(is not a criterion; write one of|is not a number)"):
        parse_rule(text)


def _without(key: str) -> dict[str, Any]:
    data = _example()
    del data[key]
    return data


def _with(**changes: Any) -> dict[str, Any]:
    return {**_example(), **changes}


BAD_FILES: dict[str, tuple[dict[str, Any], str]] = {
    "missing key": (_without("statement"), "missing statement"),
    "unknown key": (_with(colour="red"), "unknown key(s) colour (allowed: id, version"),
    "bad rule": (_with(rule=["ci below -0.5"]), "is not a criterion"),
    "version without history": (_without("history"), "version 2 needs one history entry per version above 1"),
    "history with a gap": (_with(version=3), "version 3 needs one history entry per version above 1 (has versions [2])"),
    "p rule without family": (_with(family=None, power={"plan": "stated", "planned_n": 20, "reason": "pilot"}),
                              "has a p condition but is not a member of a family"),
    "built-in family": (_with(family="geometry", significance_level=0.01), "family 'geometry' is already registered"),
    "built-in id": (_with(id="rv_contraction"), "claim id 'rv_contraction' is already registered (by the built-in"),
    "unknown kind": (_with(kind="huge"), "kind 'huge': one of superiority"),
    "unknown effect": (_with(effect_type="vibes"), "unknown effect_type 'vibes'"),
    "CI rule without level": (_with(ci_level=None), "ci_level must be set when the rule uses a main CI"),
    "family without alpha": (_with(significance_level=None), "family 'my_paper' needs significance_level"),
    "plan without its numbers": (_with(power={"plan": "g", "assumed": -1.2}), "power plan 'g' takes assumed, "
                                 "threshold; missing threshold"),
    "stated n without reason": (_with(power={"plan": "stated", "planned_n": 30, "reason": " "}),
                                "a stated plan needs n ≥ 2 and a reason"),
    "not a mapping": ([], "a user claim file is a mapping"),  # type: ignore[dict-item]
    "no both-ways cases": (_without("both_ways"), "missing both_ways"),
    "one both-ways case": (_with(both_ways={"holds": {"estimate": -1.2}}), "both_ways: a mapping with holds"),
    "case without estimate": (_with(both_ways={"holds": {"ci_low": -1.0}, "contradicted": {"estimate": 0.2}}),
                              "both_ways.holds: a mapping of estimate, ci_low"),
    "case with a word": (_with(both_ways={"holds": {"estimate": "low"}, "contradicted": {"estimate": 0.2}}),
                         "both_ways.holds.estimate: 'low' is not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_claim_file_is_one_line_naming_the_file_and_problem(case: str, tmp_path: Path, registry: None) -> None:
    data, problem = BAD_FILES[case]
    path = _write(tmp_path, data)  # type: ignore[arg-type]
    before = dict(CLAIMS)
    with pytest.raises(UserClaimError) as info:
        register_user_claims([path])
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert problem in message, message
    assert CLAIMS == before and "my_paper" not in MULTIPLICITY_FAMILIES


def test_registration_is_all_or_nothing_across_files(tmp_path: Path, registry: None) -> None:
    good = _write(tmp_path, _with(id="first_claim"), "a")
    bad = _write(tmp_path, _with(id="second_claim", rule=["ci < nothing"]), "b")
    with pytest.raises(UserClaimError, match="b.claim.yaml"):
        register_user_claims([good, bad])
    assert "first_claim" not in CLAIMS and "my_paper" not in MULTIPLICITY_FAMILIES


def test_user_claims_naming_one_family_share_its_alpha(tmp_path: Path, registry: None) -> None:
    first = _write(tmp_path, _with(id="first_claim"), "a")
    second = _write(tmp_path, _with(id="second_claim"), "b")
    specs = register_user_claims([first, second])
    assert MULTIPLICITY_FAMILIES["my_paper"].members == ("first_claim", "second_claim")
    assert [s.alpha_test for s in specs] == [pytest.approx(0.025)] * 2
    third = _write(tmp_path, _with(id="third_claim", significance_level=0.01), "c")
    fourth = _write(tmp_path, _with(id="fourth_claim", family="other"), "d")
    with pytest.raises(UserClaimError, match="family 'my_paper' is already registered"):
        register_user_claims([third])
    with pytest.raises(UserClaimError, match="significance_level 0.05 differs from 0.01"):
        register_user_claims([_write(tmp_path, _with(id="x_claim", family="other", significance_level=0.01), "e"),
                              fourth])


def test_a_rule_that_cannot_come_out_both_ways_is_refused_at_registration(tmp_path: Path, registry: None) -> None:
    """The plugin registers user claims with the both-ways check: a rule that is met whatever the data (here, a CI
    bound no interval can miss) gives PASS on the contradicting case and is refused, in one line, with nothing
    registered; the example's rule passes the same check."""
    from harness.plugin.user_claims import rule_comes_out_both_ways

    always = _write(tmp_path, _with(id="always_claim", rule=["ci < 1000000", "p_below"],
                                    both_ways={"holds": {"estimate": -1.2, "ci_low": -1.7, "ci_high": -0.7,
                                                         "p_value": 1e-6},
                                               "contradicted": {"estimate": 0.2, "ci_low": -0.2, "ci_high": 0.6,
                                                                "p_value": 1e-6}}))
    with pytest.raises(UserClaimError) as info:
        register_user_claims([always], check=rule_comes_out_both_ways)
    message = str(info.value)
    assert message.startswith(f"{always}: the rule cannot come out both ways on its both_ways cases: "
                              "statement contradicted → PASS") and "\n" not in message
    assert "always_claim" not in CLAIMS and "my_paper" not in MULTIPLICITY_FAMILIES
    (spec,) = register_user_claims([EXAMPLE], check=rule_comes_out_both_ways)
    assert spec.id == "mid_stack_rv_contraction"
