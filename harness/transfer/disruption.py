"""Disruption size of a patched condition: how far the patch moves the recipient's first next-token distribution.

For a pair and a patched condition with recipient R, the disruption is KL(P_R ‖ P_patched), in nats, where P_R is
the natural (unpatched) recipient's next-token distribution at the first decode step and P_patched the patched
run's: softmax of the raw first-step logits (before any repetition penalty or EOS suppression), computed in float64.
It is 0 when the patch leaves the first step unchanged and grows with how much the patch changes what the model
would say next, whatever it changes it towards; so it tells a transfer (a specific change) from a disruption of the
same size (random KV, a foreign cache). Per-pair values are cached like continuations
(:func:`harness.transfer.runner.pair_key_parts`, kind ``first_step_kl``), keyed with a fingerprint of this module's
code and everything it imports.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from harness.engine.generation import CaptureSpec, GenerationRequest, generate
from harness.foundation.decoding import DecodingRegime
from harness.foundation.serialize import to_builtin
from harness.models import LoadedModel
from harness.prompts.pairing import TransferPair
from harness.runtime.measurement_store import MeasurementStore, code_fingerprint
from harness.transfer.conditions import Condition
from harness.transfer.runner import NOT_IN_ENGINE_KEY, pair_key_parts

__all__ = ["FIRST_STEP", "first_step_kl", "kl_summary", "next_token_kl"]

FIRST_STEP = DecodingRegime.greedy(max_new_tokens=1)
"""The regime of the measurement: one greedy step (only its raw logits are used)."""


def _fingerprint() -> str:
    """sha256 of this module's code and every harness module it reaches except the scorers (see runner)."""
    return code_fingerprint([sys.modules[__name__]], exclude=NOT_IN_ENGINE_KEY)


def _first_logits(lm: LoadedModel, jobs: Sequence[tuple[TransferPair, Any]], condition: Condition, patched: bool,
                  batch_size: int) -> dict[str, torch.Tensor]:
    """Raw first-step logits (float32, [vocab]) per pair id: of the patched run, or with ``patched`` False of the
    natural run of the condition's recipient. Pairs sharing a patch spec run in one batch."""
    groups: dict[str, list[tuple[TransferPair, Any]]] = defaultdict(list)
    for pair, patch in jobs:
        groups[repr(to_builtin(patch, nonfinite="keep")) if patched else ""].append((pair, patch))
    out: dict[str, torch.Tensor] = {}
    for group in groups.values():
        patch = group[0][1] if patched else None
        requests = [GenerationRequest(pair.id, pair.prompt(condition.recipient)[1],
                                      pair.prompt(condition.donor)[1] if patched and condition.donor else None)
                    for pair, _ in group]
        records = generate(lm, requests, decoding=FIRST_STEP, patch=patch, capture=CaptureSpec(),
                           condition=condition.name if patched else "natural", batch_size=batch_size,
                           keep_first_logits=True)
        out.update({r.pair_id: r.first_logits for r in records})  # type: ignore[misc]
    return out


def next_token_kl(reference: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
    """KL(softmax(reference) ‖ softmax(logits)) over the last (vocabulary) axis, in nats, computed in float64 and
    clipped at 0 against rounding; the suite's one next-token KL. The terms are summed by numpy (pairwise, one
    thread): torch's sum over one long vector splits it among its threads, so its last bits would depend on the
    process's thread count (a serial run and a one-CPU Ray actor stored different first-step KLs).

    Both tensors are raw logits of one shape ``[..., vocab]``; the result is a float64 array of shape ``[...]``
    (0-d for two ``[vocab]`` vectors: ``float(next_token_kl(p, q))``).
    """
    if reference.shape != logits.shape or reference.ndim < 1:
        raise ValueError(f"next_token_kl needs two [..., vocab] tensors of one shape, got "
                         f"{tuple(reference.shape)} and {tuple(logits.shape)}")
    log_p = torch.log_softmax(reference.to(torch.float64), dim=-1)
    log_q = torch.log_softmax(logits.to(torch.float64), dim=-1)
    terms = torch.nn.functional.kl_div(log_q, log_p, reduction="none", log_target=True).numpy()
    return np.asarray(np.maximum(terms.sum(axis=-1), 0.0))


def first_step_kl(
    lm: LoadedModel,
    pairs: Sequence[TransferPair],
    condition: Condition,
    *,
    run_seed: int,
    store: MeasurementStore | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Per pair, KL(natural recipient's first next-token distribution ‖ ``condition``'s), in nats; float64
    ``[pairs]`` in pair order (see the module docstring). The patch is the one :func:`run_condition` runs
    (``condition.patch_for`` aligned to the pair); a natural condition (run twice) gives 0 for every pair.
    Cached per pair, computed in work units of ``batch_size`` pairs from the first
    (:meth:`MeasurementStore.get_or_compute_units`), each unit's pairs sharing a patch spec in one batch."""
    store = store or MeasurementStore(mode="off")
    fingerprint = _fingerprint()
    patches = {p.id: p.aligned(condition.patch_for(lm, p.id, run_seed), condition.recipient, condition.donor)
               for p in pairs}
    parts = {p.id: pair_key_parts(lm, p, condition, patches[p.id], FIRST_STEP, run_seed, CaptureSpec(), fingerprint)
             for p in pairs}

    def compute(indices: list[int]) -> list[float]:
        jobs = [(pairs[i], patches[pairs[i].id]) for i in indices]
        natural = _first_logits(lm, jobs, condition, False, len(jobs))
        patched = _first_logits(lm, jobs, condition, True, len(jobs))
        return [float(next_token_kl(natural[pair.id], patched[pair.id])) for pair, _ in jobs]

    values = store.get_or_compute_units("first_step_kl", [parts[p.id] for p in pairs], compute, unit_size=batch_size)
    return np.asarray(values, dtype=np.float64)


def kl_summary(values: Sequence[float] | np.ndarray) -> dict[str, float | int | str]:
    """Mean, median and quartiles (nats) of per-pair disruption sizes, with n, for claim details."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "units": "nats"}
    q25, median, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    return {"mean": float(x.mean()), "median": float(median), "q25": float(q25), "q75": float(q75),
            "n": int(x.size), "units": "nats"}
