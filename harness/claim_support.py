"""Small helpers shared by the claim modules: prompt and pair selection per the registry, behavioural runs,
transfer results, report details."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from harness.measurement_cache import MeasurementCache
from harness.models import LoadedModel
from harness.prompts import Prompt, PromptBank
from harness.prompts.pairing import PairRole, TransferPair, select_pairs
from harness.claim_context import RunSettings
from harness.registry import ClaimSpec
from harness.results import ClaimResult, evaluate
from harness.seeds import derive_seed
from harness.stats import wilcoxon_paired
from harness.transfer import Condition, ConditionRun, run_condition, transfer


def capped(prompts: list[Prompt], n_cap: int | None) -> list[Prompt]:
    """All ``prompts`` (id order) without a cap; with one, the first ``n_cap`` taken level by level in turn.

    Taking levels in turn keeps a capped recursive group spread over L1…L5 instead of only L1 prompts.
    """
    if not n_cap or len(prompts) <= n_cap:
        return prompts
    if not any(p.level for p in prompts):
        return prompts[:n_cap]
    by_level: dict[int, list[Prompt]] = {}
    for p in prompts:
        by_level.setdefault(p.level or 0, []).append(p)
    queues = [by_level[level] for level in sorted(by_level)]
    interleaved = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    return sorted(interleaved[:n_cap], key=lambda p: p.id)


def first_eligible(pairs: Sequence[TransferPair], keep: Callable[[TransferPair], bool], spec: ClaimSpec,
                   n_cap: int | None) -> tuple[list[TransferPair], int]:
    """The first ``min(planned_n, n_cap)`` pairs that satisfy ``keep``, and how many satisfy it in all."""
    eligible = [p for p in pairs if keep(p)]
    n = min(spec.planned_n, n_cap) if n_cap else spec.planned_n
    return eligible[:n], len(eligible)


def require_groups(bank: PromptBank, spec: ClaimSpec, n_cap: int | None) -> dict[str, list[Prompt]]:
    """The prompts of each group the claim needs, in id order (capped at ``n_cap`` each, see ``capped``).

    Skips the test, with the reason, when the bank lacks a group the claim needs (e.g. a user bank with
    only ``recursive`` and ``baseline``), or when a claim needs recursion levels and the bank has none.
    """
    missing = [g for g in spec.required_groups if g not in bank.groups]
    if missing:
        pytest.skip(f"{spec.id}: the prompt bank has no {', '.join(missing)} group (needs {', '.join(spec.required_groups)})")
    selected = {g: capped(bank.group(g), n_cap) for g in spec.required_groups}
    if spec.requires_levels and not any(p.level for p in selected.get("recursive", [])):
        pytest.skip(f"{spec.id}: recursive prompts in the bank carry no recursion level")
    return selected


def run_details(lm: LoadedModel, bank: PromptBank, **extra: Any) -> dict[str, Any]:
    """Provenance every claim record carries: model provenance, layers, prompt-bank hash, load timing."""
    provenance = {k: v for k, v in lm.provenance.items() if k != "load_seconds"}
    return {
        "model_provenance": provenance,
        "timings": {"model_load_s": lm.provenance.get("load_seconds")},
        "layers": {"early": lm.layers.early, "late": lm.layers.late, "patch": list(lm.layers.patch_layers)},
        "prompt_bank_sha256": bank.content_hash,
        **extra,
    }


# ------------------------------------------------------------------------------- behavioural claims


def behaviour_pairs(
    lm: LoadedModel, bank: PromptBank, spec: ClaimSpec, n_cap: int | None,
    roles: Sequence[PairRole] = (PairRole.RECURSIVE, PairRole.BASELINE),
) -> list[TransferPair]:
    """The claim's prompt pairs: the first ``planned_n`` (capped by ``--n``) exact-length pairs having every role.

    Skips, with the reason, when the bank lacks a group the claim needs, or when fewer than 2 such pairs
    exist under the model's tokenizer (nothing can be bootstrapped over pairs).
    """
    require_groups(bank, spec, n_cap)
    n = min(spec.planned_n, n_cap) if n_cap else spec.planned_n
    pairs = select_pairs(lm, bank, n, roles=roles)
    if len(pairs) < 2:
        needs = ", ".join(r.value for r in roles)
        pytest.skip(
            f"{spec.id}: {len(pairs)} recursive/baseline pair(s) of exactly equal token length under {lm.name}'s "
            f"tokenizer with prompts for {needs}; at least 2 are needed"
        )
    return pairs


def run_conditions(
    lm: LoadedModel, pairs: Sequence[TransferPair], spec: ClaimSpec, conditions: Sequence[Condition],
    settings: RunSettings, cache: MeasurementCache,
) -> dict[str, ConditionRun]:
    """``{condition name: run}`` for each condition on ``pairs``, decoded with the claim's registered regime."""
    if spec.decoding is None:
        raise ValueError(f"claim {spec.id} registers no decoding regime; it is not a behavioural claim")
    return {
        c.name: run_condition(lm, pairs, c, decoding=spec.decoding, run_seed=settings.seed, cache=cache)
        for c in conditions
    }


