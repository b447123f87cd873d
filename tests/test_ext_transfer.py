"""harness.transfer_ext and harness.claim_support_ext on toy models and synthetic data: the V replay equals the
decode loop's own capture (natural, KV-patched and control conditions, sliding-window layers included),
refuses non-downstream positions and is cached; decode-step windows; self-referential positions; donor-level
blocks; the donor cache PR; the rank-correlation helper."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness import transfer as tr
from harness.prompts import pairing
from harness import transfer_ext as tx
from harness.behaviour import LEXICON
from harness.capture import capture_v_windows
from harness.claim_support_ext import (
    decode_step_rv,
    generated_rv,
    generated_token_counts,
    rank_correlation,
    replay_capture_gap,
)
from harness.claims_registry import Decoding
from harness.generation import CaptureSpec
from harness.hooks import TraceDict
from harness.measurement_cache import MeasurementCache
from harness.metrics import PromptTooShortError, content_window, participation_ratio
from harness.prompts import load_bank
from harness.tokens import encode, special_ids

TWELVE = Decoding(mode="greedy", temperature=None, samples_per_pair=1, max_new_tokens=12, repetition_penalty=1.2)


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def _run(lm, pairs, condition, capture=None, decoding=TWELVE):
    return tr.run_condition(lm, pairs, condition, decoding=decoding, run_seed=0, capture=capture, progress=False)


# ---------------------------------------------------------------------------------------------- replay


@pytest.mark.parametrize("condition", [tr.NATURAL_BASELINE, tr.KV_MAIN, tr.SHUFFLED, tr.REVERSE],
                         ids=lambda c: c.name)
def test_replay_equals_the_decode_loops_own_capture(toy_model, bank, condition):
    """Row n−1+s of the replay is the V the loop computed at decode step s (12 steps pass toy-gemma3's window 8)."""
    pairs = pairing.select_pairs(toy_model, bank, 3)
    layers = (toy_model.layers.early, toy_model.layers.late)
    run = _run(toy_model, pairs, condition, CaptureSpec(v_layers=layers))
    replays = tx.replay_v(toy_model, pairs, run, layers, run_seed=0)
    for outcome, (replay,) in zip(run.outcomes, replays):
        sample = outcome.samples[0]
        assert replay.token_ids[replay.prompt_length:] == sample.generated_ids
        steps = sample.v[layers[0]].shape[0]
        assert steps == len(sample.generated_ids)
        positions = list(range(replay.prompt_length - 1, replay.prompt_length - 1 + steps))
        for layer in layers:
            np.testing.assert_allclose(replay.rows(layer, positions), sample.v[layer], rtol=1e-4, atol=1e-5)
        last = replay.rows(layers[1], [len(replay.token_ids) - 1])
        assert last.shape == (1, sample.v[layers[1]].shape[1]) and np.all(np.isfinite(last))


def test_replay_capture_gap_checks_the_runs_own_capture(toy_llama, bank):
    pairs = pairing.select_pairs(toy_llama, bank, 2)
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    captured = _run(toy_llama, pairs, tr.KV_MAIN, CaptureSpec(v_layers=layers))
    replays = tx.replay_v(toy_llama, pairs, captured, layers, run_seed=0)
    gap = replay_capture_gap([captured], [replays])
    assert gap is not None and gap < 1e-4
    bare = _run(toy_llama, pairs, tr.KV_MAIN, CaptureSpec())
    assert replay_capture_gap([bare], [replays]) is None
    shifted = [[tx.ReplayedV(r.pair_id, r.condition, r.sample_index, r.prompt_length, r.token_ids, r.first_row,
                             {k: v + 1.0 for k, v in r.v.items()}) for r in per_pair] for per_pair in replays]
    assert replay_capture_gap([captured], [shifted]) == pytest.approx(1.0, abs=1e-4)


def test_patched_replay_differs_from_natural_and_refuses_prompt_positions(toy_llama, bank):
    pairs = pairing.select_pairs(toy_llama, bank, 2)
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    natural = tx.replay_v(toy_llama, pairs, _run(toy_llama, pairs, tr.NATURAL_BASELINE), layers, run_seed=0)
    patched = tx.replay_v(toy_llama, pairs, _run(toy_llama, pairs, tr.KV_MAIN), layers, run_seed=0)
    n = pairs[0].n_tokens
    nat, pat = natural[0][0], patched[0][0]
    assert nat.first_row == 0 and pat.first_row == n - 1
    # the last prompt token is fed identically, but at the late (patched) layer its V reads the patched residual
    assert not np.allclose(nat.rows(toy_llama.layers.late, [n - 1]), pat.rows(toy_llama.layers.late, [n - 1]))
    with pytest.raises(ValueError, match="not downstream of its patch"):
        pat.rows(toy_llama.layers.late, [n - 2])
    with pytest.raises(ValueError, match="outside the replayed rows"):
        nat.rows(toy_llama.layers.late, [len(nat.token_ids)])
    with pytest.raises(ValueError, match="was not replayed"):
        nat.rows(0, [0])


def test_natural_step_zero_window_is_the_clean_prompt_window(toy_model, bank):
    """At step 0 the window is the prompt's last W content tokens, with the V a clean prefill captures."""
    pairs = pairing.select_pairs(toy_model, bank, 3)
    layers = (toy_model.layers.early, toy_model.layers.late)
    replays = tx.replay_v(toy_model, pairs, _run(toy_model, pairs, tr.NATURAL_RECURSIVE), layers, run_seed=0)
    clean = capture_v_windows(toy_model, [(p.recursive.id, p.recursive.text) for p in pairs], layers, window=16)
    specials = special_ids(toy_model.tokenizer)
    for i, (replay,) in enumerate(replays):
        positions = tx.decode_step_positions(replay, 0, 16, specials)
        assert positions == content_window(list(pairs[i].recursive_ids), specials, 16)
        for layer in layers:
            np.testing.assert_allclose(replay.rows(layer, positions), clean.values[layer][i].numpy(), rtol=1e-4, atol=1e-5)
    rv0 = decode_step_rv(toy_model, replays, step=0, window=16)
    assert np.all(np.isfinite(rv0)) and np.all(rv0 > 0)
    assert np.all(np.isnan(decode_step_rv(toy_model, replays, step=12, window=16)))  # the loop ran steps 0…11


def test_replay_is_cached_and_read_back_identically(toy_llama, bank, tmp_path: Path, monkeypatch):
    pairs = pairing.select_pairs(toy_llama, bank, 2)
    run = _run(toy_llama, pairs, tr.KV_MAIN)
    cache = MeasurementCache(tmp_path / "m", "readwrite")
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    first = tx.replay_v(toy_llama, pairs, run, layers, run_seed=0, cache=cache)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached replay")

    monkeypatch.setattr(tx, "_replay_one", boom)
    again = tx.replay_v(toy_llama, pairs, run, layers, run_seed=0, cache=cache)
    for (a,), (b,) in zip(first, again):
        assert a.token_ids == b.token_ids and a.first_row == b.first_row
        for layer in layers:
            assert np.array_equal(a.v[layer], b.v[layer]) and a.v[layer].dtype == np.float32


def test_replay_refuses_activation_patches_other_pairs_and_bad_layers(toy_llama, bank):
    pairs = pairing.select_pairs(toy_llama, bank, 3)
    natural = _run(toy_llama, pairs[:2], tr.NATURAL_BASELINE, decoding=TWELVE)
    with pytest.raises(ValueError, match="only natural and KV"):
        v_run = _run(toy_llama, pairs[:2], tr.V_PATCH_LATE)
        tx.replay_v(toy_llama, pairs[:2], v_run, (1,), run_seed=0)
    with pytest.raises(ValueError, match="not the given pairs"):
        tx.replay_v(toy_llama, pairs[1:], natural, (1,), run_seed=0)
    with pytest.raises(ValueError, match="cannot replay layers"):
        tx.replay_v(toy_llama, pairs[:2], natural, (99,), run_seed=0)


def _synthetic(prompt: list[int], generated: list[int], first_row: int = 0) -> tx.ReplayedV:
    total = len(prompt) + len(generated)
    rows = np.arange((total - first_row) * 3, dtype=np.float32).reshape(-1, 3)
    return tx.ReplayedV("p", "c", 0, len(prompt), tuple(prompt + generated), first_row, {0: rows, 1: rows * 2})


@given(n=st.integers(2, 30), k=st.integers(1, 30), step=st.integers(0, 40), window=st.integers(2, 20),
       bos=st.booleans())
def test_decode_step_window_is_the_last_w_non_special_positions_held_at_that_step(n, k, step, window, bos):
    special = 7
    prompt = ([special] if bos else []) + [1] * (n - (1 if bos else 0))
    replay = _synthetic(prompt, [2] * k)
    got = tx.decode_step_positions(replay, step, window, frozenset({special}))
    held = [p for p in range(0, n + step) if not (bos and p == 0)]
    if step > k - 1 or len(held) < window:
        assert got is None
    else:
        assert got == held[-window:] and got[-1] == n - 1 + step


def test_generated_positions_drop_special_tokens_and_step_window_validates():
    replay = _synthetic([1, 1, 1], [2, 3, 9], first_row=2)
    assert tx.generated_positions(replay, frozenset({9})) == [3, 4]
    with pytest.raises(ValueError, match="need step >= 0"):
        tx.decode_step_positions(replay, -1, 4, frozenset())


def test_generated_rv_needs_min_tokens(toy_llama, bank):
    pairs = pairing.select_pairs(toy_llama, bank, 2)
    run = _run(toy_llama, pairs, tr.NATURAL_BASELINE)
    replays = tx.replay_v(toy_llama, pairs, run, (toy_llama.layers.early, toy_llama.layers.late), run_seed=0)
    k = [len(o.samples[0].generated_ids) for o in run.outcomes]
    assert generated_token_counts(toy_llama, replays) == [float(n) for n in k]  # toy continuations hold no EOS
    assert np.all(np.isnan(generated_rv(toy_llama, replays, min_tokens=max(k) + 1)))
    values = generated_rv(toy_llama, replays, min_tokens=2)
    assert np.all(np.isfinite(values)) and np.all(values > 0)


# ------------------------------------------------------------------------------ self-referential tokens


def test_self_referential_positions_cover_exactly_the_lexicon_phrase(toy_llama):
    tok = toy_llama.tokenizer
    text = "Describe the tides in the bay, and while you write, notice the noticing as it happens."
    ids = encode(tok, text)
    positions = tx.self_referential_positions(tok, text, ids)
    assert positions
    covered = tok.decode([ids[i] for i in positions]).strip().lower()
    assert covered == "notice the noticing"


@pytest.mark.parametrize("pattern", LEXICON, ids=lambda p: p.name)
def test_every_lexicon_positive_inside_a_plain_sentence_is_found_and_negatives_are_not(toy_llama, pattern):
    tok = toy_llama.tokenizer
    for positive in pattern.positives:
        text = f"Explain how bread rises in a warm kitchen; {positive}; then list the steps."
        positions = tx.self_referential_positions(tok, text, encode(tok, text))
        decoded = tok.decode([encode(tok, text)[i] for i in positions]).lower()
        assert positions and any(w in decoded for w in positive.lower().split()), (positive, decoded)
    for negative in pattern.negatives:
        text = f"Explain how bread rises in a warm kitchen; {negative}; then list the steps."
        assert tx.self_referential_positions(tok, text, encode(tok, text)) == ()


def test_baseline_prompts_have_no_self_referential_positions_and_ids_must_match(toy_llama, bank):
    tok = toy_llama.tokenizer
    hits = [p.id for p in bank.group("baseline") if tx.self_referential_positions(tok, p.text, encode(tok, p.text))]
    assert hits == []
    text = bank.group("recursive")[0].text
    with pytest.raises(ValueError, match="not this tokenizer's encoding"):
        tx.self_referential_positions(tok, text, encode(tok, text)[1:])


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
    positions = tx.self_referential_positions(_WordTokenizer(), text, list(range(5)))
    assert positions == (1, 2)


# ---------------------------------------------------------------------------------- donor-level blocks


def test_donor_level_blocks(toy_llama, bank):
    blocks, qualified = tx.donor_level_blocks(toy_llama, bank, 6)
    assert len(blocks) == 6 and qualified >= 6
    original = {p.id: p for p in pairing.transfer_pairs(toy_llama, bank)}
    for block in blocks:
        assert [p.recursive.level for p in block.pairs] == list(tx.LEVELS)
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
        tx.donor_level_blocks(toy_llama, bank, 0)


def test_level_donor_patch_runs_on_truncated_donors(toy_llama, bank):
    blocks, _ = tx.donor_level_blocks(toy_llama, bank, 2)
    run = _run(toy_llama, [b.pairs[4] for b in blocks], tr.KV_MAIN,
               decoding=Decoding(mode="greedy", temperature=None, samples_per_pair=1, max_new_tokens=3))
    assert [o.donor_id for o in run.outcomes] == [b.pairs[4].recursive.id for b in blocks]


# ---------------------------------------------------------------------------------- donor cache PR


@torch.no_grad()
def test_donor_cache_pr_is_the_pr_of_the_prefix_v(toy_llama, bank):
    pairs = pairing.select_pairs(toy_llama, bank, 3)
    layer = toy_llama.layers.late
    got = tx.donor_cache_pr(toy_llama, pairs, layer, window=16)
    path = toy_llama.path(layer, "v_proj")
    for pair, value in zip(pairs, got):
        prefix = list(pair.recursive_ids[:-1])
        with TraceDict(toy_llama.model, [path]) as traces:
            toy_llama.model(input_ids=torch.tensor([prefix]))
        rows = traces[path].output[0, :, toy_llama.v_columns][-16:]
        assert math.isclose(value, participation_ratio(rows), rel_tol=1e-5)
        assert 1.0 <= value <= 16.0


def test_donor_cache_pr_refuses_a_window_a_sliding_layer_no_longer_holds(toy_gemma3, bank):
    pairs = pairing.select_pairs(toy_gemma3, bank, 1)
    with pytest.raises(PromptTooShortError, match=r"holds \d content positions at layer 0; the window needs 16"):
        tx.donor_cache_pr(toy_gemma3, pairs, 0, window=16)


# ---------------------------------------------------------------------------------- rank correlation


@given(st.lists(st.floats(-100, 100, allow_nan=False, allow_subnormal=False), min_size=5, max_size=30, unique=True))
def test_rank_correlation_of_a_monotone_transform_is_one(xs):
    x = np.asarray(xs)
    corr = rank_correlation(x, x + x**3, alternative="greater", level=0.95, rng=0, n_resamples=199)
    assert corr.undefined_reason is None and math.isclose(corr.rho, 1.0)
    assert corr.p_value is not None and 0.0 <= corr.p_value <= 1.0
    flipped = rank_correlation(x, -x, alternative="less", level=0.95, rng=0, n_resamples=199)
    assert math.isclose(flipped.rho, -1.0) and flipped.p_value < 0.5


def test_rank_correlation_of_a_constant_sample_is_undefined_with_the_reason():
    corr = rank_correlation([1, 2, 3, 4], [0.0, 0.0, 0.0, 0.0], alternative="less", level=0.95, rng=0)
    assert math.isnan(corr.rho) and corr.p_value is None and "constant" in corr.undefined_reason
