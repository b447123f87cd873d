"""Token-length properties of the shipped bank under both embedded tokenizers.

The tokenizers come from the session model fixtures (``fixtures/models.py``), whose loader keeps a converted
copy of each GGUF package, so later runs take seconds.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.prompts import PromptBank, check_min_tokens, content_token_count, equal_length_pairs, load_bank

WINDOW = 16
EMBEDDED = {"smollm2-135m": "smollm2", "gemma3-270m": "gemma3"}
"""Embedded model name -> its session fixture in fixtures/models.py (loaded once per process, shared)."""


@pytest.fixture(scope="module", params=list(EMBEDDED))
def tokenizer(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """The embedded model's tokenizer, from the shared session model fixture."""
    name = request.param
    return name, request.getfixturevalue(EMBEDDED[name]).tokenizer


@pytest.fixture(scope="module")
def bank() -> PromptBank:
    return load_bank()


def test_whole_words_are_single_tokens(tokenizer: tuple[str, Any]) -> None:
    """Guards against a mis-converted GGUF tokenizer (transformers 4.x split Gemma words into fragments)."""
    _, tok = tokenizer
    ids = tok("Observe the process by which you are observing", add_special_tokens=False).input_ids
    pieces = [p.lstrip("▁Ġ") for p in tok.convert_ids_to_tokens(ids)]
    assert pieces[:4] == ["Obs", "erve", "the", "process"] or pieces[:3] == ["Observe", "the", "process"], pieces


def test_every_prompt_fits_the_window(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    check_min_tokens(bank, tok, window=WINDOW)  # raises PromptBankError naming the prompt otherwise


def test_too_short_prompt_is_rejected_with_its_id(tokenizer: tuple[str, Any]) -> None:
    from harness.prompts import PromptBankError

    _, tok = tokenizer
    short = load_bank(Path(__file__).resolve().parents[1] / "data" / "banks" / "short.yaml")
    with pytest.raises(PromptBankError, match=r"short\.yaml: prompt 'b-short': too short for the window"):
        check_min_tokens(short, tok, window=WINDOW)


def test_recursive_and_baseline_lengths_match_within_20_percent(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    means = {
        g: statistics.mean(content_token_count(p.text, tok) for p in bank.group(g)) for g in ("recursive", "baseline")
    }
    assert 0.8 <= means["recursive"] / means["baseline"] <= 1.2, means


def test_recorded_pairs_are_exactly_length_matched(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    name, tok = tokenizer
    pairs = bank.pairs("recursive_baseline")
    assert len(pairs) >= 60
    for pair in pairs:
        live = (content_token_count(bank.get(pair.first).text, tok), content_token_count(bank.get(pair.second).text, tok))
        assert pair.counts(name) == live, (pair.id, pair.counts(name), live)
        assert live[0] == live[1], pair.id


def test_equal_length_pairs_keeps_every_recorded_pair(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    assert equal_length_pairs(bank, tok) == bank.pairs("recursive_baseline")


def test_persona_system_prompts_have_equal_token_length(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    """Every wording of every persona: 35 content tokens, and the same system segment (with the separator)."""
    from harness.anatomy.persona import persona_tokens

    _, tok = tokenizer
    personas = bank.personas()
    assert len(personas) >= 4 and all(len(users) >= 10 for users in personas.values())
    assert all(len({p.wording for p in users}) >= 3 for users in personas.values())
    systems = {(p.persona, p.wording): p.system or "" for users in personas.values() for p in users}
    lengths = {key: content_token_count(system, tok) for key, system in systems.items()}
    segments = {key: persona_tokens(tok, system, "Hello")[1] for key, system in systems.items()}
    assert set(lengths.values()) == {35}, lengths
    assert len(set(segments.values())) == 1, segments


def test_long_control_matches_recursive_l4_l5_length(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    deep = [content_token_count(p.text, tok) for p in bank.group("recursive") if (p.level or 0) >= 4]
    long = [content_token_count(p.text, tok) for p in bank.group("long_control")]
    assert abs(statistics.mean(long) / statistics.mean(deep) - 1) <= 0.10
