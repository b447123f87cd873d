"""The cross-model cache projector: token alignment by character spans, the projector's cache, its training on a toy
pair, its store, and the statistics and decision of ``projector_transfers_context``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.claim.verdicts import Verdict, evaluate
from harness.engine import kvcache
from harness.engine.kv_math import rotate_keys
from harness.engine.tokens import pad_id
from harness.exchange.alignment import AlignmentError, align_by_last_character, tokenize_with_spans
from harness.exchange.projector.evaluation import BASELINE_CONDITIONS, CONDITIONS, gap_closed, summarize_losses
from harness.exchange.projector.model import (
    CacheGeometry,
    CacheProjector,
    continuation_nll,
    layer_map,
    projected_snapshot,
    receiver_frame,
    receiver_own_snapshot,
    sharer_context,
)
from harness.exchange.projector.texts import ProjectorText, TextSet, load_text_set, word_runs
from harness.exchange.projector.training import (
    TrainingSettings,
    derangement,
    load_projector,
    obtain_projector,
    projector_key,
    train_projector,
)
from harness.registry import get_claim
from harness.registry.exchange_claims import PROJECTOR_BASELINES
from harness.report.figures.training_curve import running_mean

WORDS = "the cat sat on a mat while dogs ran far away from home and birds sang songs all day long".split()
TOY_TEXTS = tuple(ProjectorText(f"t{i}", "toy", " ".join(WORDS[i:i + 3]), " " + " ".join(WORDS[i + 3:i + 7]))
                  for i in range(8))
TOY_SET = TextSet(train=TOY_TEXTS, heldout=TOY_TEXTS[:4], sha256="toy", source="toy")


# ----------------------------------------------------------------------------------------------- alignment

def test_alignment_on_hand_made_tokenizations() -> None:
    # "Hello world, the cat": receiver splits "Hello| world|,| the| cat"; sharer "Hel|lo world|, the| c|at"
    receiver = [(0, 5), (5, 11), (11, 12), (12, 16), (16, 20)]
    sharer = [(0, 3), (3, 11), (11, 16), (16, 18), (18, 20)]
    assert align_by_last_character(receiver, sharer) == (1, 1, 2, 2, 4)
    assert align_by_last_character(sharer, receiver) == (0, 1, 3, 4, 4)


def test_alignment_fallback_when_a_character_is_dropped() -> None:
    # the sharer drops the space at 5: receiver token (5, 6) " " ends on it → nearest sharer token ending before it
    receiver = [(0, 5), (5, 6), (6, 11)]
    sharer = [(0, 5), (6, 11)]
    assert align_by_last_character(receiver, sharer) == (0, 0, 1)
    assert align_by_last_character([(0, 2)], [(3, 5)]) == (0,)


@pytest.mark.parametrize("spans", [[], [(0, 0)], [(0, 3), (2, 5)], [(3, 5), (0, 2)]])
def test_alignment_rejects_bad_spans(spans: list[tuple[int, int]]) -> None:
    with pytest.raises(AlignmentError):
        align_by_last_character(spans, [(0, 5)])


@st.composite
def two_tokenizations(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    length = draw(st.integers(2, 60))

    def cut() -> list[tuple[int, int]]:
        inner = sorted(draw(st.sets(st.integers(1, length - 1), max_size=length - 1)))
        bounds = [0, *inner, length]
        return list(zip(bounds[:-1], bounds[1:]))

    return cut(), cut()


@given(two_tokenizations())
def test_alignment_covers_each_last_character(pair: tuple[list[tuple[int, int]], list[tuple[int, int]]]) -> None:
    receiver, sharer = pair
    chosen = align_by_last_character(receiver, sharer)
    assert len(chosen) == len(receiver)
    for (_, end), j in zip(receiver, chosen):
        start, stop = sharer[j]
        assert start <= end - 1 < stop
    assert list(chosen) == sorted(chosen)
    assert align_by_last_character(receiver, receiver) == tuple(range(len(receiver)))


class _FakeTokenizer:
    """Offsets as a BOS-adding fast tokenizer gives them: (0, 0) for the special token, then one token per word."""

    def __call__(self, text: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        spans, start = [], 0
        for word in text.split(" "):
            spans.append((start, start + len(word)))
            start += len(word) + 1
        return {"input_ids": [2] + list(range(10, 10 + len(spans))), "offset_mapping": [(0, 0), *spans]}


def test_tokenize_with_spans_finds_the_special_prefix(toy_llama) -> None:
    text = tokenize_with_spans(_FakeTokenizer(), "ab cd e")
    assert text.n_special == 1 and text.spans == ((0, 2), (3, 5), (6, 7)) and text.content_ids == (10, 11, 12)
    plain = tokenize_with_spans(toy_llama.tokenizer, "the cat sat")
    assert plain.n_special == 0 and "".join("the cat sat"[a:b] for a, b in plain.spans) == "the cat sat"


# ------------------------------------------------------------------------------------------ pure functions

@given(st.integers(1, 64), st.integers(1, 64))
def test_layer_map_spans_the_sharer_monotonically(sharer_layers: int, receiver_layers: int) -> None:
    m = layer_map(sharer_layers, receiver_layers)
    assert len(m) == receiver_layers and list(m) == sorted(m)
    assert all(0 <= s < sharer_layers for s in m) and m[-1] == sharer_layers - 1
    if receiver_layers > 1:
        assert m[0] == 0


@given(st.integers(2, 300), st.integers(0, 2**32))
def test_derangement_has_no_fixed_point(n: int, seed: int) -> None:
    d = derangement(n, seed)
    assert sorted(d) == list(range(n)) and all(d[i] != i for i in range(n))
    assert d == derangement(n, seed)


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50), st.integers(1, 12))
def test_running_mean_matches_a_direct_mean(values: list[float], window: int) -> None:
    out = running_mean(values, window)
    for i, v in enumerate(out):
        assert math.isclose(v, float(np.mean(values[max(0, i - window + 1):i + 1])), rel_tol=1e-9, abs_tol=1e-6)


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=30))
def test_gap_closed_is_zero_at_none_one_at_own(rows: list[tuple[float, float, float]]) -> None:
    none, projected, own = (list(c) for c in zip(*rows))
    for (a, p, o), g in zip(rows, gap_closed(none, projected, own)):
        if a - o <= 0 or not math.isfinite((a - p) / (a - o)):
            assert g is None  # no gap, or one so small (subnormal) that the ratio overflows
        else:
            assert g is not None and math.isclose(g * (a - o), a - p, rel_tol=1e-9, abs_tol=1e-9)
    assert gap_closed([2.225073858507e-311], [1.0], [0.0]) == [None]  # the case hypothesis found
    defined = [g for g in gap_closed(none, own, own) if g is not None]
    assert all(math.isclose(g, 1.0) for g in defined)
    assert all(g == 0.0 for g in gap_closed(none, none, own) if g is not None)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.floats(0.5, 8.0), min_size=5, max_size=20), st.floats(-1.0, 1.0), st.integers(0, 1000))
def test_summary_estimate_and_contrasts_are_mean_differences(base: list[float], shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    projected = np.array(base)
    losses = {c: list(projected + shift + rng.normal(0, 0.2, projected.size)) for c in CONDITIONS}
    losses["projected"] = list(projected)
    s = summarize_losses(losses, 0.95, seed)
    assert math.isclose(s.estimate, float(np.mean(np.array(losses["none"]) - projected)), abs_tol=1e-9)
    assert s.ci[0] <= s.estimate <= s.ci[1]
    assert set(s.contrasts) == set(BASELINE_CONDITIONS)
    for name, (est, low, high) in s.contrasts.items():
        assert math.isclose(est, float(np.mean(np.array(losses[name]) - projected)), abs_tol=1e-9)
        assert low <= est <= high


@given(st.floats(-1, 1), st.floats(0, 1), st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 1)), min_size=3,
                                                       max_size=3))
def test_decision_passes_only_when_every_interval_is_above_zero(low: float, width: float,
                                                                 contrasts: list[tuple[float, float]]) -> None:
    spec = get_claim("projector_transfers_context")
    cis = {name: (lo, lo + w) for name, (lo, w) in zip(PROJECTOR_BASELINES, contrasts)}
    result = evaluate(spec, model="m", estimate=low + width / 2, ci_low=low, ci_high=low + width,
                      n=spec.planned_n, contrast_cis=cis)
    all_above = low > 0 and all(lo > 0 for lo, _ in cis.values())
    assert (result.verdict is Verdict.PASS) == all_above
    any_wrong = low + width <= 0 or any(hi <= 0 for _, hi in cis.values())
    assert (result.verdict is Verdict.FAIL) == any_wrong
    short = evaluate(spec, model="m", estimate=1.0, ci_low=0.5, ci_high=1.5, n=spec.planned_n - 1,
                     contrast_cis={name: (0.5, 1.0) for name in PROJECTOR_BASELINES})
    assert short.verdict is Verdict.INCONCLUSIVE


def test_registered_text_set_is_disjoint_and_large_enough() -> None:
    texts = load_text_set()
    assert len(texts.heldout) >= get_claim("projector_transfers_context").planned_n
    held = set().union(*(word_runs(t) for t in texts.heldout))
    assert not any(word_runs(t) & held for t in texts.train)
    assert all(t.continuation.startswith(" ") for t in texts.train + texts.heldout)


# ---------------------------------------------------------------------------------- engine on toy models

def test_logits_after_own_cache_equals_one_forward(toy_model) -> None:
    ids = tokenize_with_spans(toy_model.tokenizer, "the cat sat on").ids
    cont = list(tokenize_with_spans(toy_model.tokenizer, "a mat while dogs").ids)
    snap = kvcache.export_kv(kvcache.prefill(toy_model.model, [list(ids)], pad_id=pad_id(toy_model.tokenizer)))
    before = [k.clone() for k in snap.keys]
    with torch.no_grad():
        after = kvcache.logits_after(toy_model.model, snap, cont)
        full = toy_model.model(input_ids=torch.tensor([list(ids) + cont])).logits[0, len(ids):].float()
    assert torch.allclose(after, full, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(before, snap.keys))


def test_untrained_projector_gives_a_context_free_cache_at_receiver_phases(toy_llama, toy_gemma3) -> None:
    frame = receiver_frame(toy_gemma3)
    proj = CacheProjector(CacheGeometry.of(toy_llama), CacheGeometry.of(toy_gemma3))
    with torch.no_grad():
        proj.bias_k.normal_()
    a = sharer_context(toy_llama, toy_gemma3, "the cat sat on")
    b = sharer_context(toy_llama, toy_gemma3, "dogs ran far away")
    assert a.features.shape[1] == b.features.shape[1]
    sa, sb = projected_snapshot(proj, frame, a.features), projected_snapshot(proj, frame, b.features)
    assert all(torch.equal(x, y) for x, y in zip(sa.keys, sb.keys))
    n = a.features.shape[1]
    for layer in range(toy_gemma3.shape.n_layers):
        bias = proj.bias_k[layer].detach().reshape(toy_gemma3.shape.n_kv_heads, 1, -1).expand(-1, n, -1)
        expected = rotate_keys(bias, torch.arange(frame.n_special, frame.n_special + n), frame.rope_inv_freq[layer])
        assert torch.allclose(sa.keys[layer][0, :, frame.n_special:], expected, atol=1e-5)


def test_gradients_reach_the_projector_only(toy_llama, toy_gemma3) -> None:
    frame = receiver_frame(toy_gemma3)
    proj = CacheProjector(CacheGeometry.of(toy_llama), CacheGeometry.of(toy_gemma3))
    with torch.no_grad():
        proj.weight_k.normal_(0, 0.1)
        proj.weight_v.normal_(0, 0.1)
    ctx = sharer_context(toy_llama, toy_gemma3, "the cat sat on")
    params = [p for p in toy_gemma3.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        loss = continuation_nll(toy_gemma3, projected_snapshot(proj, frame, ctx.features), [264, 2644, 2643, 30])
        loss.backward()
    finally:
        for p in params:
            p.requires_grad_(True)
    assert proj.weight_k.grad is not None and proj.weight_k.grad.abs().sum() > 0
    assert proj.weight_v.grad is not None and proj.gate_logit.grad is not None
    assert all(p.grad is None for p in toy_gemma3.model.parameters())


def test_training_loss_falls_on_a_toy_pair(toy_llama, toy_gemma3) -> None:
    # sharer 4 layers × 2 KV heads, receiver 6 layers (5 sliding) × 1 KV head
    trained = train_projector(toy_llama, toy_gemma3, TOY_SET, TrainingSettings(steps=24, batch=4, lr=1e-2))
    curve = trained.curve
    assert len(curve) == 24 and all(math.isfinite(x) for x in curve)
    assert np.mean(curve[-6:]) < np.mean(curve[:6]) - 0.05


def test_store_round_trip_and_cached_mode(toy_llama, toy_gemma3, tmp_path) -> None:
    st_ = TrainingSettings(steps=2, batch=2)
    assert obtain_projector(toy_llama, toy_gemma3, TOY_SET, st_, train=False, root=tmp_path) is None
    trained = obtain_projector(toy_llama, toy_gemma3, TOY_SET, st_, train=True, root=tmp_path)
    again = obtain_projector(toy_llama, toy_gemma3, TOY_SET, st_, train=False, root=tmp_path)
    assert trained is not None and again is not None and again.from_cache and not trained.from_cache
    assert again.curve == trained.curve and again.settings == st_
    for name, tensor in trained.projector.state_dict().items():
        assert torch.equal(tensor, again.projector.state_dict()[name])
    key = projector_key(toy_llama, toy_gemma3, TOY_SET, st_)[0]
    assert key == trained.key and load_projector(key, tmp_path) is not None
    assert projector_key(toy_llama, toy_gemma3, TOY_SET, TrainingSettings(steps=3, batch=2))[0] != key
    other = TextSet(TOY_SET.train, TOY_SET.heldout, "other", "toy")
    assert projector_key(toy_llama, toy_gemma3, other, st_)[0] != key
    assert projector_key(toy_gemma3, toy_llama, TOY_SET, st_)[0] != key


def test_own_cache_and_no_cache_losses_are_finite_and_differ(toy_llama) -> None:
    # the receiver's own cache and no cache both give finite losses; no direction is assumed on a random model
    text = tokenize_with_spans(toy_llama.tokenizer, "the cat sat on")
    cont = [264, 2644, 2643, 30]
    with torch.no_grad():
        own = continuation_nll(toy_llama, receiver_own_snapshot(toy_llama, text), cont)
        none = continuation_nll(toy_llama, None, cont)
    assert math.isfinite(float(own)) and math.isfinite(float(none)) and float(own) != float(none)


def test_any_projector_stored_sees_only_complete_entries(tmp_path) -> None:
    from harness.exchange.projector.training import any_projector_stored

    assert not any_projector_stored(tmp_path)  # no store at all
    entry = tmp_path / "projectors" / "somekey"
    entry.mkdir(parents=True)
    assert not any_projector_stored(tmp_path)  # a directory without weights (an interrupted write) is not a projector
    (entry / "projector.safetensors").write_bytes(b"x")
    assert any_projector_stored(tmp_path)


def test_registered_contrasts_are_conditions_the_evaluation_measures() -> None:
    """The registry names its projector contrasts without importing the measurement (layer rule); each must be a
    baseline :func:`summarize_losses` contrasts, or the claim would look up a contrast that is never computed."""
    assert set(PROJECTOR_BASELINES) <= set(BASELINE_CONDITIONS)
