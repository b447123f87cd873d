"""The behavioural experiment layer (harness.transfer) on toy models: pairs, conditions, cached runs, T.

Short continuations (a few tokens) keep these fast; the registered regime (48 tokens) runs in claims/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness import transfer as tr
from harness.engine.generation import CaptureSpec, GenerationRequest, generate
from harness.engine.patch_specs import ActivationPatchSpec, ControlKind, KVPatchSpec, PatchMode, Span
from harness.engine.tokens import encode
from harness.foundation.decoding import DecodingMode, DecodingRegime
from harness.models import LoadedModel
from harness.prompts import pairing
from harness.registry import BEHAVIOUR_DECODING
from harness.runtime import measurement_store
from harness.runtime.measurement_store import MeasurementStore
from harness.transfer import runner

SHORT = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=5)


@pytest.fixture(scope="module")
def pairs(toy_llama: LoadedModel, bank) -> list[pairing.TransferPair]:
    return pairing.select_pairs(toy_llama, bank, 3, roles=(pairing.PairRole.RECURSIVE, pairing.PairRole.BASELINE, pairing.PairRole.OTHER_BASELINE))


def _cache(tmp_path: Path, mode: str = "readwrite") -> MeasurementStore:
    return MeasurementStore(tmp_path / "measurements", mode)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ pairs


def test_pairs_have_exactly_equal_token_lengths_and_a_distinct_same_length_other_baseline(toy_llama, bank):
    all_pairs = pairing.transfer_pairs(toy_llama, bank)
    assert len(all_pairs) >= 10
    assert len({p.id for p in all_pairs}) == len(all_pairs)
    for p in all_pairs:
        assert p.recursive_ids == tuple(encode(toy_llama.tokenizer, p.recursive.text))
        assert len(p.recursive_ids) == len(p.baseline_ids)
        if p.other_baseline is not None:
            assert p.other_baseline.group == "baseline" and p.other_baseline.id != p.baseline.id
            assert len(p.other_baseline_ids) == len(p.baseline_ids)


def test_pair_order_interleaves_levels_and_is_stable(toy_llama, bank):
    first = pairing.transfer_pairs(toy_llama, bank)
    assert [p.id for p in first] == [p.id for p in pairing.transfer_pairs(toy_llama, bank)]
    assert [p.recursive.level for p in first[:10]] == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]


def test_select_pairs_filters_on_roles_and_takes_a_prefix(toy_llama, bank):
    everything = pairing.transfer_pairs(toy_llama, bank)
    assert [p.id for p in pairing.select_pairs(toy_llama, bank, 7)] == [p.id for p in everything[:7]]
    with_other = pairing.select_pairs(toy_llama, bank, 500, roles=(pairing.PairRole.BASELINE, pairing.PairRole.OTHER_BASELINE))
    assert with_other and all(p.other_baseline is not None for p in with_other)
    assert len(with_other) == sum(p.other_baseline is not None for p in everything)


def test_make_pair_rejects_unequal_lengths(toy_llama, bank):
    short = min(bank.group("baseline"), key=lambda p: len(p.text))
    long = max(bank.group("recursive"), key=lambda p: len(p.text))
    with pytest.raises(ValueError, match="exactly equal lengths"):
        pairing.make_pair(toy_llama, long, short)


def test_other_recursive_is_a_distinct_same_length_recursive_prompt(toy_llama, bank):
    everything = pairing.transfer_pairs(toy_llama, bank)
    with_other = [p for p in everything if p.has(pairing.PairRole.OTHER_RECURSIVE)]
    assert with_other
    for p in with_other:
        other, ids = p.prompt(pairing.PairRole.OTHER_RECURSIVE)
        assert other.group == "recursive" and other.id != p.recursive.id and len(ids) == len(p.recursive_ids)
    variant = pairing.unmatched_pairs(toy_llama, bank)
    assert all(p.other_recursive is not None and p.other_recursive.id != p.recursive.id for p in variant)


def test_pair_without_other_baseline_says_so(toy_llama, bank):
    p = pairing.select_pairs(toy_llama, bank, 1)[0]
    lonely = pairing.TransferPair(p.id, p.recursive, p.baseline, p.recursive_ids, p.baseline_ids)
    assert not lonely.has(pairing.PairRole.OTHER_BASELINE)
    with pytest.raises(ValueError, match="no other baseline"):
        lonely.prompt(pairing.PairRole.OTHER_BASELINE)
    with pytest.raises(ValueError, match="needs the other_baseline prompt"):
        tr.run_condition(toy_llama, [lonely], tr.CROSS_BASELINE, decoding=SHORT, run_seed=0)


# ------------------------------------------------------------------------------------------- conditions


def test_layer_sets_resolve_against_the_model(toy_llama, toy_gemma3):
    for lm in (toy_llama, toy_gemma3):
        n = lm.shape.n_layers
        assert tr.LayerSet.patch_set().resolve(lm) == tuple(range(n // 2, n)) == lm.layers.patch_layers
        assert tr.LayerSet.late().resolve(lm) == (lm.layers.late,)
        peak = tr.LayerSet.around_late(2).resolve(lm)
        assert lm.layers.late in peak and peak == tuple(range(max(0, lm.layers.late - 2), min(n, lm.layers.late + 3)))
        quarters = [layer for q in range(4) for layer in tr.LayerSet.quarter_of(q).resolve(lm)]
        assert quarters == list(range(n))
    with pytest.raises(ValueError, match="do not exist"):
        tr.LayerSet.explicit([99]).resolve(toy_llama)


def test_catalogue_roles_and_resolved_specs(toy_llama):
    assert tr.kv_alpha(0.0) is tr.NATURAL_BASELINE and tr.kv_alpha(1.0) is tr.KV_MAIN
    assert tr.NATURAL_BASELINE.patch_for(toy_llama, "p", 0) is None
    main = tr.KV_MAIN.patch_for(toy_llama, "p", 0)
    assert isinstance(main, KVPatchSpec) and main.layers == toy_llama.layers.patch_layers and main.alpha == 1.0
    assert main.span == Span.all() and main.control is None
    assert tr.KV_SINGLE_LATE.patch_for(toy_llama, "p", 0).layers == (toy_llama.layers.late,)
    v = tr.V_PATCH_LATE.patch_for(toy_llama, "p", 0)
    assert isinstance(v, ActivationPatchSpec) and v.layer == toy_llama.layers.late and v.mode is PatchMode.PERSISTENT
    assert (tr.REVERSE.recipient, tr.REVERSE.donor) == (pairing.PairRole.RECURSIVE, pairing.PairRole.BASELINE)
    assert (tr.CROSS_BASELINE.recipient, tr.CROSS_BASELINE.donor) == (pairing.PairRole.BASELINE, pairing.PairRole.OTHER_BASELINE)
    assert (tr.REVERSE_RECURSIVE_DONOR.recipient, tr.REVERSE_RECURSIVE_DONOR.donor) == (
        pairing.PairRole.RECURSIVE, pairing.PairRole.OTHER_RECURSIVE)
    assert (tr.REVERSE_RANDOM.recipient, tr.REVERSE_RANDOM.donor) == (pairing.PairRole.RECURSIVE, pairing.PairRole.BASELINE)
    assert tr.REVERSE_RANDOM.control is ControlKind.RANDOM_NORM_MATCHED
    with pytest.raises(ValueError, match="shuffled and random controls only"):
        tr.kv_condition("x", control=ControlKind.CROSS_BASELINE, reversed_roles=True)
    for c in (tr.ORDER_ABLATION, tr.RANDOM_NORM_MATCHED):
        assert (c.recipient, c.donor) == (pairing.PairRole.BASELINE, pairing.PairRole.RECURSIVE)
        a, b = c.patch_for(toy_llama, "p", 0), c.patch_for(toy_llama, "p", 1)
        assert a.control.kind is c.control and a.control.seed != b.control.seed  # seeded from the run seed
    specs = [(c.recipient, c.donor, repr(c.patch_for(toy_llama, "p", 0))) for c in tr.CATALOGUE.values()]
    assert len(set(specs)) == len(specs)  # every named condition is a distinct experiment


def test_pair_positions_override_the_span_for_listed_pairs(toy_llama):
    c = tr.kv_condition("self_ref", pair_positions={"a": [2, 5]})
    assert c.patch_for(toy_llama, "a", 0).span == Span.at([2, 5])
    assert c.patch_for(toy_llama, "b", 0).span == Span.all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="x", recipient=pairing.PairRole.BASELINE, donor=pairing.PairRole.RECURSIVE), "donor is needed exactly"),
        (dict(name="x", recipient=pairing.PairRole.BASELINE, intervention=tr.Intervention.KV), "donor is needed exactly"),
        (dict(name="x", recipient=pairing.PairRole.BASELINE, donor=pairing.PairRole.RECURSIVE, intervention=tr.Intervention.KV),
         "needs a LayerSet"),
        (dict(name="x", recipient=pairing.PairRole.RECURSIVE, donor=pairing.PairRole.BASELINE, intervention=tr.Intervention.KV,
              layers=tr.LayerSet.late()), "recipient is baseline"),
        (dict(name="x", recipient=pairing.PairRole.BASELINE, donor=pairing.PairRole.RECURSIVE, intervention=tr.Intervention.KV,
              layers=tr.LayerSet.late(), control=ControlKind.REVERSE), "reverse control needs"),
        (dict(name="x", recipient=pairing.PairRole.BASELINE, donor=pairing.PairRole.RECURSIVE, intervention=tr.Intervention.V_PROJ,
              layers=tr.LayerSet.late(), control=ControlKind.SHUFFLED), "KV patches only"),
    ],
)
def test_invalid_conditions_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tr.Condition(**kwargs)


def test_activation_condition_needs_one_layer(toy_llama):
    c = tr.activation_condition("v_peak", layer=tr.LayerSet.around_late(1))
    with pytest.raises(ValueError, match="writes one layer"):
        c.patch_for(toy_llama, "p", 0)


def _first_logits(lm: LoadedModel, pairs, condition: tr.Condition) -> torch.Tensor:
    requests = [
        GenerationRequest(p.id, p.prompt(condition.recipient)[1],
                          p.prompt(condition.donor)[1] if condition.donor is not None else None)
        for p in pairs
    ]
    out = []
    for r, p in zip(requests, pairs):  # one call per pair: controls are seeded per pair id
        (rec,) = generate(lm, [r], decoding=SHORT, patch=condition.patch_for(lm, p.id, 0),
                          keep_first_logits=True)
        out.append(rec.first_logits)
    return torch.stack(out)


def test_conditions_differ_where_they_must(toy_model, bank):
    pairs = pairing.select_pairs(toy_model, bank, 2, roles=(pairing.PairRole.RECURSIVE, pairing.PairRole.BASELINE,
                                                             pairing.PairRole.OTHER_BASELINE, pairing.PairRole.OTHER_RECURSIVE))
    logits = {
        c.name: _first_logits(toy_model, pairs, c)
        for c in (tr.NATURAL_BASELINE, tr.NATURAL_RECURSIVE, *tr.CATALOGUE.values())
    }
    must_differ = [
        ("natural_baseline", "kv_main"), ("natural_recursive", "kv_main"), ("kv_main", "order_ablation"),
        ("kv_main", "control_random"), ("kv_main", "control_cross_baseline"), ("kv_main", "kv_alpha_0.5"),
        ("kv_main", "kv_single_late"), ("natural_baseline", "v_patch_late"), ("natural_recursive", "reverse"),
        ("natural_baseline", "control_cross_baseline"), ("natural_baseline", "kv_alpha_0.25"),
        ("reverse", "reverse_recursive_donor"), ("reverse", "reverse_random"), ("natural_recursive", "reverse_random"),
        ("natural_recursive", "reverse_recursive_donor"),
    ]
    for a, b in must_differ:
        diff = (logits[a] - logits[b]).abs().amax(dim=-1)
        assert bool((diff > 1e-5).all()), f"{a} and {b} give the same first-step logits: {diff.tolist()}"


def test_alpha_zero_patch_equals_natural_baseline(toy_model, bank, tmp_path):
    pairs = pairing.select_pairs(toy_model, bank, 3)
    zero = tr.kv_condition("kv_alpha_0_explicit", alpha=0.0)
    assert torch.equal(_first_logits(toy_model, pairs, zero), _first_logits(toy_model, pairs, tr.NATURAL_BASELINE))
    patched = tr.run_condition(toy_model, pairs, zero, decoding=SHORT, run_seed=0, progress=False)
    natural = tr.run_condition(toy_model, pairs, tr.NATURAL_BASELINE, decoding=SHORT, run_seed=0, progress=False)
    assert [o.samples for o in patched.outcomes] == [o.samples for o in natural.outcomes]


# -------------------------------------------------------------------------------------------- caching


def test_cached_outcomes_are_identical_and_skip_generation(toy_llama, pairs, tmp_path, monkeypatch):
    cache = _cache(tmp_path)
    capture = CaptureSpec(v_layers=(toy_llama.layers.late,), entropy_layers=(0,))
    first = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache,
                             capture=capture, progress=False)

    def no_generation(*args, **kwargs):
        raise AssertionError("a cached condition must not generate")

    monkeypatch.setattr(runner, "generate", no_generation)
    again = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache,
                             capture=capture, progress=False)
    assert again.outcomes == first.outcomes
    for a, b in zip(first.outcomes, again.outcomes):
        for sa, sb in zip(a.samples, b.samples):
            assert sa.v.keys() == {toy_llama.layers.late} and sa.entropy.keys() == {0}
            assert sa.v[toy_llama.layers.late].shape == (len(sa.generated_ids), toy_llama.shape.v_width)
            assert np.array_equal(sa.v[toy_llama.layers.late], sb.v[toy_llama.layers.late])
            assert np.array_equal(sa.entropy[0], sb.entropy[0])
    renamed = tr.kv_condition("same_experiment_other_name")  # the key is the experiment, not the label
    assert tr.run_condition(toy_llama, pairs, renamed, decoding=SHORT, run_seed=0, store=cache, capture=capture,
                            progress=False).scores().tolist() == first.scores().tolist()



def test_outcomes_are_stored_in_work_units_fixed_by_the_request(toy_llama, pairs, tmp_path, monkeypatch):
    """Units are runs of the unit size from the request's first pair: a longer request that starts with the same
    units reads them back; a request that cuts them elsewhere is other units (other keys), generated afresh."""
    assert len(pairs) >= 3
    cache = _cache(tmp_path)
    first = tr.run_condition(toy_llama, pairs[:2], tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache,
                             batch_size=2, progress=False)
    calls = []
    real = runner.generate
    monkeypatch.setattr(runner, "generate", lambda lm, requests, **kw: calls.append([r.pair_id for r in requests])
                        or real(lm, requests, **kw))
    longer = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, batch_size=2,
                              progress=False)
    assert longer.outcomes[:2] == first.outcomes
    assert sorted(i for call in calls for i in call) == sorted(p.id for p in pairs[2:])
    calls.clear()
    tr.run_condition(toy_llama, pairs[1:3], tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, batch_size=2,
                     progress=False)
    assert sorted(i for call in calls for i in call) == sorted([pairs[1].id, pairs[2].id])  # both were in other units


def test_cache_key_changes_with_what_determines_the_outcome(toy_llama, pairs, tmp_path, monkeypatch):
    cache = _cache(tmp_path)
    tr.run_condition(toy_llama, pairs, tr.ORDER_ABLATION, decoding=SHORT, run_seed=0, store=cache, progress=False)
    calls = []
    real = runner.generate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "generate", counting)
    longer = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=6)
    for decoding, seed in ((longer, 0), (SHORT, 1)):  # other decoding; other control seed
        before = len(calls)
        tr.run_condition(toy_llama, pairs, tr.ORDER_ABLATION, decoding=decoding, run_seed=seed, store=cache, progress=False)
        assert len(calls) > before
    before = len(calls)
    tr.run_condition(toy_llama, pairs, tr.NATURAL_BASELINE, decoding=SHORT, run_seed=0, store=cache, progress=False)
    tr.run_condition(toy_llama, pairs, tr.NATURAL_BASELINE, decoding=SHORT, run_seed=5, store=cache, progress=False)
    assert len(calls) == before + 1  # greedy natural runs do not depend on the run seed


def _engine_module_edited(tmp_path: Path, monkeypatch, module: str, edit) -> None:
    """Make the code fingerprint read ``module``'s source from an edited copy (as if the file had been edited)."""
    original = measurement_store._source_path(module, "harness")
    copy = tmp_path / f"edited_{module.rsplit('.', 1)[-1]}.py"
    copy.write_text(edit(original.read_text()))
    real = measurement_store._source_path
    monkeypatch.setattr(measurement_store, "_source_path",
                        lambda name, package: copy if name == module else real(name, package))
    measurement_store.clear_fingerprint_cache()


