"""Running a condition on pairs: batched generation, the per-pair on-disk cache, and scoring.

See :mod:`harness.transfer` for what the cache key holds and why outcomes cached from one batch stand for any other.
The cache holds continuations (tokens, text, captures), never scores: every run scores the texts with the
scorers as they are now, so a new scorer version re-scores cached continuations instead of regenerating them.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.behaviour import BehaviourScore, score_continuations
from harness.engine.generation import CaptureSpec, GenerationRequest, generate
from harness.engine.generation_records import GenerationRecord
from harness.foundation.decoding import DecodingMode, DecodingRegime
from harness.foundation.out_of_memory import is_out_of_memory
from harness.foundation.serialize import decode_array, encode_array, to_builtin
from harness.models import LoadedModel
from harness.prompts.pairing import TransferPair
from harness.runtime.measurement_store import ABSENT, MeasurementStore, code_fingerprint, unit_parts
from harness.runtime.progress import ProgressMeter
from harness.transfer.conditions import Condition, Intervention
from harness.transfer.outcomes import ConditionRun, Continuation, PairOutcome

__all__ = ["NOT_IN_ENGINE_KEY", "engine_fingerprint", "pair_key_parts", "run_condition", "standard_capture"]


NOT_IN_ENGINE_KEY = ("harness.behaviour",)
"""Packages left out of the continuation key: the cache stores continuations (token ids and texts), never
scores, and every run scores the cached texts with the current scorers, so a scorer change re-scores instead
of regenerating."""


def engine_fingerprint() -> str:
    """sha256 over the code (docstrings and comments aside) of this module and every harness module it reaches
    through imports (the decode loop, cache surgery, patch specs, hooks, records, conditions, ...) except
    :data:`NOT_IN_ENGINE_KEY`: editing any of that code invalidates cached continuations, editing a docstring
    does not. Computed once per process, when first asked."""
    return code_fingerprint([sys.modules[__name__]], exclude=NOT_IN_ENGINE_KEY)


def standard_capture(lm: LoadedModel, condition: Condition) -> CaptureSpec:
    """What :func:`run_condition` captures by default: V (``v_proj`` output) of every fed token at the model's
    early and late layers, so claims that need generated-token geometry share outcomes with those that do not.
    A layer whose ``v_proj`` output the condition itself patches is left out (not a downstream measurement)."""
    layers = {lm.layers.early, lm.layers.late}
    if condition.intervention is Intervention.V_PROJ:
        layers -= set(condition.layers.resolve(lm))  # type: ignore[union-attr]
    return CaptureSpec(v_layers=tuple(sorted(layers)))


def pair_key_parts(lm: LoadedModel, pair: TransferPair, condition: Condition, patch: Any, decoding: DecodingRegime,
                run_seed: int, capture: CaptureSpec, fingerprint: str) -> dict[str, Any]:
    """The cache-key parts of one pair's measurement under ``condition``: model identity, pair id, recipient and
    donor token ids, the resolved ``patch``, the decoding regime, the run seed (sampling only), the capture spec and
    the code ``fingerprint`` (condition names are not part of it)."""
    _, recipient_ids = pair.prompt(condition.recipient)
    donor = pair.prompt(condition.donor)[1] if condition.donor is not None else None
    return {
        "model": lm.identity,
        "pair_id": pair.id,
        "recipient_ids": list(recipient_ids),
        "donor_ids": list(donor) if donor is not None else None,
        "patch": to_builtin(patch, nonfinite="keep"),
        "decoding": to_builtin(decoding, nonfinite="keep"),
        "run_seed": run_seed if decoding.mode is DecodingMode.SAMPLING else None,
        "capture": to_builtin(capture, nonfinite="keep"),
        "code": fingerprint,
    }


def _stored(records_: Sequence[GenerationRecord], recipient_id: str, donor_id: str | None) -> dict[str, Any]:
    first = records_[0]
    return {
        "recipient_id": recipient_id,
        "donor_id": donor_id,
        "first_position": first.first_position,
        "not_applicable": {str(k): list(v) for k, v in first.not_applicable.items()},
        "intervention_counts": first.intervention_counts,
        "decode": first.decode_plan,
        "samples": [
            {
                "sample_index": r.sample_index,
                "text": r.text,
                "generated_ids": list(r.generated_ids),
                "stopped_at_eos": r.stopped_at_eos,
                "min_top2_gap": r.min_gap() if r.top2_gaps else None,
                "v": {str(k): encode_array(v) for k, v in r.v_captures.items()},
                "entropy": {str(k): encode_array(v) for k, v in r.attention_entropy.items()},
            }
            for r in records_
        ],
    }


def _outcome(pair_id: str, condition: Condition, stored: Mapping[str, Any]) -> PairOutcome:
    """The typed outcome of a stored entry, each continuation scored by :func:`score_texts`."""
    scores = score_texts([s["text"] for s in stored["samples"]])
    samples = tuple(
        Continuation(
            sample_index=s["sample_index"],
            text=s["text"],
            generated_ids=tuple(s["generated_ids"]),
            stopped_at_eos=s["stopped_at_eos"],
            min_top2_gap=math.inf if s["min_top2_gap"] is None else float(s["min_top2_gap"]),
            score=score,
            v={int(k): decode_array(v) for k, v in s["v"].items()},
            entropy={int(k): decode_array(v) for k, v in s["entropy"].items()},
        )
        for s, score in zip(stored["samples"], scores)
    )
    return PairOutcome(
        pair_id=pair_id,
        condition=condition.name,
        recipient_id=stored["recipient_id"],
        donor_id=stored["donor_id"],
        first_position=stored["first_position"],
        samples=samples,
        not_applicable={int(k): tuple(v) for k, v in stored["not_applicable"].items()},
        intervention_counts=stored["intervention_counts"],
    )


def _generate_units(
    lm: LoadedModel,
    units: Sequence[Sequence[tuple[TransferPair, Any]]],
    condition: Condition,
    decoding: DecodingRegime,
    run_seed: int,
    capture: CaptureSpec,
    progress: bool,
    on_unit_done: Callable[[dict[str, dict[str, Any]]], None],
) -> None:
    """Generate every (pair, sample) of each work unit (its pairs sharing a patch spec in one batch, in pair order);
    ``on_unit_done({pair id: storable (unscored) outcome})`` is called as each unit finishes, so the caller can persist
    it at once: a crash or kill then loses at most the unit in flight."""
    total = sum(len(unit) for unit in units) * decoding.samples_per_pair
    meter = ProgressMeter(f"{lm.name} {condition.name}", total, "continuations")
    for unit in units:
        by_patch: dict[str, list[tuple[TransferPair, Any]]] = defaultdict(list)
        for pair, patch in unit:
            by_patch[repr(to_builtin(patch, nonfinite="keep"))].append((pair, patch))
        per_pair: dict[str, list[GenerationRecord]] = defaultdict(list)
        tokens = 0
        for group in by_patch.values():
            requests = [
                GenerationRequest(
                    pair.id,
                    pair.prompt(condition.recipient)[1],
                    pair.prompt(condition.donor)[1] if condition.donor is not None else None,
                    sample,
                )
                for pair, _ in group
                for sample in range(decoding.samples_per_pair)
            ]
            fresh = _generate_halving(lm, requests, condition, decoding=decoding, patch=group[0][1], capture=capture,
                                      run_seed=run_seed)
            for r in fresh:
                per_pair[r.pair_id].append(r)
            tokens += sum(len(r.generated_ids) for r in fresh)
        done = {}
        for pair, _ in unit:
            rows = sorted(per_pair[pair.id], key=lambda r: r.sample_index)
            recipient = pair.prompt(condition.recipient)[0].id
            donor = pair.prompt(condition.donor)[0].id if condition.donor is not None else None
            done[pair.id] = _stored(rows, recipient, donor)
        on_unit_done(done)
        if progress:
            meter.advance(len(unit) * decoding.samples_per_pair, tokens)


AUTO_BATCH_SIZE = 32
"""Continuations per work unit under ``--batch-size auto``, on every device (the suite's fixed size before the option
existed). Fixed rather than fitted to the free memory of the device: a unit's composition is part of its items' keys,
so machines that pick different sizes would not share (or reproduce) each other's entries."""

