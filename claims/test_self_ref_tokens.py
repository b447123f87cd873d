"""Claim self_ref_token_patch: patching only the positions of self-referential tokens transfers behaviour.

Positions (fixed before any data): a donor token is self-referential when its characters overlap a span that
the recursive lexicon of DESIGN §4.7a (``harness.behaviour.lexicon``, the documented and unit-tested
patterns) matches in the donor prompt's normalised text (``harness.behaviour.lexicon.self_referential_positions``).
Only prompt positions 0…n−2 are held in the cache a patch edits, so a match on the last prompt token is not
patchable (in a pair of unequal lengths, the registered unmatched variant, only positions 0…min(n, m)−2 are).
Pairs (version 5): every exact-length pair of the bank whose donor has at least one patchable self-referential
position (``harness.claim.steps.claim_pairs`` with ``every``; the unmatched variant on a bank with too few; a donor
without one has nothing to patch; the number of qualifying pairs is reported). Version 4 took only the first planned
n (5) of them. Method: K and V of the recursive donor A at those positions only, over the
second-half layers (α = 1), into the baseline recipient B's cache; registered decoding regime. T (DESIGN
§4.8, registered behaviour score (degeneration-gated classifier P(recursive), docs/METHODS.md §6)) with a 95 % BCa CI over pairs. Rule and planned n: the registry.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from harness.behaviour.lexicon import self_referential_positions
from harness.claim.context import ClaimContext
from harness.claim.steps import claim_pairs, run_conditions, transfer_result
from harness.prompts.pairing import TransferPair
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, kv_condition

pytestmark = pytest.mark.claim("self_ref_token_patch")


def _patchable(lm, pair: TransferPair) -> tuple[int, ...]:
    """The donor's self-referential positions that a patch can write: below min(n, m) − 1."""
    limit = min(len(pair.recursive_ids), len(pair.baseline_ids)) - 1
    return tuple(i for i in self_referential_positions(lm.tokenizer, pair.recursive.text, pair.recursive_ids)
                 if i < limit)


def test_self_ref_token_patch(claim: ClaimContext) -> None:
    lm = claim.lm
    positions: dict[str, tuple[int, ...]] = {}

    def has_positions(pair: TransferPair) -> bool:
        positions[pair.id] = _patchable(lm, pair)
        return bool(positions[pair.id])

    selection = claim_pairs(claim, keep=has_positions, every=True)
    pairs = selection.pairs
    qualified = sum(1 for found in positions.values() if found)
    patch = kv_condition("kv_self_ref_tokens", pair_positions={p.id: positions[p.id] for p in pairs})
    runs = run_conditions(claim, (NATURAL_BASELINE, NATURAL_RECURSIVE, patch), selection=selection)
    shares = [len(positions[p.id]) / (min(len(p.recursive_ids), len(p.baseline_ids)) - 1) for p in pairs]
    result = transfer_result(
        claim, runs, patch, NATURAL_BASELINE, NATURAL_RECURSIVE,
        qualified_pairs=qualified,
        positions={p.id: list(positions[p.id]) for p in pairs},
        position_tokens={p.id: [lm.tokenizer.decode([p.recursive_ids[i]]) for i in positions[p.id]] for p in pairs[:5]},
        mean_patched_share=float(np.mean(shares)),
        donor_levels={str(level): count for level, count in sorted(Counter(p.recursive.level for p in pairs).items(),
                                                                   key=lambda kv: str(kv[0]))},
    )
    claim.conclude(result)