def _document_differently(source: str) -> str:
    """The same code with another module docstring, another function docstring and a new comment."""
    tree_doc = source.index('"""'), source.index('"""', source.index('"""') + 3) + 3
    source = source[: tree_doc[0]] + '"""Reworded module docstring."""' + source[tree_doc[1]:]
    source = source.replace('    """', '    """Reworded. ', 1)
    return source.replace("\nimport ", "\n# a comment added by a maintainer\nimport ", 1)


@pytest.fixture
def fresh_fingerprints():
    """Fingerprints are cached per process: forget them before and after a test that edits sources."""
    measurement_store.clear_fingerprint_cache()
    yield
    measurement_store.clear_fingerprint_cache()


def test_docstring_edit_in_an_engine_module_keeps_cached_continuations(toy_llama, pairs, tmp_path, monkeypatch,
                                                                        fresh_fingerprints):
    cache = _cache(tmp_path)
    first = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, progress=False)
    fingerprint = tr.engine_fingerprint()
    _engine_module_edited(tmp_path, monkeypatch, "harness.engine.kvcache", _document_differently)
    assert tr.engine_fingerprint() == fingerprint

    def no_generation(*args, **kwargs):
        raise AssertionError("a docstring edit must not invalidate cached continuations")

    monkeypatch.setattr(runner, "generate", no_generation)
    again = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, progress=False)
    assert again.outcomes == first.outcomes
    _engine_module_edited(tmp_path, monkeypatch, "harness.engine.kvcache", lambda src: src + "\n_EDITED_CODE = 1\n")
    assert tr.engine_fingerprint() != fingerprint
    with pytest.raises(AssertionError, match="must not invalidate"):  # a code edit does: it regenerates
        tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, progress=False)


