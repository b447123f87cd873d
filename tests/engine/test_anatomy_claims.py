"""The cache-anatomy claims' own code on toy models: persona_signature's decision (a random-weight model must not
pass it; a readout that generalises across wordings and copies that do not must pass) and the injection check's
prompt list on a sliding-window model.

The claim functions run with a hand-built :class:`ClaimContext` whose ``record_property`` keeps the record, so
the verdict is read exactly as the report would read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import claims.test_cache_anatomy as anatomy_claims
from harness.anatomy import invariants, persona
from harness.claim.context import ClaimContext, RunSettings
from harness.claim.verdicts import PROPERTY_NAME, ClaimNotPassed, evaluate
from harness.engine.tokens import encode
from harness.models import LoadedModel
from harness.prompts import Prompt, PromptBank, load_bank
from harness.registry import get_claim
from harness.runtime.measurement_store import MeasurementStore

USERS_PER_CELL = anatomy_claims.USERS_PER_CELL


def context(claim_id: str, lm: LoadedModel, bank: PromptBank, records: dict[str, Any]) -> ClaimContext:
    settings = RunSettings(seed=0, n_cap=None, window=16, report_dir=None, device="cpu", dtype=None)
    return ClaimContext(get_claim(claim_id), lm, bank, settings, MeasurementStore(mode="off"),
                        lambda name, value: records.__setitem__(name, value))


def run_claim(test: Any, ctx: ClaimContext, records: dict[str, Any]) -> dict[str, Any]:
    """Run a claim function; return its record (a non-PASS ends in ClaimNotPassed after recording)."""
    try:
        test(ctx)
    except ClaimNotPassed:
        pass
    return records[PROPERTY_NAME]


# ------------------------------------------------------------------------------------------ persona signature


def test_a_random_weight_model_does_not_pass_persona_signature(toy_llama: LoadedModel) -> None:
    """toy-llama has random weights: under the old same-wording design its leave-one-user-out accuracy was
    0.975–1.0. Against its own random-weight copies, on held-out wordings of the shipped bank, it must not PASS."""
    records: dict[str, Any] = {}
    ctx = context("persona_signature", toy_llama, load_bank(), records)
    record = run_claim(anatomy_claims.test_persona_signature, ctx, records)
    assert record["verdict"] != "PASS", record["explanation"]
    details = record["details"]
    assert record["n"] == details["cells"] == 12 and details["items"] == 12 * USERS_PER_CELL
    assert details["chance"] == 0.25 and details["length_only_accuracy"] == pytest.approx(0.25)
    assert len(details["random_weights_accuracy"]) == 2 and len(set(details["random_weights_seeds"])) == 2
    assert set(details["system_tokens"].values()) == {36}  # 35 content tokens + the separator, every wording


def signature(model_right: list[bool], copies: list[list[str]]) -> persona.PersonaSignature:
    """Four personas × three wordings × two users; ``model_right`` per cell, copies' predictions given."""
    labels, wordings = [], []
    for name in "abcd":
        for wording in ("w1", "w2", "w3"):
            labels += [name] * 2
            wordings += [wording] * 2
    cells = sorted(set(zip(labels, wordings)))
    right = dict(zip(cells, model_right))
    predicted = tuple(lab if right[(lab, w)] else ("a" if lab != "a" else "b") for lab, w in zip(labels, wordings))
    return persona.PersonaSignature(tuple(labels), tuple(wordings), predicted, tuple(tuple(c) for c in copies),
                                    tuple(["a"] * len(labels)))


def verdict(sig: persona.PersonaSignature) -> str:
    decision = persona.persona_decision(sig, 0.95)
    spec = get_claim("persona_signature")
    return evaluate(spec, model="m", estimate=decision.estimate, ci_low=decision.ci[0], ci_high=decision.ci[1],
                    p_value=decision.p_value, n=len(sig.cells)).verdict.value