BACKOFFS: list[dict[str, Any]] = []
"""Every out-of-memory halving of this process: ``{"model", "condition", "from", "to"}``; claim records carry them."""


def unit_pairs(batch_size: int | str, decoding: DecodingRegime) -> int:
    """Pairs per work unit: ``batch_size`` continuations (``"auto"``: :data:`AUTO_BATCH_SIZE`) over the regime's samples
    per pair, at least 1. Fixed by the option, never by the device, the shard or the executor."""
    continuations = AUTO_BATCH_SIZE if batch_size == "auto" else int(batch_size)
    return max(1, continuations // decoding.samples_per_pair)


def _generate_halving(lm: LoadedModel, requests: list[GenerationRequest], condition: Condition,
                      **kwargs: Any) -> list[GenerationRecord]:
    """:func:`generate` on ``requests``; on out-of-memory, the batch is halved (recorded in :data:`BACKOFFS`) and each
    half retried the same way, down to one row (a single row that does not fit re-raises)."""
    try:
        return generate(lm, requests, condition=condition.name, batch_size=len(requests), **kwargs)
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc) or len(requests) == 1:
            raise
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = (len(requests) + 1) // 2
    BACKOFFS.append({"model": lm.name, "condition": condition.name, "from": len(requests), "to": half})
    return (_generate_halving(lm, requests[:half], condition, **kwargs)
            + _generate_halving(lm, requests[half:], condition, **kwargs))


def _unit_list(pairs: Sequence[TransferPair], candidates: Sequence[TransferPair] | None,
               condition: Condition) -> list[TransferPair]:
    """The list whose runs of pairs are the work units: the ``candidates`` that have the prompts ``condition`` needs
    (every requested pair must be one of them), or ``pairs`` themselves."""
    if candidates is None:
        return list(pairs)
    listed = [p for p in candidates if all(p.has(r) for r in (condition.recipient, condition.donor) if r is not None)]
    known = {p.id for p in listed}
    outside = [p.id for p in pairs if p.id not in known]
    if outside:
        raise ValueError(f"run_condition: pairs {outside[:3]} are not among the candidates the units are cut from")
    return listed


