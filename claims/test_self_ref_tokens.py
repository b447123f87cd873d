"""Claim self_ref_token_patch: patching only the positions of self-referential tokens transfers behaviour.

Positions (fixed before any data): a donor token is self-referential when its characters overlap a span that
the recursive lexicon of DESIGN §4.7a (``harness.behaviour.lexicon``, the documented and unit-tested
patterns) matches in the donor prompt's normalised text (``harness.behaviour.lexicon.self_referential_positions``).
Only prompt positions 0…n−2 are held in the cache a patch edits, so a match on the last prompt token is not
patchable. Pairs: the first planned-n exact-length pairs, in the pre-registered pair order, whose donor has
at least one patchable self-referential position (a donor without one has nothing to patch; the number of
qualifying pairs is reported). Method: K and V of the recursive donor A at those positions only, over the
second-half layers (α = 1), into the baseline recipient B's cache; registered decoding regime. T (DESIGN
§4.8, degeneration-gated embedding score) with a 95 % BCa CI over pairs. Rule and planned n: the registry.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from harness.behaviour.lexicon import self_referential_positions
from harness.claim_context import ClaimContext
from harness.claim_support import first_eligible, require_groups, run_conditions, transfer_result
from harness.prompts.pairing import transfer_pairs
from harness.transfer import NATURAL_BASELINE, NATURAL_RECURSIVE, kv_condition

pytestmark = pytest.mark.claim("self_ref_token_patch")


def test_self_ref_token_patch(claim: ClaimContext) -> None:
    lm = claim.lm
    require_groups(claim)
    candidates = transfer_pairs(lm, claim.bank)
    positions = {
        p.id: tuple(i for i in self_referential_positions(lm.tokenizer, p.recursive.text, p.recursive_ids)
                    if i < p.n_tokens - 1)
        for p in candidates
    }
    pairs, qualified = first_eligible(claim, candidates, lambda p: bool(positions[p.id]))
    if len(pairs) < 2:
        pytest.skip(f"{claim.spec.id}: {len(pairs)} exact-length pair(s) whose donor has a self-referential token "
                    "(recursive lexicon) at a patchable position; need 2")
    patch = kv_condition("kv_self_ref_tokens", pair_positions={p.id: positions[p.id] for p in pairs})
    runs = run_conditions(claim, pairs, (NATURAL_BASELINE, NATURAL_RECURSIVE, patch))
    shares = [len(positions[p.id]) / (p.n_tokens - 1) for p in pairs]
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
