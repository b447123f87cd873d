"""harness.behaviour.lexicon.self_referential_positions: the prompt tokens that overlap a recursive-lexicon match."""

from __future__ import annotations

import pytest

from harness.behaviour import LEXICON
from harness.behaviour.lexicon import self_referential_positions
from harness.engine.tokens import encode


def test_self_referential_positions_cover_exactly_the_lexicon_phrase(toy_llama):
    tok = toy_llama.tokenizer
    text = "Describe the tides in the bay, and while you write, notice the noticing as it happens."
    ids = encode(tok, text)
    positions = self_referential_positions(tok, text, ids)
    assert positions
    covered = tok.decode([ids[i] for i in positions]).strip().lower()
    assert covered == "notice the noticing"


@pytest.mark.parametrize("pattern", LEXICON, ids=lambda p: p.name)
def test_every_lexicon_positive_inside_a_plain_sentence_is_found_and_negatives_are_not(toy_llama, pattern):
    tok = toy_llama.tokenizer
    for positive in pattern.positives:
        text = f"Explain how bread rises in a warm kitchen; {positive}; then list the steps."
        positions = self_referential_positions(tok, text, encode(tok, text))
        decoded = tok.decode([encode(tok, text)[i] for i in positions]).lower()
        assert positions and any(w in decoded for w in positive.lower().split()), (positive, decoded)
    for negative in pattern.negatives:
        text = f"Explain how bread rises in a warm kitchen; {negative}; then list the steps."
        assert self_referential_positions(tok, text, encode(tok, text)) == ()


def test_baseline_prompts_have_no_self_referential_positions_and_ids_must_match(toy_llama, bank):
    tok = toy_llama.tokenizer
    hits = [p.id for p in bank.group("baseline") if self_referential_positions(tok, p.text, encode(tok, p.text))]
    assert hits == []
    text = bank.group("recursive")[0].text
    with pytest.raises(ValueError, match="not this tokenizer's encoding"):
        self_referential_positions(tok, text, encode(tok, text)[1:])


class _WordTokenizer:
    """A whitespace tokenizer with a BOS at offsets (0, 0), like Gemma's (special tokens have empty offsets)."""

    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False):
        offsets, start = [(0, 0)], 0
        for word in text.split(" "):
            offsets.append((start, start + len(word)))
            start += len(word) + 1
        return {"input_ids": list(range(len(offsets))), "offset_mapping": offsets}


def test_special_tokens_with_empty_offsets_are_never_self_referential():
    text = "awareness itself is here"
    positions = self_referential_positions(_WordTokenizer(), text, list(range(5)))
    assert positions == (1, 2)
