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
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
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


class _Missing(Exception):
    """Raised inside a cache lookup to learn that an entry is absent (without computing it there)."""


def _lookup(store: MeasurementStore, parts: dict[str, Any]) -> dict[str, Any] | None:
    def absent() -> dict[str, Any]:
        raise _Missing

    try:
        return store.get_or_compute("transfer_outcome", parts, absent)
    except _Missing:
        return None


def _generate_missing(
    lm: LoadedModel,
    jobs: Sequence[tuple[TransferPair, Any]],
    condition: Condition,
    decoding: DecodingRegime,
    run_seed: int,
    capture: CaptureSpec,
    batch_size: int,
    progress: bool,
    on_pair_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate every (pair, sample) of ``jobs``; returns the storable (unscored) outcome per pair id.

    ``on_pair_done(pair_id, stored)`` is called after the batch that completes a pair's last sample, so the caller
    can persist it at once: a crash or kill then loses at most the batch in flight."""
    by_patch: dict[str, list[tuple[TransferPair, Any]]] = defaultdict(list)
    for pair, patch in jobs:
        by_patch[repr(to_builtin(patch, nonfinite="keep"))].append((pair, patch))
    batches: list[tuple[Any, list[GenerationRequest]]] = []
    for group in by_patch.values():
        patch = group[0][1]
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
        batches.extend((patch, requests[i : i + batch_size]) for i in range(0, len(requests), batch_size))
    expected = {pair.id: decoding.samples_per_pair for pair, _ in jobs}
    by_id = {pair.id: pair for pair, _ in jobs}
    per_pair: dict[str, list[GenerationRecord]] = defaultdict(list)
    out: dict[str, dict[str, Any]] = {}
    meter = ProgressMeter(f"{lm.name} {condition.name}", sum(len(r) for _, r in batches), "continuations")
    for patch, requests in batches:
        fresh = _generate_halving(lm, requests, condition, decoding=decoding, patch=patch, capture=capture,
                                  run_seed=run_seed)
        for r in fresh:
            per_pair[r.pair_id].append(r)
        for pair_id in dict.fromkeys(r.pair_id for r in fresh):
            if len(per_pair[pair_id]) == expected[pair_id]:
                pair = by_id[pair_id]
                rows = sorted(per_pair.pop(pair_id), key=lambda r: r.sample_index)
                recipient = pair.prompt(condition.recipient)[0].id
                donor = pair.prompt(condition.donor)[0].id if condition.donor is not None else None
                out[pair_id] = _stored(rows, recipient, donor)
                if on_pair_done is not None:
                    on_pair_done(pair_id, out[pair_id])
        if progress:
            meter.advance(len(requests), sum(len(r.generated_ids) for r in fresh))
    return {pair.id: out[pair.id] for pair, _ in jobs}


CPU_BATCH_SIZE = 32
"""Continuations per batch on CPU under ``--batch-size auto`` (the suite's fixed size before the option existed)."""

MAX_AUTO_BATCH = 256
"""Largest batch ``auto`` chooses on a GPU."""

BACKOFFS: list[dict[str, Any]] = []
"""Every out-of-memory halving of this process: ``{"model", "condition", "from", "to"}``; claim records carry them."""


def auto_batch_size(lm: LoadedModel, pairs: Sequence[TransferPair], decoding: DecodingRegime) -> int:
    """``--batch-size auto``: :data:`CPU_BATCH_SIZE` off CUDA; on CUDA the rows whose KV caches (recipient and donor,
    longest prompt + ``max_new_tokens`` positions, all layers, K and V) and float32 next-token logits fit in half the
    device's free memory, clamped to [1, :data:`MAX_AUTO_BATCH`]. Batch size changes no number (greedy batched ≡ single,
    tested), only speed and memory."""
    device = lm.input_device
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    shape = lm.shape
    longest = max((len(p.recursive_ids) + len(p.baseline_ids)) for p in pairs) if pairs else 1
    element = next(lm.model.parameters()).element_size()
    kv_per_token = 2 * shape.n_layers * shape.n_kv_heads * shape.head_dim * element
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    per_row = kv_per_token * (longest + 2 * decoding.max_new_tokens) + 4 * vocab * 4
    return max(1, min(MAX_AUTO_BATCH, int(0.5 * free // per_row)))


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
) -> ConditionRun:
    """Run ``condition`` on every pair (``decoding.samples_per_pair`` continuations each) and score them.

    Pairs already in ``cache`` are read back; the rest are generated in batches of ``batch_size`` requests
    (``"auto"``: :func:`auto_batch_size`; a batch that runs out of memory is halved and retried, :data:`BACKOFFS`;
    a progress line per batch, :mod:`harness.runtime.progress`) and each pair is written as soon as the batch that completes it finishes (a kill loses at most one batch). Every continuation is then scored by the current scorers (new
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
    patches = {p.id: p.aligned(condition.patch_for(lm, p.id, run_seed), condition.recipient, condition.donor)
               for p in pairs}
    parts = {p.id: pair_key_parts(lm, p, condition, patches[p.id], decoding, run_seed, capture, fingerprint) for p in pairs}
    found = {p.id: _lookup(store, parts[p.id]) for p in pairs}
    missing = [(p, patches[p.id]) for p in pairs if found[p.id] is None]
    if missing:
        def persist(pair_id: str, stored: dict[str, Any]) -> None:  # written per batch: a kill loses one batch at most
            found[pair_id] = store.get_or_compute("transfer_outcome", parts[pair_id], lambda: stored)

        # compute once: hold the missing pairs' locks, then generate only what no other worker stored meanwhile
        with store.holding("transfer_outcome", [parts[p.id] for p, _ in missing]):
            for pair, _ in missing:
                found[pair.id] = _lookup(store, parts[pair.id])
            missing = [(p, patch) for p, patch in missing if found[p.id] is None]
            if missing:
                size = auto_batch_size(lm, pairs, decoding) if batch_size == "auto" else int(batch_size)
                _generate_missing(lm, missing, condition, decoding, run_seed, capture, size, progress, persist)
    # score every new text in one batch; _outcome then reads the scores back per pair
    score_texts([s["text"] for p in pairs for s in found[p.id]["samples"]])  # type: ignore[index]
    return ConditionRun(condition, lm.name, tuple(_outcome(p.id, condition, found[p.id]) for p in pairs))  # type: ignore[arg-type]