def test_a_readout_that_generalises_beats_degenerate_copies() -> None:
    """The model names every held-out persona; each copy names one persona for everything (accuracy 0.25)."""
    sig = signature([True] * 12, [["a"] * 24, ["c"] * 24])
    decision = persona.persona_decision(sig, 0.95)
    assert decision.details["accuracy"] == 1.0 and decision.details["random_weights_accuracy"] == [0.25, 0.25]
    assert decision.estimate == pytest.approx(0.75)
    assert verdict(sig) == "PASS"


def test_copies_as_good_as_the_model_do_not_pass() -> None:
    sig = signature([True] * 12, [list(signature([True] * 12, []).labels)] * 2)
    assert persona.persona_decision(sig, 0.95).estimate == 0.0
    assert verdict(sig) != "PASS"


def test_a_chance_level_model_does_not_pass_even_against_worse_copies() -> None:
    """Model right on 3 of 12 cells (accuracy 0.25 = chance), copies right on none: above the copies, not above
    chance, so the intersection-union p stays large."""
    labels = signature([True] * 12, []).labels
    wrong = ["b" if lab == "a" else "a" for lab in labels]
    sig = signature([True] * 3 + [False] * 9, [wrong, wrong])
    decision = persona.persona_decision(sig, 0.95)
    assert decision.details["accuracy"] == 0.25 and decision.details["p_above_chance"] > 0.4
    assert verdict(sig) != "PASS"


def test_the_design_needs_two_wordings_and_equal_lengths() -> None:
    def item(persona: str, wording: str, user: str) -> Prompt:
        tags = (f"persona:{persona}", f"wording:{wording}") if wording else (f"persona:{persona}",)
        return Prompt(id=f"{persona}{wording}{user}", group="persona", text=user, tags=tags, system=persona + wording)

    two = [item(p, w, u) for p in "ab" for w in ("w1", "w2") for u in ("u1", "u2")]
    assert persona.persona_design_problem(two, [5] * len(two)) is None
    assert "differ in token count" in (persona.persona_design_problem(two, [5] * 7 + [6]) or "")
    one = [item(p, "", u) for p in "ab" for u in ("u1", "u2")]
    assert "one wording" in (persona.persona_design_problem(one, [5] * 4) or "")
    only_a = [i for i in two if i.persona == "a"]
    assert "persona(s)" in (persona.persona_design_problem(only_a, [5] * 4) or "")


def test_persona_items_take_the_first_users_of_every_cell(toy_llama: LoadedModel) -> None:
    items = persona.persona_items(load_bank().group("persona"), USERS_PER_CELL)
    cells = {(p.persona, p.wording) for p in items}
    assert len(cells) == 12 and len(items) == 12 * USERS_PER_CELL
    assert {p.id[-3:] for p in items} == {f"u0{i}" for i in range(1, USERS_PER_CELL + 1)}


# ------------------------------------------------------------------------------------------------ injection


def test_injection_prompts_include_one_beyond_the_sliding_window(toy_gemma3: LoadedModel) -> None:
    records: dict[str, Any] = {}
    ctx = context("cache_injection_equals_text", toy_gemma3, load_bank(), records)
    baseline = load_bank().group("baseline")
    prompts = invariants.injection_prompts(toy_gemma3, baseline[: ctx.spec.planned_n], baseline)
    window = toy_gemma3.model.config.sliding_window
    lengths = [len(encode(toy_gemma3.tokenizer, p.text)) for p in prompts]
    assert len(prompts) == ctx.spec.planned_n + 1
    assert max(lengths) >= window + invariants.BEYOND_WINDOW_MARGIN
    record = run_claim(anatomy_claims.test_cache_injection_equals_text, ctx, records)
    assert record["verdict"] == "PASS", record["explanation"]
    assert record["details"]["longest_prompt_tokens"] == max(lengths)
    assert record["details"]["sliding_window"] == window


def test_injection_prompts_on_a_model_without_a_window_are_the_coverage(toy_llama: LoadedModel) -> None:
    ctx = context("cache_injection_equals_text", toy_llama, load_bank(), {})
    baseline = load_bank().group("baseline")
    prompts = invariants.injection_prompts(toy_llama, baseline[: ctx.spec.planned_n], baseline)
    assert prompts == baseline[: ctx.spec.planned_n]
    assert np.all([p.group == "baseline" for p in prompts])
