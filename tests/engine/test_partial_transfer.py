"""Partial-layer cache transfer (harness.exchange.partial): invariants on the tiny random Llama / Gemma 3 (100 % is
the donor's cache exactly, 0 % the receiver's own, every other layer untouched, sliding windows kept), properties of
its measures and statistics, the trend decision, and the fidelity figure. Each test names the bug it would catch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness.claim.verdicts import Verdict, evaluate
from harness.engine import kvcache
from harness.engine.tokens import pad_id
from harness.exchange.partial import (
    LayerEnd,
    block_spearman,
    fidelity_steps,
    fidelity_trend,
    greedy_agreement,
    half_contrast,
    layer_count,
    measure_partial_fidelity,
    partial_spec,
    transferred_layers,
)
from harness.foundation.decoding import DecodingMode, DecodingRegime
from harness.models import LoadedModel
from harness.prompts import PromptBank
from harness.prompts.pairing import TransferPair, transfer_pairs
from harness.registry import get_claim
from harness.registry.exchange_claims import PARTIAL_DECODING, PARTIAL_FRACTIONS
from harness.report.figures import FIGURES, write_figures
from harness.transfer.disruption import next_token_kl

FRACTION = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
PERCENT = st.integers(min_value=0, max_value=100)
LAYERS = st.integers(min_value=1, max_value=96)


def pairs_of(lm: LoadedModel, bank: PromptBank, k: int) -> list[TransferPair]:
    pairs = transfer_pairs(lm, bank)[:k]
    assert len(pairs) == k
    return pairs


def prefixes(lm: LoadedModel, pair: TransferPair, spec) -> tuple[kvcache.Prefill, kvcache.PatchReport | None]:
    return kvcache.patched_prefix(lm.model, [pair.baseline_ids], [pair.recursive_ids], spec, pad_id=pad_id(lm.tokenizer))


def own_prefill(lm: LoadedModel, ids: tuple[int, ...]) -> kvcache.Prefill:
    return kvcache.prefill(lm.model, [list(ids[:-1])], pad_id=pad_id(lm.tokenizer))


# ------------------------------------------------------------------------------------------------ layer sets


@given(LAYERS, PERCENT)
def test_layer_sets_take_the_ceiling_share_from_the_named_end(n_layers: int, percent: int) -> None:
    # bug: floor instead of ceiling, an off-by-one at the top of the stack, or float error (0.1·30 → 4 layers)
    fraction = percent / 100
    k = layer_count(n_layers, fraction)
    assert k == -(-percent * n_layers // 100)  # ⌈percent · n / 100⌉ in integers
    first = transferred_layers(n_layers, fraction, LayerEnd.FIRST)
    last = transferred_layers(n_layers, fraction, LayerEnd.LAST)
    assert first == tuple(range(k)) and last == tuple(range(n_layers - k, n_layers))
    halves = set(transferred_layers(n_layers, 0.5, LayerEnd.FIRST)) | set(transferred_layers(n_layers, 0.5, LayerEnd.LAST))
    assert halves == set(range(n_layers))


@given(LAYERS, FRACTION, FRACTION)
def test_layer_sets_are_nested_as_the_fraction_grows(n_layers: int, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    for end in LayerEnd:
        assert set(transferred_layers(n_layers, lo, end)) <= set(transferred_layers(n_layers, hi, end))


def test_layer_sets_of_the_embedded_depths_and_bad_input() -> None:
    assert [layer_count(30, f) for f in PARTIAL_FRACTIONS] == [0, 8, 15, 23, 30]
    assert [layer_count(18, f) for f in PARTIAL_FRACTIONS] == [0, 5, 9, 14, 18]
    assert layer_count(30, 0.1) == 3 and partial_spec(()) is None
    with pytest.raises(ValueError, match="fraction"):
        layer_count(30, 1.5)
    with pytest.raises(ValueError, match="n_layers"):
        layer_count(0, 0.5)
    with pytest.raises(ValueError, match="LayerEnd"):
        transferred_layers(30, 0.5, "first")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ engine invariants


def test_full_transfer_is_the_donor_cache_and_zero_is_the_receivers(toy_model: LoadedModel, bank: PromptBank) -> None:
    # bug: a partial path that re-encodes, mixes at α < 1, or leaves a layer of the receiver at 100 %
    pair = pairs_of(toy_model, bank, 1)[0]
    every = tuple(range(toy_model.shape.n_layers))
    full, _ = prefixes(toy_model, pair, partial_spec(every))
    floor, _ = prefixes(toy_model, pair, partial_spec(()))
    assert kvcache.cache_hash(full) == kvcache.cache_hash(own_prefill(toy_model, pair.recursive_ids))
    assert kvcache.cache_hash(floor) == kvcache.cache_hash(own_prefill(toy_model, pair.baseline_ids))


@pytest.mark.parametrize("end", list(LayerEnd))
def test_partial_cache_takes_only_the_chosen_layers_and_keeps_layer_semantics(
    toy_model: LoadedModel, bank: PromptBank, end: LayerEnd,
) -> None:
    # bug: writing a neighbour layer, replacing a sliding layer by a full one, or mutating either input cache
    pair = pairs_of(toy_model, bank, 1)[0]
    donor, receiver = own_prefill(toy_model, pair.recursive_ids), own_prefill(toy_model, pair.baseline_ids)
    before = kvcache.cache_hash(donor), kvcache.cache_hash(receiver)
    chosen = transferred_layers(toy_model.shape.n_layers, 0.5, end)
    partial, _ = kvcache.patch_kv(receiver, donor, partial_spec(chosen))
    assert (kvcache.cache_hash(donor), kvcache.cache_hash(receiver)) == before
    for layer in range(toy_model.shape.n_layers):
        source = donor if layer in chosen else receiver
        assert all(torch.equal(x, y) for x, y in zip(kvcache.layer_kv(partial, layer), kvcache.layer_kv(source, layer)))
        assert kvcache.layer_is_sliding(partial, layer) == kvcache.layer_is_sliding(receiver, layer)
        assert kvcache.layer_window(partial, layer) == kvcache.layer_window(receiver, layer)
        assert kvcache.held_range(partial, layer) == kvcache.held_range(receiver, layer)


def test_sliding_layers_past_their_window_keep_window_semantics(toy_gemma3: LoadedModel, bank: PromptBank) -> None:
    # bug: a transferred sliding layer that forgets its count of positions seen (wrong mask and rotary position on
    # the next token) or that claims to hold evicted positions
    pair = pairs_of(toy_gemma3, bank, 1)[0]
    n_prefix = pair.n_tokens - 1
    sliding = [i for i in range(toy_gemma3.shape.n_layers) if kvcache.layer_window(own_prefill(toy_gemma3, pair.baseline_ids), i)]
    window = kvcache.layer_window(own_prefill(toy_gemma3, pair.baseline_ids), sliding[0])
    assert sliding and window is not None and n_prefix > window  # the prompt is past the window
    full, report = prefixes(toy_gemma3, pair, partial_spec(tuple(range(toy_gemma3.shape.n_layers))))
    evicted = report.not_applicable_for_row(0)
    assert set(evicted) == set(sliding) and all(len(p) == n_prefix - (kvcache.held_range(full, i)[1]
                                                                      - kvcache.held_range(full, i)[0])
                                                for i, p in evicted.items())
    donor = own_prefill(toy_gemma3, pair.recursive_ids)
    assert kvcache.cache_hash(full) == kvcache.cache_hash(donor)
    last = torch.tensor([pair.baseline_ids[-1]])
    a, b = kvcache.DecodeState(full), kvcache.DecodeState(donor)
    for token in (last, torch.tensor([5]), torch.tensor([7])):
        assert torch.equal(a.step(toy_gemma3.model, token).logits, b.step(toy_gemma3.model, token).logits)
    assert a.next_positions == (pair.n_tokens + 2,)


def _manual_greedy(lm: LoadedModel, state: kvcache.Prefill, first: int, steps: int) -> tuple[torch.Tensor, list[int]]:
    """First-step logits and ``steps`` greedy tokens decoded by hand with DecodeState."""
    decoder, token, tokens, first_logits = kvcache.DecodeState(state), torch.tensor([first]), [], None
    for _ in range(steps):
        logits = decoder.step(lm.model, token).logits
        first_logits = logits if first_logits is None else first_logits
        token = logits.argmax(dim=-1)
        tokens.append(int(token))
    return first_logits, tokens


def test_measured_fidelity_at_full_is_exact_and_matches_manual_decoding(toy_model: LoadedModel, bank: PromptBank) -> None:
    # bug: a reference that is not the donor's own cache, or a decode path that differs from DecodeState
    pairs = pairs_of(toy_model, bank, 2)
    short = DecodingRegime(DecodingMode.GREEDY, max_new_tokens=4, stop_at_eos=False)  # the registered regime, shorter
    fid = measure_partial_fidelity(toy_model, pairs, decoding=short, fractions=PARTIAL_FRACTIONS, batch_size=1)
    for end in LayerEnd:
        assert fid.kl[end].shape == fid.agreement[end].shape == (2, len(PARTIAL_FRACTIONS))
        assert np.all(fid.kl[end][:, -1] == 0.0) and np.all(fid.agreement[end][:, -1] == 1.0)
        assert np.all(fid.kl[end] >= 0.0) and np.all((fid.agreement[end] >= 0) & (fid.agreement[end] <= 1))
    assert np.array_equal(fid.kl[LayerEnd.FIRST][:, 0], fid.kl[LayerEnd.LAST][:, 0])  # one floor run for both ends
    pair = pairs[0]
    ref_logits, ref_tokens = _manual_greedy(toy_model, own_prefill(toy_model, pair.recursive_ids),
                                            pair.baseline_ids[-1], 4)
    floor_logits, floor_tokens = _manual_greedy(toy_model, own_prefill(toy_model, pair.baseline_ids),
                                                pair.baseline_ids[-1], 4)
    assert fid.kl[LayerEnd.FIRST][0, 0] == float(next_token_kl(ref_logits, floor_logits)[0])
    assert fid.agreement[LayerEnd.FIRST][0, 0] == greedy_agreement(ref_tokens, floor_tokens)


def test_unequal_lengths_and_missing_reference_are_refused(toy_llama: LoadedModel, bank: PromptBank) -> None:
    pair = pairs_of(toy_llama, bank, 1)[0]
    with pytest.raises(ValueError, match="include 1"):
        measure_partial_fidelity(toy_llama, [pair], decoding=PARTIAL_DECODING, fractions=(0.0, 0.5))
    short = TransferPair("cut", pair.recursive, pair.baseline, pair.recursive_ids[:-1], pair.baseline_ids, unmatched=True)
    with pytest.raises(ValueError, match="equal token length"):
        measure_partial_fidelity(toy_llama, [short], decoding=PARTIAL_DECODING, fractions=PARTIAL_FRACTIONS)


# ------------------------------------------------------------------------------------------- measures


LOGITS = st.lists(st.floats(min_value=-20, max_value=20, allow_nan=False), min_size=2, max_size=12)


@given(LOGITS, st.data())
def test_next_token_kl_is_the_textbook_kl(p_logits: list[float], data: st.DataObject) -> None:
    q_logits = data.draw(st.lists(st.floats(min_value=-20, max_value=20, allow_nan=False), min_size=len(p_logits),
                                  max_size=len(p_logits)))
    # float64 so that the shift below is exact (in float32, p + 3 re-rounds the logits and moves KL by ~1e-6)
    p, q = torch.tensor([p_logits], dtype=torch.float64), torch.tensor([q_logits], dtype=torch.float64)
    kl = float(next_token_kl(p, q)[0])
    expected = sps.entropy(torch.softmax(p.double(), -1)[0].numpy(), torch.softmax(q.double(), -1)[0].numpy())
    assert kl >= 0.0 and kl == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert float(next_token_kl(p, p)[0]) == 0.0
    assert float(next_token_kl(p + 3.0, q - 1.0)[0]) == pytest.approx(kl, rel=1e-6, abs=1e-9)  # shift-invariant


@given(st.lists(st.integers(0, 5), min_size=1, max_size=40), st.lists(st.integers(0, 5), max_size=40))
def test_greedy_agreement_is_the_positionwise_share_of_the_reference(ref: list[int], other: list[int]) -> None:
    share = greedy_agreement(ref, other)
    assert 0.0 <= share <= 1.0 and greedy_agreement(ref, ref) == 1.0
    assert share * len(ref) == pytest.approx(sum(a == b for a, b in zip(ref, other)))


# ---------------------------------------------------------------------------------------------- statistics


ROWS = st.integers(min_value=3, max_value=12)


@given(ROWS, st.integers(0, 2**32 - 1))
def test_fidelity_steps_telescope_to_the_whole_floor_to_full_distance(rows: int, seed: int) -> None:
    # bug: steps in the wrong units (nats instead of floor units) or a step left out
    rng = np.random.default_rng(seed)
    kl = np.sort(rng.gamma(2.0, 1.0, size=(rows, 5)), axis=1)[:, ::-1]
    kl[:, -1] = 0.0
    steps = fidelity_steps(-kl, level=0.95, rng=1, n_resamples=200)
    assert sum(s.estimate for s in steps) == pytest.approx(1.0)
    assert all(s.estimate >= 0 for s in steps)  # KL never rises along the rows → no negative step


def test_block_spearman_reads_rising_falling_and_flat_rows() -> None:
    rho = block_spearman(np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 1, 1, 1, 1]], dtype=float))
    assert rho.tolist() == pytest.approx([1.0, -1.0, 0.0])


def test_half_contrast_is_positive_when_the_last_layers_carry_more() -> None:
    first, last = np.array([-3.0, -2.5, -4.0, -3.3]), np.array([-1.0, -0.5, -2.2, -1.1])
    out = half_contrast(first, last, level=0.95, rng=0)
    assert out["estimate"] > 0 and out["n"] == 4
    assert half_contrast(first, first, level=0.95, rng=0)["ci_low"] == 0.0


# -------------------------------------------------------------------------------------------- the decision


def _trend_result(kl_first: np.ndarray, kl_last: np.ndarray):
    spec = get_claim("partial_layer_fidelity")
    trend = fidelity_trend({LayerEnd.FIRST: -kl_first, LayerEnd.LAST: -kl_last}, level=0.95, rng=3, n_resamples=500)
    return trend, evaluate(spec, model="toy", estimate=trend.estimate, p_value=trend.p_value,
                           step_cis=trend.step_cis, n=kl_first.shape[0])


def _falling(rows: int, rng: np.random.Generator) -> np.ndarray:
    """KL falling along the fractions with noise well under a step (the claim true)."""
    base = np.linspace(4.0, 0.0, 5)[None, :] * rng.uniform(0.8, 1.2, size=(rows, 1))
    kl = base + rng.uniform(0, 0.05, size=(rows, 5))
    kl[:, -1] = 0.0
    return kl


@settings(max_examples=5)
@given(st.integers(0, 2**32 - 1))
def test_a_clean_fall_on_both_ends_passes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = get_claim("partial_layer_fidelity").planned_n
    trend, result = _trend_result(_falling(n, rng), _falling(n, rng))
    assert len(trend.step_cis) == 8 and trend.estimate > 0.9
    assert result.verdict is Verdict.PASS, result.explanation


@settings(max_examples=5)
@given(st.integers(0, 2**32 - 1))
def test_one_end_that_moves_away_from_the_full_cache_fails(seed: int) -> None:
    # bug: deciding on one end only, or averaging the ends so that a reversal on one is hidden by the other
    rng = np.random.default_rng(seed)
    n = get_claim("partial_layer_fidelity").planned_n
    bad = _falling(n, rng)
    bad[:, 1:4] = bad[:, [0]] + np.array([0.5, 1.0, 1.5]) + rng.uniform(0, 0.05, size=(n, 3))  # worse than the floor
    trend, result = _trend_result(_falling(n, rng), bad)
    assert trend.per_end["last"]["mean_rho"] < trend.per_end["first"]["mean_rho"]
    assert result.verdict is Verdict.FAIL, result.explanation


def test_fewer_pairs_than_planned_is_inconclusive() -> None:
    rng = np.random.default_rng(0)
    _, result = _trend_result(_falling(6, rng), _falling(6, rng))
    assert result.verdict is Verdict.INCONCLUSIVE and "planned" in result.explanation


# ------------------------------------------------------------------------------------------------ figure


def _record(model: str, n_layers: int) -> dict:
    curve = {"estimate": [2.0, 1.5, 1.0, 0.5, 0.0], "ci_low": [1.8, 1.3, 0.8, 0.3, None],
             "ci_high": [2.2, 1.7, 1.2, 0.7, None]}
    agree = {"estimate": [0.1, 0.3, 0.5, 0.8, 1.0], "ci_low": [0.0, 0.2, 0.4, 0.7, None],
             "ci_high": [0.2, 0.4, 0.6, 0.9, None]}
    return {"claim": "partial_layer_fidelity", "model": model, "n": 24, "verdict": "PASS",
            "details": {"synthetic": True, "fidelity_curves": {
                "fractions": list(PARTIAL_FRACTIONS), "n_layers": n_layers, "ci_level": 0.95,
                "kl": {"first": curve, "last": curve}, "agreement": {"first": agree, "last": agree}}}}


def test_fidelity_figure_is_drawn_per_model_from_its_details(tmp_path: Path) -> None:
    assert "partial_fidelity" in FIGURES
    written = write_figures([_record("toy-a", 30), _record("toy-b", 18)], tmp_path)
    assert written == {"partial_layer_fidelity": ["partial_fidelity-partial_layer_fidelity.png"]}
    assert (tmp_path / "partial_fidelity-partial_layer_fidelity.pdf").exists()
    broken = _record("toy-a", 30)
    del broken["details"]["fidelity_curves"]["kl"]["last"]
    with pytest.raises(ValueError, match="partial_layer_fidelity"):
        write_figures([broken], tmp_path)
