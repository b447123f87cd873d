"""The steps claim modules share, each taking the claim's :class:`~harness.claim.context.ClaimContext`: prompt and
pair selection per the registry, behavioural runs that carry their pair selection (:class:`ClaimRuns`), transfer
results, report details."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.verdicts import ClaimResult
from harness.foundation.seeds import derive_seed
from harness.prompts import Prompt
from harness.prompts.pairing import PairRole, PairSelection, TransferPair, choose_pairs, pairing_summary
from harness.stats import wilcoxon_paired
from harness.transfer import Condition, ConditionRun, estimate_transfer, run_condition, transfer_difference
from harness.transfer.runner import BACKOFFS


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


def planned_count(claim: ClaimContext) -> int:
    """How many items (prompts or pairs, the claim's ``n_unit``) the claim uses: its planned n, capped by ``--n``."""
    n_cap = claim.settings.n_cap
    return min(claim.spec.planned_n, n_cap) if n_cap else claim.spec.planned_n


def require_groups(claim: ClaimContext, *, cap: bool = True) -> dict[str, list[Prompt]]:
    """The prompts of each group the claim needs, in id order (capped at ``--n`` each unless ``cap`` is False,
    see :func:`capped`).

    Skips the test, with the reason, when the bank lacks a group the claim needs (e.g. a user bank with
    only ``recursive`` and ``baseline``), or when a claim needs recursion levels and the bank has none.
    """
    spec, bank = claim.spec, claim.bank
    n_cap = claim.settings.n_cap if cap else None
    missing = [g for g in spec.required_groups if g not in bank.groups]
    if missing:
        pytest.skip(f"{spec.id}: the prompt bank has no {', '.join(missing)} group (needs {', '.join(spec.required_groups)})")
    selected = {g: capped(bank.group(g), n_cap) for g in spec.required_groups}
    if spec.requires_levels and not any(p.level for p in selected.get("recursive", [])):
        pytest.skip(f"{spec.id}: recursive prompts in the bank carry no recursion level")
    return selected


def run_details(claim: ClaimContext, **extra: Any) -> dict[str, Any]:
    """Provenance every claim record carries: model provenance, layers, prompt-bank hash, load timing."""
    lm = claim.lm
    provenance = {k: v for k, v in lm.provenance.items() if k != "load_seconds"}
    return {
        "model_provenance": provenance,
        "timings": {"model_load_s": lm.provenance.get("load_seconds")},
        "layers": {"early": lm.layers.early, "late": lm.layers.late, "patch": list(lm.layers.patch_layers)},
        "prompt_bank_sha256": claim.bank.content_hash,
        **extra,
    }


# ------------------------------------------------------------------------------- behavioural claims


def claim_pairs(
    claim: ClaimContext, roles: Sequence[PairRole] = (PairRole.RECURSIVE, PairRole.BASELINE),
    keep: Callable[[TransferPair], bool] = lambda p: True, every: bool = False,
) -> PairSelection:
    """The claim's prompt pairs and their design (:func:`harness.prompts.pairing.choose_pairs`): the first
    :func:`planned_count` exact-length pairs having every role and satisfying ``keep`` when the bank has that
    many, else the first :func:`planned_count` of the registered unmatched variant (nearest token length,
    shared-prefix patch). With ``every``, all qualifying pairs (capped by ``--n`` only): for a claim whose planned n
    is a floor rather than a cap. :func:`run_conditions` runs conditions on it and carries it into the record.

    Skips, with the reason, when the bank lacks a group the claim needs, or when fewer than 2 pairs qualify
    even in the variant (nothing can be bootstrapped over pairs).
    """
    require_groups(claim)
    wanted = (claim.settings.n_cap or len(claim.bank.prompts)) if every else planned_count(claim)
    selection = choose_pairs(claim.lm, claim.bank, wanted, roles=roles, keep=keep, cap=claim.settings.n_cap)
    if len(selection.pairs) < 2:
        needs = ", ".join(r.value for r in roles)
        pytest.skip(
            f"{claim.spec.id}: {len(selection.pairs)} recursive/baseline pair(s) under {claim.lm.name}'s tokenizer "
            f"with prompts for {needs}, exact-length or by nearest length ({selection.exact_available} exact); "
            "at least 2 are needed"
        )
    return selection


@dataclass(frozen=True)
class ClaimRuns(Mapping[str, ConditionRun]):
    """The runs of a behavioural claim's conditions (``{condition name: run}``, a read-only mapping) together with
    the pair selection they ran on, so that the record's ``pairing`` entry and the pairs travel with the runs."""

    selection: PairSelection
    by_condition: Mapping[str, ConditionRun]

    @property
    def pairs(self) -> list[TransferPair]:
        """The selected pairs, in the order every run holds its outcomes."""
        return self.selection.pairs

    @property
    def pairing(self) -> dict[str, Any]:
        """The record's ``pairing`` entry: the design (exact token length, or the unmatched variant with each pair's
        recursive − baseline token difference), see :func:`harness.prompts.pairing.pairing_summary`."""
        return pairing_summary(self.selection)

    def __getitem__(self, name: str) -> ConditionRun:
        return self.by_condition[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_condition)

    def __len__(self) -> int:
        return len(self.by_condition)


def run_conditions(
    claim: ClaimContext, conditions: Sequence[Condition], *,
    roles: Sequence[PairRole] = (PairRole.RECURSIVE, PairRole.BASELINE),
    keep: Callable[[TransferPair], bool] = lambda p: True, selection: PairSelection | None = None,
) -> ClaimRuns:
    """Each condition run on the claim's pairs (``selection``, or :func:`claim_pairs` with ``roles`` and ``keep``),
    decoded with the claim's registered regime; the runs carry the selection (:class:`ClaimRuns`)."""
    chosen = selection if selection is not None else claim_pairs(claim, roles, keep)
    return ClaimRuns(chosen, run_on_pairs(claim, chosen.pairs, conditions, candidates=chosen.candidates))


def run_on_pairs(
    claim: ClaimContext, pairs: Sequence[TransferPair], conditions: Sequence[Condition], *,
    candidates: Sequence[TransferPair] | None = None,
) -> dict[str, ConditionRun]:
    """``{condition name: run}`` for each condition on ``pairs`` (a selection's pairs with its ``candidates``, whose
    runs of pairs are the work units; or pairs the claim built itself, e.g. donor-level blocks, whose own runs are),
    decoded with the claim's registered regime."""
    spec = claim.spec
    if spec.decoding is None:
        raise ValueError(f"claim {spec.id} registers no decoding regime; it is not a behavioural claim")
    return {
        c.name: run_condition(claim.lm, pairs, c, decoding=spec.decoding, run_seed=claim.settings.seed,
                              store=claim.store, batch_size=claim.settings.batch_size, candidates=candidates)
        for c in conditions
    }


def paired_p(x: Sequence[float], y: Sequence[float], alternative: str) -> tuple[float | None, str | None]:
    """One-sided paired Wilcoxon p of x − y, or (None, why) when every difference is zero (test undefined)."""
    try:
        return wilcoxon_paired(x, y, alternative=alternative).p_value, None
    except ValueError as exc:
        return None, str(exc)


def behaviour_details(claim: ClaimContext, runs: Mapping[str, ConditionRun], **extra: Any) -> dict[str, Any]:
    """:func:`run_details` plus what every behavioural record carries: the decoding regime, the behaviour
    score, per-condition degenerate and empty shares, summaries and condition specs, example continuations, the
    pair design (``pairing``, when ``runs`` is a :class:`ClaimRuns`), under ``samples`` every continuation
    (``{condition: [one dict per pair and sample]}``, see :func:`_sample_rows`; the report moves them out of
    claims.json into samples.jsonl), and under ``prompts`` the text of every recipient and donor prompt they name
    (``{prompt id: text}``, so a reader can audit a score beside the prompt that led to it)."""
    spec = claim.spec
    if isinstance(runs, ClaimRuns):
        extra = {"pairing": runs.pairing, **extra}
    first = next(iter(runs.values()))
    prompt_ids = sorted({pid for run in runs.values() for o in run.outcomes for pid in (o.recipient_id, o.donor_id)
                         if pid is not None})
    return run_details(
        claim,
        decoding=spec.decoding.describe() if spec.decoding else None,
        behaviour_score=spec.behaviour_score,
        pairs=list(first.pair_ids),
        degenerate_share={name: run.degenerate_share for name, run in runs.items()},
        empty_share={name: run.empty_share for name, run in runs.items()},
        conditions={name: {**run.summary(), "condition": run.condition.describe()} for name, run in runs.items()},
        examples={name: run.examples() for name, run in runs.items()},
        samples={name: _sample_rows(run, spec.behaviour_score) for name, run in runs.items()},
        batch_backoffs=[b for b in BACKOFFS if b["model"] == claim.lm.name and b["condition"] in runs],
        prompts={pid: claim.bank.get(pid).text for pid in prompt_ids},
        **extra,
    )


def _sample_rows(run: ConditionRun, score_name: str | None) -> list[dict[str, Any]]:
    """One dict per continuation of ``run``, in pair then sample order: pair, recipient and donor prompt ids,
    sample index, text, generated token count (``n_tokens``, EOS included when it stopped there), whether it stopped
    at EOS, ``empty`` (no words), ``degenerate`` (the gate), ``score`` (the registered behaviour score) and every
    :class:`~harness.behaviour.BehaviourScore` field under ``scores``."""
    rows = []
    for outcome in run.outcomes:
        for sample in outcome.samples:
            scores = dataclasses.asdict(sample.score)
            rows.append({
                "pair": outcome.pair_id, "recipient": outcome.recipient_id, "donor": outcome.donor_id,
                "sample": sample.sample_index, "text": sample.text, "n_tokens": len(sample.generated_ids),
                "stopped_at_eos": sample.stopped_at_eos, "empty": sample.score.n_words == 0,
                "degenerate": sample.score.degenerate,
                "score": scores.get(score_name) if score_name else None, "scores": scores,
            })
    return rows


def transfer_result(
    claim: ClaimContext, runs: Mapping[str, ConditionRun], patched: Condition, recipient: Condition,
    donor: Condition, *, p_value: float | None = None, p_note: str | None = None,
    contrasts: Mapping[str, Condition] | None = None, reported_contrasts: Mapping[str, Condition] | None = None,
    **extra: Any,
) -> ClaimResult:
    """The :class:`ClaimResult` of a transfer-ratio claim: T of ``patched`` relative to the natural
    ``recipient`` and ``donor`` runs, CI at the claim's level (BCa over pairs, the claim's seed), the claim's rule.

    ``contrasts`` (for a ``contrasts_above`` rule) names conditions X run on the same pairs with the same recipient:
    each contrast is C_X = T(patched) − T(X) = (mean s(X) − mean s(patched)) / (mean s(recipient) − mean s(donor))
    in gap units (:func:`harness.transfer.transfer_difference`, the claim's CI level, seed derived from the claim's
    and the contrast's name); C_X > 0 means ``patched`` moved the recipient toward the donor further than X did.
    Each contrast's estimate, CI and the T of X go to ``details["contrasts"]``; ``reported_contrasts`` are computed
    the same way and reported there too, but never reach the rule.
    """
    level = claim.spec.ci_level or 0.95
    t = estimate_transfer(runs[patched.name], runs[recipient.name], runs[donor.name], level=level, rng=claim.seed)
    contrast_cis: dict[str, tuple[float, float]] | None = {} if contrasts else None
    described: dict[str, Any] = {}
    if contrasts or reported_contrasts:
        for name, other in {**(contrasts or {}), **(reported_contrasts or {})}.items():
            c = transfer_difference(runs[patched.name], runs[other.name], runs[recipient.name], runs[donor.name],
                                    level=level, rng=derive_seed(claim.seed, "contrast", name))
            t_other = estimate_transfer(runs[other.name], runs[recipient.name], runs[donor.name], level=level,
                               rng=derive_seed(claim.seed, "contrast_T", name))
            if contrasts and name in contrasts and contrast_cis is not None:
                contrast_cis[name] = (c.low, c.high)
            described[name] = {"condition": other.name, "estimate": c.estimate, "ci_low": c.low, "ci_high": c.high,
                               "ci_level": c.level, "T_of_condition": t_other.describe(),
                               "deciding": bool(contrasts and name in contrasts)}
    return claim.evaluate(
        estimate=t.estimate, ci_low=t.ci.low, ci_high=t.ci.high, p_value=p_value, n=t.n,
        undefined_reason=t.undefined_reason, contrast_cis=contrast_cis,
        details=behaviour_details(claim, runs, transfer=t.describe(), p_note=p_note,
                                  **({"contrasts": described} if described else {}), **extra),
    )


def transfer_difference_result(
    claim: ClaimContext, runs: Mapping[str, ConditionRun], upper: Condition, lower: Condition, recipient: Condition,
    donor: Condition, *, p_value: float | None = None, p_note: str | None = None, also: Sequence[Condition] = (),
    **extra: Any,
) -> ClaimResult:
    """The :class:`ClaimResult` of a claim on D = T(upper) − T(lower), both relative to the natural ``recipient``
    and ``donor`` runs (gap units; :func:`harness.transfer.transfer_difference`, CI at the claim's level, the
    claim's seed). D is undefined when T's natural gap is (its CI includes 0). ``details["transfer"]`` holds the T
    of ``upper``, ``lower`` and each condition in ``also`` (reported beside the estimate, never deciding)."""
    level = claim.spec.ci_level or 0.95
    rng = np.random.default_rng(claim.seed)
    d = transfer_difference(runs[upper.name], runs[lower.name], runs[recipient.name], runs[donor.name], level=level,
                            rng=rng)
    each = {c.name: estimate_transfer(runs[c.name], runs[recipient.name], runs[donor.name], level=level, rng=rng)
            for c in (upper, lower, *also)}
    return claim.evaluate(
        estimate=d.estimate, ci_low=d.low, ci_high=d.high, p_value=p_value, n=len(runs[upper.name].outcomes),
        undefined_reason=each[upper.name].undefined_reason,
        details=behaviour_details(claim, runs, transfer={k: t.describe() for k, t in each.items()},
                                  difference=f"T({upper.name}) − T({lower.name})", p_note=p_note, **extra),
    )


def require_float32(claim: ClaimContext) -> None:
    """Skip an invariant whose registered tolerance is for float32 when the model runs in another dtype.

    bf16 keeps about 3 significant digits, so a 1e-4 logit tolerance is not the registered claim there;
    such a run needs ``--dtype float32`` (or a new claim version with a dtype-specific tolerance).
    """
    import torch

    spec = claim.spec
    dtype = next(claim.lm.model.parameters()).dtype
    if dtype != torch.float32:
        pytest.skip(f"{spec.id}: its tolerance ({spec.rule_summary()}) is registered for float32, this run is "
                    f"{str(dtype).removeprefix('torch.')}; rerun with --dtype float32")