def paired_p(x: Sequence[float], y: Sequence[float], alternative: str) -> tuple[float | None, str | None]:
    """One-sided paired Wilcoxon p of x − y, or (None, why) when every difference is zero (test undefined)."""
    try:
        return wilcoxon_paired(x, y, alternative=alternative).p_value, None
    except ValueError as exc:
        return None, str(exc)


def behaviour_details(
    lm: LoadedModel, bank: PromptBank, spec: ClaimSpec, runs: Mapping[str, ConditionRun], **extra: Any
) -> dict[str, Any]:
    """:func:`run_details` plus what every behavioural record carries: the decoding regime, the behaviour
    score, per-condition degenerate and empty shares, summaries and condition specs, example continuations."""
    first = next(iter(runs.values()))
    return run_details(
        lm,
        bank,
        decoding=spec.decoding.describe() if spec.decoding else None,
        behaviour_score=spec.behaviour_score,
        pairs=list(first.pair_ids),
        degenerate_share={name: run.degenerate_share for name, run in runs.items()},
        empty_share={name: run.empty_share for name, run in runs.items()},
        conditions={name: {**run.summary(), "condition": run.condition.describe()} for name, run in runs.items()},
        examples={name: run.examples() for name, run in runs.items()},
        **extra,
    )


def transfer_result(
    spec: ClaimSpec, lm: LoadedModel, bank: PromptBank, runs: Mapping[str, ConditionRun], patched: Condition,
    recipient: Condition, donor: Condition, *, seed: int, p_value: float | None = None,
    p_note: str | None = None, **extra: Any,
) -> ClaimResult:
    """The :class:`ClaimResult` of a transfer-ratio claim: T of ``patched`` relative to the natural
    ``recipient`` and ``donor`` runs, CI at the claim's level (BCa over pairs), the claim's rule."""
    t = transfer(runs[patched.name], runs[recipient.name], runs[donor.name], level=spec.ci_level or 0.95,
                 rng=derive_seed(seed, spec.id, lm.name))
    return evaluate(
        spec, model=lm.name, estimate=t.estimate, ci_low=t.ci.low, ci_high=t.ci.high, p_value=p_value, n=t.n,
        undefined_reason=t.undefined_reason,
        details=behaviour_details(lm, bank, spec, runs, transfer=t.describe(), p_note=p_note, **extra),
    )


def require_float32(lm: LoadedModel, spec: ClaimSpec) -> None:
    """Skip an invariant whose registered tolerance is for float32 when the model runs in another dtype.

    bf16 keeps about 3 significant digits, so a 1e-4 logit tolerance is not the registered claim there;
    such a run needs ``--dtype float32`` (or a new claim version with a dtype-specific tolerance).
    """
    import torch

    dtype = next(lm.model.parameters()).dtype
    if dtype != torch.float32:
        pytest.skip(f"{spec.id}: its tolerance ({spec.rule_summary()}) is registered for float32, this run is "
                    f"{str(dtype).removeprefix('torch.')}; rerun with --dtype float32")