_SCORES: dict[str, BehaviourScore] = {}
"""Scores of texts seen in this process (the scorers are fixed while it runs; natural conditions recur in claims)."""


def score_texts(texts: Sequence[str]) -> list[BehaviourScore]:
    """:func:`harness.behaviour.score_continuations` of ``texts``, each distinct text scored once per process."""
    new = list(dict.fromkeys(t for t in texts if t not in _SCORES))
    if new:
        _SCORES.update(zip(new, score_continuations(new)))
    return [_SCORES[t] for t in texts]


def run_condition(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    condition: Condition,
    *,
    decoding: DecodingRegime,
    run_seed: int,
    store: MeasurementStore | None = None,
    capture: CaptureSpec | None = None,
    batch_size: int | str = "auto",
    progress: bool = True,
    candidates: Sequence[TransferPair] | None = None,
) -> ConditionRun:
    """Run ``condition`` on every pair (``decoding.samples_per_pair`` continuations each) and score them.

    Outcomes are computed in work units: runs of :func:`unit_pairs` consecutive pairs of ``candidates`` (the
    claim's whole qualifying list, :class:`~harness.prompts.pairing.PairSelection`; those that have the prompts the
    condition needs), or of ``pairs`` themselves without it, counted from the first; an outcome's key names its unit
    (as :meth:`MeasurementStore.get_or_compute_units` does), so it is the same bytes whoever asks, in whatever order,
    and claims asking for different numbers of the same candidates share units. Every unit holding a requested pair is
    computed whole. Units already in ``store`` are read back; the others are generated, each in one batch per
    patch spec (a batch that runs out of memory is halved and retried, :data:`BACKOFFS`; a progress line per unit,
    :mod:`harness.runtime.progress`), and written as soon as the unit finishes (a kill loses at most one unit). Every continuation is then scored by the current scorers (new
    texts in one batch). ``capture`` defaults to :func:`standard_capture`; pass ``CaptureSpec()`` for none
    (a different cache entry). Raises ValueError for duplicate pair ids or a pair
    lacking a prompt the condition needs (e.g. no other baseline of its length).
    """
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"run_condition: duplicate pair ids in {ids}")
    for pair in pairs:
        for role in (condition.recipient, condition.donor):
            if role is not None and not pair.has(role):
                raise ValueError(f"condition {condition.name!r} needs the {role.value} prompt; pair {pair.id!r} has none")
    store = store or MeasurementStore(mode="off")
    capture = capture if capture is not None else standard_capture(lm, condition)
    fingerprint = engine_fingerprint()
    listed = _unit_list(pairs, candidates, condition)
    position = {p.id: i for i, p in enumerate(listed)}
    size = unit_pairs(batch_size, decoding)
    wanted = {position[p.id] // size for p in pairs}
    units = [list(range(u * size, min((u + 1) * size, len(listed)))) for u in sorted(wanted)]
    patches = {listed[i].id: listed[i].aligned(condition.patch_for(lm, listed[i].id, run_seed), condition.recipient,
                                               condition.donor) for unit in units for i in unit}
    keyed = {}
    for unit in units:
        plain = [pair_key_parts(lm, listed[i], condition, patches[listed[i].id], decoding, run_seed, capture,
                                fingerprint) for i in unit]
        keyed.update({listed[i].id: k for i, k in zip(unit, unit_parts(plain))})
    found = {pair_id: store.lookup("transfer_outcome", parts) for pair_id, parts in keyed.items()}
    missing = [unit for unit in units if any(found[listed[i].id] is ABSENT for i in unit)]
    if missing:
        def persist(done: dict[str, dict[str, Any]]) -> None:  # written per unit: a kill loses one unit at most
            for pair_id, stored in done.items():
                found[pair_id] = store.get_or_compute("transfer_outcome", keyed[pair_id], lambda s=stored: s)

        # compute once: hold the missing units' locks, then generate only the units no other worker stored meanwhile
        with store.holding("transfer_outcome", [keyed[listed[i].id] for unit in missing for i in unit]):
            found.update({listed[i].id: store.lookup("transfer_outcome", keyed[listed[i].id])
                          for unit in missing for i in unit})
            todo = [[(listed[i], patches[listed[i].id]) for i in unit] for unit in missing
                    if any(found[listed[i].id] is ABSENT for i in unit)]
            _generate_units(lm, todo, condition, decoding, run_seed, capture, progress, persist)
    # score every new text in one batch; _outcome then reads the scores back per pair
    score_texts([s["text"] for p in pairs for s in found[p.id]["samples"]])  # type: ignore[index]
    return ConditionRun(condition, lm.name, tuple(_outcome(p.id, condition, found[p.id]) for p in pairs))  # type: ignore[arg-type]
