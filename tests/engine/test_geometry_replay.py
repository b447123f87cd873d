"""harness.geometry.replay on toy models and synthetic data: the V replay equals the decode loop's own capture
(natural, KV-patched and control conditions, sliding-window layers included), refuses non-downstream positions
and is cached; decode-step windows; the generated-token R_V."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness.geometry.replay as replay_module
from harness import transfer as tr
from harness.engine.generation import CaptureSpec
from harness.engine.tokens import special_ids
from harness.foundation.decoding import DecodingRegime
from harness.geometry.capture import capture_v_windows
from harness.geometry.metrics import content_window
from harness.geometry.replay import (
    ReplayedV,
    decode_step_positions,
    decode_step_rv,
    generated_positions,
    generated_rv,
    generated_token_counts,
    replay_capture_gap,
    replay_v,
)
from harness.prompts.pairing import select_pairs
from harness.runtime.measurement_store import MeasurementStore

TWELVE = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=12)


def _run(lm, pairs, condition, capture=None, decoding=TWELVE):
    return tr.run_condition(lm, pairs, condition, decoding=decoding, run_seed=0, capture=capture, progress=False)


@pytest.mark.parametrize("condition", [tr.NATURAL_BASELINE, tr.KV_MAIN, tr.ORDER_ABLATION, tr.REVERSE],
                         ids=lambda c: c.name)
def test_replay_equals_the_decode_loops_own_capture(toy_model, bank, condition):
    """Row n−1+s of the replay is the V the loop computed at decode step s (12 steps pass toy-gemma3's window 8)."""
    pairs = select_pairs(toy_model, bank, 3)
    layers = (toy_model.layers.early, toy_model.layers.late)
    run = _run(toy_model, pairs, condition, CaptureSpec(v_layers=layers))
    replays = replay_v(toy_model, pairs, run, layers, run_seed=0)
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
    pairs = select_pairs(toy_llama, bank, 2)
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    captured = _run(toy_llama, pairs, tr.KV_MAIN, CaptureSpec(v_layers=layers))
    replays = replay_v(toy_llama, pairs, captured, layers, run_seed=0)
    gap = replay_capture_gap([captured], [replays])
    assert gap is not None and gap < 1e-4
    bare = _run(toy_llama, pairs, tr.KV_MAIN, CaptureSpec())
    assert replay_capture_gap([bare], [replays]) is None
    shifted = [[ReplayedV(r.pair_id, r.condition, r.sample_index, r.prompt_length, r.token_ids, r.first_row,
                             {k: v + 1.0 for k, v in r.v.items()}) for r in per_pair] for per_pair in replays]
    assert replay_capture_gap([captured], [shifted]) == pytest.approx(1.0, abs=1e-4)


def test_patched_replay_differs_from_natural_and_refuses_prompt_positions(toy_llama, bank):
    pairs = select_pairs(toy_llama, bank, 2)
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    natural = replay_v(toy_llama, pairs, _run(toy_llama, pairs, tr.NATURAL_BASELINE), layers, run_seed=0)
    patched = replay_v(toy_llama, pairs, _run(toy_llama, pairs, tr.KV_MAIN), layers, run_seed=0)
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
    pairs = select_pairs(toy_model, bank, 3)
    layers = (toy_model.layers.early, toy_model.layers.late)
    replays = replay_v(toy_model, pairs, _run(toy_model, pairs, tr.NATURAL_RECURSIVE), layers, run_seed=0)
    clean = capture_v_windows(toy_model, [(p.recursive.id, p.recursive.text) for p in pairs], layers, window=16)
    specials = special_ids(toy_model.tokenizer)
    for i, (replay,) in enumerate(replays):
        positions = decode_step_positions(replay, 0, 16, specials)
        assert positions == content_window(list(pairs[i].recursive_ids), specials, 16)
        for layer in layers:
            np.testing.assert_allclose(replay.rows(layer, positions), clean.values[layer][i].numpy(), rtol=1e-4, atol=1e-5)
    rv0 = decode_step_rv(toy_model, replays, step=0, window=16)
    assert np.all(np.isfinite(rv0)) and np.all(rv0 > 0)
    assert np.all(np.isnan(decode_step_rv(toy_model, replays, step=12, window=16)))  # the loop ran steps 0…11


def test_replay_is_cached_and_read_back_identically(toy_llama, bank, tmp_path: Path, monkeypatch):
    pairs = select_pairs(toy_llama, bank, 2)
    run = _run(toy_llama, pairs, tr.KV_MAIN)
    cache = MeasurementStore(tmp_path / "m", "readwrite")
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    first = replay_v(toy_llama, pairs, run, layers, run_seed=0, store=cache)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached replay")

    monkeypatch.setattr(replay_module, "_replay_one", boom)
    again = replay_v(toy_llama, pairs, run, layers, run_seed=0, store=cache)
    for (a,), (b,) in zip(first, again):
        assert a.token_ids == b.token_ids and a.first_row == b.first_row
        for layer in layers:
            assert np.array_equal(a.v[layer], b.v[layer]) and a.v[layer].dtype == np.float32


def test_replay_refuses_activation_patches_other_pairs_and_bad_layers(toy_llama, bank):
    pairs = select_pairs(toy_llama, bank, 3)
    natural = _run(toy_llama, pairs[:2], tr.NATURAL_BASELINE, decoding=TWELVE)
    with pytest.raises(ValueError, match="only natural and KV"):
        v_run = _run(toy_llama, pairs[:2], tr.V_PATCH_LATE)
        replay_v(toy_llama, pairs[:2], v_run, (1,), run_seed=0)
    with pytest.raises(ValueError, match="not the given pairs"):
        replay_v(toy_llama, pairs[1:], natural, (1,), run_seed=0)
    with pytest.raises(ValueError, match="cannot replay layers"):
        replay_v(toy_llama, pairs[:2], natural, (99,), run_seed=0)


def _synthetic(prompt: list[int], generated: list[int], first_row: int = 0) -> ReplayedV:
    total = len(prompt) + len(generated)
    rows = np.arange((total - first_row) * 3, dtype=np.float32).reshape(-1, 3)
    return ReplayedV("p", "c", 0, len(prompt), tuple(prompt + generated), first_row, {0: rows, 1: rows * 2})


@given(n=st.integers(2, 30), k=st.integers(1, 30), step=st.integers(0, 40), window=st.integers(2, 20),
       bos=st.booleans())
def test_decode_step_window_is_the_last_w_non_special_positions_held_at_that_step(n, k, step, window, bos):
    special = 7
    prompt = ([special] if bos else []) + [1] * (n - (1 if bos else 0))
    replay = _synthetic(prompt, [2] * k)
    got = decode_step_positions(replay, step, window, frozenset({special}))
    held = [p for p in range(0, n + step) if not (bos and p == 0)]
    if step > k - 1 or len(held) < window:
        assert got is None
    else:
        assert got == held[-window:] and got[-1] == n - 1 + step


def test_generated_positions_drop_special_tokens_and_step_window_validates():
    replay = _synthetic([1, 1, 1], [2, 3, 9], first_row=2)
    assert generated_positions(replay, frozenset({9})) == [3, 4]
    with pytest.raises(ValueError, match="need step >= 0"):
        decode_step_positions(replay, -1, 4, frozenset())


def test_generated_rv_needs_min_tokens(toy_llama, bank):
    pairs = select_pairs(toy_llama, bank, 2)
    run = _run(toy_llama, pairs, tr.NATURAL_BASELINE)
    replays = replay_v(toy_llama, pairs, run, (toy_llama.layers.early, toy_llama.layers.late), run_seed=0)
    k = [len(o.samples[0].generated_ids) for o in run.outcomes]
    assert generated_token_counts(toy_llama, replays) == [float(n) for n in k]  # toy continuations hold no EOS
    assert np.all(np.isnan(generated_rv(toy_llama, replays, min_tokens=max(k) + 1)))
    values = generated_rv(toy_llama, replays, min_tokens=2)
    assert np.all(np.isfinite(values)) and np.all(values > 0)


def test_replay_on_another_runs_tokens_measures_the_same_ids(toy_llama, bank):
    """``tokens_from``: every condition teacher-forces the same ids (B's natural continuation); with the run's
    own tokens it is the plain replay, with A's cache the rows differ (the cache, not the text, differs)."""
    pairs = select_pairs(toy_llama, bank, 2)
    layers = (toy_llama.layers.early, toy_llama.layers.late)
    natural_b = _run(toy_llama, pairs, tr.NATURAL_BASELINE)
    natural_a = _run(toy_llama, pairs, tr.NATURAL_RECURSIVE)
    patched = _run(toy_llama, pairs, tr.KV_MAIN)
    own = replay_v(toy_llama, pairs, natural_b, layers, run_seed=0)
    itself = replay_v(toy_llama, pairs, natural_b, layers, run_seed=0, tokens_from=natural_b)
    for (x,), (y,) in zip(own, itself):
        assert x.token_ids == y.token_ids
        for layer in layers:
            np.testing.assert_array_equal(x.v[layer], y.v[layer])
    on_b_a = replay_v(toy_llama, pairs, natural_a, layers, run_seed=0, tokens_from=natural_b)
    on_b_p = replay_v(toy_llama, pairs, patched, layers, run_seed=0, tokens_from=natural_b)
    for pair, outcome, (b,), (a,), (p,) in zip(pairs, natural_b.outcomes, own, on_b_a, on_b_p):
        n = pair.n_tokens
        generated = outcome.samples[0].generated_ids
        assert b.token_ids[n:] == a.token_ids[n:] == p.token_ids[n:] == generated
        assert a.token_ids[:n] == pair.prompt(tr.NATURAL_RECURSIVE.recipient)[1]
        assert "on natural_baseline tokens" in a.condition
        if generated:
            rows = list(range(n, n + len(generated)))
            assert not np.allclose(a.rows(layers[1], rows), b.rows(layers[1], rows))
            assert not np.allclose(p.rows(layers[1], rows), b.rows(layers[1], rows))
    with pytest.raises(ValueError, match="covers pairs"):
        replay_v(toy_llama, pairs[:1], natural_a, layers, run_seed=0, tokens_from=natural_b)
