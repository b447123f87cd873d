"""The registered unmatched variant (issue 11 item 7): a bank without exact-length pairs still yields pairs for
every KV claim (nearest token length, shared-prefix patch), and the default bank keeps its exact pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness import transfer as tr
from harness.engine import kvcache
from harness.engine.patch_specs import Alignment, KVPatchSpec
from harness.engine.tokens import encode, pad_id
from harness.foundation.decoding import DecodingRegime
from harness.prompts import load_bank
from harness.prompts.pairing import (
    EXACT_DESIGN_MINIMUM,
    PairRole,
    choose_pairs,
    make_pair,
    nearest_length_pairs,
    pairing_summary,
    select_pairs,
    transfer_pairs,
)

UNMATCHED_BANK = Path(__file__).resolve().parents[1] / "data" / "banks" / "unmatched.json"
ROLES = {  # the roles the KV claims ask for: main patches, reverse and tensor controls, cross-baseline control
    "recursive+baseline": (PairRole.RECURSIVE, PairRole.BASELINE),
    "baseline+other": (PairRole.BASELINE, PairRole.OTHER_BASELINE),
}


@pytest.fixture(scope="module")
def unmatched_bank():
    return load_bank(UNMATCHED_BANK)


@pytest.mark.parametrize("roles", list(ROLES.values()), ids=list(ROLES))
def test_a_bank_without_equal_lengths_yields_variant_pairs(toy_model, unmatched_bank, roles):
    assert transfer_pairs(toy_model, unmatched_bank) == []  # the premise: not one exact-length pair
    selection = choose_pairs(toy_model, unmatched_bank, 6, roles=roles)
    assert selection.variant and selection.exact_available == 0 and len(selection.pairs) == 6
    members = [m for p in selection.pairs for m in (p.recursive.id, p.baseline.id)]
    assert len(members) == len(set(members))  # unique pairs
    assert all(p.unmatched and p.id.startswith("nearest:") for p in selection.pairs)
    summary = pairing_summary(selection)
    assert summary["design"].startswith("unmatched variant") and summary["unequal_pairs"] > 0
    assert summary["length_difference"] == {p.id: p.length_difference for p in selection.pairs}


def test_nearest_length_matching_is_greedy_closest_first(toy_llama, unmatched_bank):
    lengths = {p.id: len(encode(toy_llama.tokenizer, p.text)) for p in unmatched_bank.prompts}
    pairs = nearest_length_pairs(toy_llama, unmatched_bank)
    remaining_r = {p.id for p in unmatched_bank.group("recursive")}
    remaining_b = {p.id for p in unmatched_bank.group("baseline")}
    for pair in sorted(pairs, key=lambda p: (abs(p.length_difference), p.recursive.id, p.baseline.id)):
        best = min(abs(lengths[r] - lengths[b]) for r in remaining_r for b in remaining_b)
        assert abs(pair.length_difference) == best  # no closer pair was left when this one was taken
        remaining_r.remove(pair.recursive.id)
        remaining_b.remove(pair.baseline.id)
    assert len(pairs) == 6


def test_default_bank_keeps_its_exact_pairs(toy_llama, bank):
    """Where the bank has at least n exact pairs (n = the claim's planned n capped by --n) nothing changes."""
    for roles in ROLES.values():
        exact = select_pairs(toy_llama, bank, 500, roles=roles)
        n = min(len(exact), 40)
        selection = choose_pairs(toy_llama, bank, n, roles=roles)
        assert not selection.variant
        assert selection.pairs == select_pairs(toy_llama, bank, n, roles=roles)
        assert all(not p.unmatched and p.length_difference == 0 for p in selection.pairs)
        assert "length_difference" not in pairing_summary(selection)


def test_exact_design_kept_when_the_planned_n_exceeds_the_bank(toy_llama, bank):
    """A planned n above the bank's exact pairs keeps the exact design (all of them) while the bank has at least
    EXACT_DESIGN_MINIMUM; the variant is only for banks with fewer."""
    exact = select_pairs(toy_llama, bank, 500)
    assert len(exact) >= EXACT_DESIGN_MINIMUM
    selection = choose_pairs(toy_llama, bank, len(exact) + 100)
    assert not selection.variant and selection.pairs == exact


def test_aligned_leaves_equal_length_patches_untouched(toy_llama, unmatched_bank):
    pair = choose_pairs(toy_llama, unmatched_bank, 6).pairs[1]
    assert pair.length_difference != 0
    spec = tr.KV_MAIN.patch_for(toy_llama, pair.id, 0)
    assert pair.aligned(spec, PairRole.BASELINE, PairRole.RECURSIVE).alignment is Alignment.SHARED_PREFIX
    same = make_pair(toy_llama, pair.recursive, pair.recursive, unmatched=True)
    assert same.aligned(spec, PairRole.BASELINE, PairRole.RECURSIVE) is spec  # the primary design's spec, same key
    assert pair.aligned(None, PairRole.BASELINE, None) is None


@pytest.mark.parametrize("donor_longer", [True, False])
def test_shared_prefix_patch_takes_the_donor_and_keeps_the_recipient_tail(toy_model, donor_longer):
    """Positions 0 … min(n, m) − 2 hold the donor's K/V; the recipient's later positions keep its own K/V."""
    a = encode(toy_model.tokenizer, "Observe the observer observing this sentence, and the one observing that.")
    b = encode(toy_model.tokenizer, "Explain how a refrigerator keeps food cold, from the compressor to the coils.")
    recipient, donor = (b[:12], a[:18]) if donor_longer else (b[:18], a[:12])
    shared = min(len(recipient), len(donor)) - 1
    layers = tuple(range(toy_model.shape.n_layers))
    spec = KVPatchSpec(layers, alignment=Alignment.SHARED_PREFIX)
    pad = pad_id(toy_model.tokenizer)
    patched, report = kvcache.patched_prefix(toy_model.model, [recipient], [donor], spec, pad_id=pad)
    natural_r, _ = kvcache.patched_prefix(toy_model.model, [recipient], None, None, pad_id=pad)
    natural_d = kvcache.prefill(toy_model.model, [donor[:shared]], pad_id=pad)
    assert report.requested == (tuple(range(shared)),)
    assert kvcache.layer_lengths(patched) == kvcache.layer_lengths(natural_r)
    for layer in layers:
        p_lo, _ = kvcache.held_range(patched, layer)
        d_lo, _ = kvcache.held_range(natural_d, layer)
        applied = report.layers[layer].applied[0]
        for got, want_r, want_d in zip(kvcache.layer_kv(patched, layer), kvcache.layer_kv(natural_r, layer),
                                       kvcache.layer_kv(natural_d, layer)):
            for pos in range(p_lo, len(recipient) - 1):
                expected = want_d[:, :, pos - d_lo] if pos in applied else want_r[:, :, pos - p_lo]
                assert torch.equal(got[:, :, pos - p_lo], expected), (layer, pos)
    assert all(p < shared for entry in report.layers for p in entry.applied[0])


def test_self_patch_of_an_unmatched_pair_equals_the_natural_run(toy_llama, unmatched_bank):
    """A pair patched with itself (recipient = donor) continues exactly as the natural run, through the engine."""
    pair = choose_pairs(toy_llama, unmatched_bank, 6).pairs[1]
    self_pair = make_pair(toy_llama, pair.baseline, pair.baseline, pair_id="self", unmatched=True)
    decoding = DecodingRegime.greedy(6)
    natural = tr.run_condition(toy_llama, [self_pair], tr.NATURAL_BASELINE, decoding=decoding, run_seed=0,
                               progress=False)
    patched = tr.run_condition(toy_llama, [self_pair], tr.KV_MAIN, decoding=decoding, run_seed=0, progress=False)
    assert patched.outcomes[0].samples[0].generated_ids == natural.outcomes[0].samples[0].generated_ids


def test_unequal_pairs_run_through_the_engine(toy_llama, unmatched_bank):
    pairs = [p for p in choose_pairs(toy_llama, unmatched_bank, 6).pairs if p.length_difference][:2]
    decoding = DecodingRegime.greedy(3)
    for condition in (tr.KV_MAIN, tr.REVERSE, tr.V_PATCH_LATE):
        run = tr.run_condition(toy_llama, pairs, condition, decoding=decoding, run_seed=0, progress=False)
        assert [o.pair_id for o in run.outcomes] == [p.id for p in pairs]
