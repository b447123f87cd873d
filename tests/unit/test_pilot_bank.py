"""The pilot bank (``prompts/pilot/``): the prompts on which the power plans' per-pair SDs are measured.

It loads as a bank of its own (30 recursive prompts, six per level, and 30 baselines), its recorded pairs are exactly
length-matched under both embedded tokenizers, and it is disjoint from the claims' bank and from the behaviour
scorer's corpus (no id, no text and no run of 8 consecutive words in common), so a pilot SD is never measured on a
prompt that a claim or the scorer also uses. The tokenizers come from the session model fixtures, as in
``tests/parity/test_prompts_embedded_tokenizers.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.behaviour.text import words
from harness.prompts import (
    DEFAULT_BANK_DIR,
    PromptBank,
    check_min_tokens,
    content_token_count,
    equal_length_pairs,
    load_bank,
)
from harness.transfer.scorer_corpus import CORPUS_BANK_DIR

REPO = Path(__file__).resolve().parents[2]
PILOT_BANK_DIR = REPO / "prompts" / "pilot"
WINDOW = 16
RUN = 8
"""Length of the word runs that no pilot prompt may share with the bank or the scorer corpus."""
EMBEDDED = {"smollm2-135m": "smollm2", "gemma3-270m": "gemma3"}
"""Embedded model name -> its session fixture in fixtures/models.py."""


@pytest.fixture(scope="module")
def pilot() -> PromptBank:
    return load_bank(PILOT_BANK_DIR)


@pytest.fixture(scope="module", params=list(EMBEDDED))
def tokenizer(request: pytest.FixtureRequest) -> tuple[str, Any]:
    name = request.param
    return name, request.getfixturevalue(EMBEDDED[name]).tokenizer


def _prompts(bank: PromptBank) -> dict[str, str]:
    return {p.id: p.text for g in bank.groups for p in bank.group(g)}


def _runs(text: str, n: int = RUN) -> set[tuple[str, ...]]:
    """Runs of ``n`` consecutive words, case-folded and without punctuation (the scorer corpus's 8-word rule)."""
    ws = words(text)
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def test_pilot_bank_loads_with_30_recursive_and_30_baseline_prompts(pilot: PromptBank) -> None:
    assert PILOT_BANK_DIR == DEFAULT_BANK_DIR / "pilot"
    assert pilot.groups == {"recursive", "baseline"}
    recursive, baseline = pilot.group("recursive"), pilot.group("baseline")
    assert len(recursive) == 30 and len(baseline) == 30
    assert Counter(p.level for p in recursive) == {1: 6, 2: 6, 3: 6, 4: 6, 5: 6}
    assert all(p.id == f"pilot-rec-L{p.level}-{p.id[-2:]}" for p in recursive)
    assert all(p.id.startswith("pilot-base-") and p.level is None for p in baseline)


def test_default_bank_does_not_read_the_pilot_directory(pilot: PromptBank, bank: PromptBank) -> None:
    assert not set(_prompts(pilot)) & set(_prompts(bank))
    assert not any(p.id.startswith("pilot-") for g in bank.groups for p in bank.group(g))


def test_every_pilot_prompt_is_in_exactly_one_pair(pilot: PromptBank) -> None:
    pairs = pilot.pairs("recursive_baseline")
    assert len(pairs) == 30
    assert sorted(p.first for p in pairs) == sorted(p.id for p in pilot.group("recursive"))
    assert sorted(p.second for p in pairs) == sorted(p.id for p in pilot.group("baseline"))


def test_pilot_pairs_are_exactly_length_matched(pilot: PromptBank, tokenizer: tuple[str, Any]) -> None:
    name, tok = tokenizer
    check_min_tokens(pilot, tok, window=WINDOW)  # at least W + 1 = 17 content tokens each
    for pair in pilot.pairs("recursive_baseline"):
        live = (content_token_count(pilot.get(pair.first).text, tok), content_token_count(pilot.get(pair.second).text, tok))
        assert pair.counts(name) == live, (pair.id, pair.counts(name), live)
        assert live[0] == live[1], pair.id
    assert equal_length_pairs(pilot, tok) == pilot.pairs("recursive_baseline")


@pytest.mark.parametrize("other_dir", [None, CORPUS_BANK_DIR], ids=["claims-bank", "scorer-corpus"])
def test_pilot_bank_is_disjoint(pilot: PromptBank, other_dir: Path | None) -> None:
    """No shared id, no identical (normalised) text and no shared run of 8 consecutive words."""
    mine, theirs = _prompts(pilot), _prompts(load_bank(other_dir))
    assert len(theirs) >= 60
    assert not set(mine) & set(theirs)
    assert not {" ".join(words(t)) for t in mine.values()} & {" ".join(words(t)) for t in theirs.values()}
    their_runs = set().union(*(_runs(t) for t in theirs.values()))
    shared = {pid: sorted(" ".join(r) for r in _runs(t) & their_runs) for pid, t in mine.items()}
    assert not {pid: r for pid, r in shared.items() if r}
