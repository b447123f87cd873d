"""harness.prompts.pairing.donor_level_blocks: a baseline recipient with a (truncated) donor of every level."""

from __future__ import annotations

import math

import pytest

from harness import transfer as tr
from harness.engine.tokens import encode
from harness.foundation.decoding import DecodingRegime
from harness.prompts import LEVELS
from harness.prompts.pairing import donor_level_blocks, transfer_pairs

TWELVE = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=12)


def _run(lm, pairs, condition, capture=None, decoding=TWELVE):
    return tr.run_condition(lm, pairs, condition, decoding=decoding, run_seed=0, capture=capture, progress=False)


def test_donor_level_blocks(toy_llama, bank):
    blocks, qualified = donor_level_blocks(toy_llama, bank, 6)
    assert len(blocks) == 6 and qualified >= 6
    original = {p.id: p for p in transfer_pairs(toy_llama, bank)}
    for block in blocks:
        assert [p.recursive.level for p in block.pairs] == list(LEVELS)
        own = [p for p in block.pairs if p.id in original]
        assert len(own) == 1 and own[0] == original[own[0].id] and own[0].baseline == block.baseline
        for pair, used in zip(block.pairs, block.used_fraction):
            full = encode(toy_llama.tokenizer, pair.recursive.text)
            assert pair.baseline == block.baseline and len(pair.recursive_ids) == pair.n_tokens
            assert tuple(full[: pair.n_tokens]) == pair.recursive_ids and 0 < used <= 1
            assert math.isclose(used, pair.n_tokens / len(full))
    level5 = {b.pairs[4].recursive.id for b in blocks}
    assert len(level5) > 1  # donors rotate across blocks
    with pytest.raises(ValueError, match="n must be >= 1"):
        donor_level_blocks(toy_llama, bank, 0)


def test_level_donor_patch_runs_on_truncated_donors(toy_llama, bank):
    blocks, _ = donor_level_blocks(toy_llama, bank, 2)
    run = _run(toy_llama, [b.pairs[4] for b in blocks], tr.KV_MAIN,
               decoding=DecodingRegime.greedy(3))
    assert [o.donor_id for o in run.outcomes] == [b.pairs[4].recursive.id for b in blocks]