def test_cached_continuations_are_rescored_by_the_current_scorer_without_regeneration(toy_llama, pairs, tmp_path,
                                                                                        monkeypatch):
    from dataclasses import replace

    cache = _cache(tmp_path)
    first = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, progress=False)
    calls = []
    real = runner.generate
    monkeypatch.setattr(runner, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    real_scores = runner.score_continuations

    def new_scorer_version(texts):  # stands for an edited scorer: a different lexicon score per text
        return [replace(s, lexicon_raw=float(len(t))) for t, s in zip(texts, real_scores(texts))]

    monkeypatch.setattr(runner, "score_continuations", new_scorer_version)
    monkeypatch.setattr(runner, "_SCORES", {})
    again = tr.run_condition(toy_llama, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, progress=False)
    assert calls == []  # read back, not regenerated
    for a, b in zip(first.outcomes, again.outcomes):
        for sa, sb in zip(a.samples, b.samples):
            assert sa.generated_ids == sb.generated_ids and sa.text == sb.text
            assert sb.score.lexicon_raw == float(len(sb.text))
            assert replace(sb.score, lexicon_raw=sa.score.lexicon_raw) == sa.score


def test_cache_off_recomputes_the_same_greedy_outcomes(toy_llama, pairs, tmp_path):
    a = tr.run_condition(toy_llama, pairs, tr.CROSS_BASELINE, decoding=SHORT, run_seed=0, progress=False)
    b = tr.run_condition(toy_llama, pairs, tr.CROSS_BASELINE, decoding=SHORT, run_seed=0,
                         store=_cache(tmp_path, "off"), progress=False)
    assert a.outcomes == b.outcomes
    assert not (tmp_path / "measurements").exists()
    for p, o in zip(pairs, a.outcomes):
        assert (o.recipient_id, o.donor_id) == (p.baseline.id, p.other_baseline.id)


def test_sampled_regime_averages_k_samples_per_pair(toy_llama, pairs):
    sampled = DecodingRegime.sampling(0.7, max_new_tokens=5, samples_per_pair=3)
    run = tr.run_condition(toy_llama, pairs, tr.NATURAL_RECURSIVE, decoding=sampled, run_seed=0, progress=False)
    for o in run.outcomes:
        assert [s.sample_index for s in o.samples] == [0, 1, 2]
        assert o.score("distinct_2") == pytest.approx(np.mean([s.score.distinct_2 for s in o.samples]))
    assert run.n_continuations == 3 * len(pairs)
    assert len({s.generated_ids for o in run.outcomes for s in o.samples}) > len(pairs)  # samples differ


def test_the_registered_regime_is_the_engine_regime():
    config = BEHAVIOUR_DECODING
    assert config.mode is DecodingMode.GREEDY and config.max_new_tokens == 48 and config.repetition_penalty == 1.2
    sampled = DecodingRegime.sampling(0.7, max_new_tokens=8, samples_per_pair=4)
    assert sampled.mode is DecodingMode.SAMPLING and sampled.temperature == 0.7 and sampled.repetition_penalty == 1.0


def test_v_patch_fires_on_decode_steps(toy_llama, pairs):
    run = tr.run_condition(toy_llama, pairs, tr.V_PATCH_LATE, decoding=SHORT, run_seed=0, progress=False)
    assert all(o.intervention_counts["decode"] > 0 and o.intervention_counts["prefill"] > 0 for o in run.outcomes)


def test_sliding_window_layers_list_evicted_positions_as_not_applicable(toy_gemma3, bank):
    pairs = pairing.select_pairs(toy_gemma3, bank, 2)
    run = tr.run_condition(toy_gemma3, pairs, tr.KV_MAIN, decoding=SHORT, run_seed=0, progress=False)
    # toy Gemma 3's sliding layers hold 8 positions, so most prompt positions are not applicable there
    sliding = set(toy_gemma3.shape.sliding_layers) & set(toy_gemma3.layers.patch_layers)
    for p, o in zip(pairs, run.outcomes):
        assert set(o.not_applicable) == sliding
        assert all(len(pos) == p.n_tokens - 1 - (toy_gemma3.shape.sliding_window - 1) for pos in o.not_applicable.values())


def test_standard_capture_keeps_early_and_late_v_downstream_of_any_v_patch(toy_llama, pairs):
    early, late = toy_llama.layers.early, toy_llama.layers.late
    natural = tr.run_condition(toy_llama, pairs[:1], tr.NATURAL_BASELINE, decoding=SHORT, run_seed=0, progress=False)
    sample = natural.outcomes[0].samples[0]
    assert set(sample.v) == {early, late} and sample.v[late].shape == (len(sample.generated_ids), toy_llama.shape.v_width)
    assert tr.standard_capture(toy_llama, tr.V_PATCH_LATE).v_layers == (early,)  # the patched site is not measured
    bare = tr.run_condition(toy_llama, pairs[:1], tr.NATURAL_BASELINE, decoding=SHORT, run_seed=0,
                            capture=CaptureSpec(), progress=False)
    assert bare.outcomes[0].samples[0].v == {} and bare.outcomes[0].samples == natural.outcomes[0].samples


def test_units_are_cut_from_the_candidates_so_prefix_requests_share_them(toy_llama, pairs, tmp_path, monkeypatch):
    """With ``candidates`` (a selection's whole qualifying list), a request for its first k pairs computes the whole
    unit it opens, and a later request for more of the same candidates reads that unit back."""
    cache = _cache(tmp_path)
    calls: list[list[str]] = []
    real = runner.generate
    monkeypatch.setattr(runner, "generate", lambda lm, requests, **kw: calls.append([r.pair_id for r in requests])
                        or real(lm, requests, **kw))
    short = tr.run_condition(toy_llama, pairs[:1], tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, batch_size=2,
                             progress=False, candidates=pairs)
    assert short.pair_ids == (pairs[0].id,)
    assert sorted(i for call in calls for i in call) == sorted(p.id for p in pairs[:2])  # the whole first unit
    calls.clear()
    longer = tr.run_condition(toy_llama, pairs[:2], tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, batch_size=2,
                              progress=False, candidates=pairs)
    assert calls == [] and longer.outcomes[0] == short.outcomes[0]
    with pytest.raises(ValueError, match="not among the candidates"):
        tr.run_condition(toy_llama, pairs[2:], tr.KV_MAIN, decoding=SHORT, run_seed=0, store=cache, batch_size=2,
                         progress=False, candidates=pairs[:2])
