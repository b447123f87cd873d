"""Decode loop with KV / activation patches, seeded sampling and per-step capture (DESIGN §4.6).

For each request the recipient's tokens ``0 … n−2`` are prefilled (left-padded batch, explicit
position ids), the patch is applied (a KV patch to a copy of that cache; an activation patch by a
hook during the prefill), and decoding starts by feeding the recipient's last token ``b_{n−1}`` at
position ``n−1`` — the last prompt token is fed exactly once. Each step feeds one token per row and
chooses the next from the step's logits:

- greedy: argmax (ties go to the lowest token id);
- repetition penalty (optional, any mode): as transformers does it, a score ``s`` of a token already
  in the row's prompt or output becomes ``s/penalty`` if ``s > 0`` else ``s·penalty``;
- sampling: softmax(scores / temperature), one draw per row from a ``torch.Generator`` seeded with
  ``sampling_seed(run_seed, pair_id, sample_index)`` (sha256, ``harness.foundation.seeds``), so every condition of a (pair, sample) uses the
  same random stream, whatever the batch composition.

A row stops after emitting an EOS token (``stop_at_eos``) or ``max_new_tokens`` tokens; on the first
``min_new_tokens`` steps the EOS tokens' scores are −inf (after the penalty), so no row stops before. Hooks for
activation patches and V capture go through ``harness.engine.hooks``; where a captured ``v_proj`` is also
the patch site, one callback does both in the order given by ``CaptureSpec.capture_point``.
Attention entropy is computed from the step's eager attention probabilities right after the
forward and the probabilities are dropped. Prefills of token rows already prefilled in this process (the same prompts
as recipient or donor of another condition) are served by :mod:`harness.engine.prefill_reuse`, bit for bit the same cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import torch

from harness.engine import kvcache
from harness.engine.attention import attention_entropy
from harness.engine.decode_path import (
    DecodePath,
    DecodePlan,
    attention_implementation,
    compiled_forward,
    plan_decode,
    still_compiled,
)
from harness.engine.generation_records import GenerationRecord
from harness.engine.hooks import TraceDict
from harness.engine.interventions import ActivationPatcher, capture_donor_activations, site_columns, site_path
from harness.engine.patch_specs import ActivationPatchSpec, ActivationSite, KVPatchSpec, PatchSpecError, check_alignment
from harness.engine.prefill_reuse import reused_prefill
from harness.engine.tokens import pad_id
from harness.foundation.decoding import DecodingMode, DecodingRegime
from harness.foundation.nonfinite import NonFiniteError
from harness.foundation.seeds import derive_seed
from harness.models import LoadedModel
from harness.models.architectures import select_columns

__all__ = [
    "CapturePoint",
    "CaptureSpec",
    "GenerationRequest",
    "eos_ids",
    "generate",
    "sampling_seed",
]


class CapturePoint(str, Enum):
    """At a site that is both patched and captured: record the value the model used (after) or the clean one (before)."""

    AFTER_PATCH = "after_patch"
    BEFORE_PATCH = "before_patch"


@dataclass(frozen=True)
class CaptureSpec:
    """What to capture at every decode step.

    ``v_layers``: layers whose ``v_proj`` output (V columns) of the fed token is kept;
    ``entropy_layers``: layers whose per-query-head attention entropy is computed (needs eager attention).
    Capturing V at the layer an activation patch writes is refused unless ``allow_patch_site`` (a measurement
    there is not downstream of the patch, DESIGN §4.5).
    """

    v_layers: tuple[int, ...] = ()
    entropy_layers: tuple[int, ...] = ()
    capture_point: CapturePoint = CapturePoint.AFTER_PATCH
    allow_patch_site: bool = False

    def __post_init__(self) -> None:
        for name in ("v_layers", "entropy_layers"):
            layers = tuple(getattr(self, name))
            if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in layers) or len(set(layers)) != len(layers):
                raise ValueError(f"{name} must be distinct non-negative ints, got {layers!r}")
            object.__setattr__(self, name, tuple(sorted(layers)))
        if not isinstance(self.capture_point, CapturePoint):
            raise ValueError(f"capture_point must be a CapturePoint, got {self.capture_point!r}")


@dataclass(frozen=True)
class GenerationRequest:
    """One continuation to generate: recipient tokens (≥ 2), optional donor tokens, sample index."""

    pair_id: str
    recipient_ids: tuple[int, ...]
    donor_ids: tuple[int, ...] | None = None
    sample_index: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient_ids", tuple(int(t) for t in self.recipient_ids))
        if self.donor_ids is not None:
            object.__setattr__(self, "donor_ids", tuple(int(t) for t in self.donor_ids))
        if len(self.recipient_ids) < 2:
            raise ValueError(f"request {self.pair_id!r}: the recipient needs at least 2 tokens, got {len(self.recipient_ids)}")
        if self.sample_index < 0:
            raise ValueError(f"request {self.pair_id!r}: sample_index must be >= 0")


class NonFiniteLogitsError(NonFiniteError):
    """A decode step's logits are not finite (fp16 overflow, a broken weight reached by this input): the condition
    stops there, one line naming model, condition, step and pairs, and the claims that need it are INCONCLUSIVE."""


def sampling_seed(run_seed: int, pair_id: str, sample_index: int) -> int:
    """The seed of the random stream of one (pair, sample): the same for every condition."""
    return derive_seed(run_seed, "sample", pair_id, sample_index)


def eos_ids(lm: LoadedModel) -> frozenset[int]:
    """EOS ids that end a row: the model's generation config's, else the tokenizer's; an id outside the output
    vocabulary (a config default that does not match the tokenizer) is one the model can never emit, and is left out."""
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = lm.tokenizer.eos_token_id
    if configured is None:
        return frozenset()
    vocabulary = lm.model.get_output_embeddings().weight.shape[0]
    return frozenset(i for i in ([configured] if isinstance(configured, int) else configured) if 0 <= i < vocabulary)


def _batches(items: Sequence[GenerationRequest], size: int) -> Iterator[Sequence[GenerationRequest]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _validate(lm: LoadedModel, requests: Sequence[GenerationRequest], patch, capture: CaptureSpec) -> None:
    n_layers = lm.shape.n_layers
    for layer in capture.v_layers + capture.entropy_layers:
        if layer >= n_layers:
            raise ValueError(f"capture layer {layer} does not exist: {lm.name} has {n_layers} layers")
    if patch is None:
        return
    if not isinstance(patch, (KVPatchSpec, ActivationPatchSpec)):
        raise TypeError(f"patch must be a KVPatchSpec or ActivationPatchSpec, got {type(patch).__name__}")
    patch.check_layers(n_layers)
    for request in requests:
        if request.donor_ids is None:
            raise PatchSpecError(f"request {request.pair_id!r} has no donor tokens but a patch was given")
        check_alignment(patch.alignment, len(request.recipient_ids), len(request.donor_ids))
    if (
        isinstance(patch, ActivationPatchSpec)
        and patch.site is ActivationSite.V_PROJ
        and patch.layer in capture.v_layers
        and not capture.allow_patch_site
    ):
        raise PatchSpecError(
            f"capturing V at layer {patch.layer}, the layer the V patch writes, is not a downstream measurement; "
            "capture later layers, or set CaptureSpec(allow_patch_site=True) and choose capture_point explicitly"
        )


class _StepHooks:
    """The single ``edit_output`` callback of the decode-phase hooks: patch and/or capture per path."""

    def __init__(self, patcher: ActivationPatcher | None, patch_path: str | None, capture_paths: dict[str, int], columns: tuple[int, ...], point: CapturePoint) -> None:
        self.patcher, self.patch_path = patcher, patch_path
        self.capture_paths, self.columns, self.point = capture_paths, columns, point
        self.captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in capture_paths.values()}

    def paths(self) -> list[str]:
        return list(self.capture_paths) + ([self.patch_path] if self.patch_path else [])

    def __call__(self, output: torch.Tensor, path: str) -> torch.Tensor:
        layer = self.capture_paths.get(path)
        if layer is not None and self.point is CapturePoint.BEFORE_PATCH:
            self._keep(layer, output)
        if path == self.patch_path:
            output = self.patcher(output, path)
        if layer is not None and self.point is CapturePoint.AFTER_PATCH:
            self._keep(layer, output)
        return output

    def _keep(self, layer: int, output: torch.Tensor) -> None:
        self.captured[layer].append(select_columns(output[:, -1], self.columns).detach().to("cpu", torch.float32))


def _penalise(scores: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    if penalty == 1.0:
        return scores
    penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen, penalised, scores)


def _prefill(lm: LoadedModel, batch: Sequence[GenerationRequest], patch, pad: int):
    """(prefill to decode from, per-row not-applicable maps, activation patcher or None)."""
    recipients = [r.recipient_ids for r in batch]
    if isinstance(patch, KVPatchSpec):
        patched, report = kvcache.patched_prefix(
            lm.model, recipients, [r.donor_ids for r in batch], patch, pad_id=pad, row_keys=[r.pair_id for r in batch],
            prefill_with=reused_prefill,
        )
        return patched, [report.not_applicable_for_row(b) for b in range(len(batch))], None
    if isinstance(patch, ActivationPatchSpec):
        donor_acts = capture_donor_activations(lm, [r.donor_ids for r in batch], patch.site, patch.layer)
        patcher = ActivationPatcher(patch, donor_acts, [len(r) - 1 for r in recipients], site_columns(lm, patch.site))
        with TraceDict(lm.model, [site_path(lm, patch.site, patch.layer)], retain_output=False, edit_output=patcher):
            prefilled, _ = kvcache.patched_prefix(lm.model, recipients, None, None, pad_id=pad)
        patcher.set_phase("decode")
        return prefilled, [{} for _ in batch], patcher
    prefilled = kvcache.patched_prefix(lm.model, recipients, None, None, pad_id=pad, prefill_with=reused_prefill)[0]
    return prefilled, [{} for _ in batch], None


def _plan(lm: LoadedModel, batch: Sequence[GenerationRequest], patch, decoding: DecodingRegime,
          capture: CaptureSpec) -> DecodePlan:
    """The batch's decode plan on the model's decode path (:func:`harness.engine.decode_path.plan_decode`)."""
    hooked = isinstance(patch, ActivationPatchSpec) or (
        bool(capture.v_layers) and not lm.layout.value_is_projection_output)
    shape = lm.shape
    windows = tuple(shape.sliding_window if kind == "sliding_attention" else None for kind in shape.layer_types)
    return plan_decode(
        lm.model, DecodePath(lm.decode_path), needs_attention_weights=bool(capture.entropy_layers),
        needs_eager_attention=lm.layout.needs_eager_attention, hooked=hooked,
        total_length=max(len(r.recipient_ids) for r in batch) - 1 + decoding.max_new_tokens, sliding_windows=windows,
    )


def _generate_batch(
    lm: LoadedModel,
    batch: Sequence[GenerationRequest],
    patch: KVPatchSpec | ActivationPatchSpec | None,
    decoding: DecodingRegime,
    capture: CaptureSpec,
    condition: str,
    run_seed: int,
    keep_first_logits: bool,
    plan: DecodePlan,
) -> list[GenerationRecord]:
    pad = pad_id(lm.tokenizer)
    size = len(batch)
    prefilled, not_applicable, patcher = _prefill(lm, batch, patch, pad)
    stops = eos_ids(lm) if decoding.stop_at_eos else frozenset()
    sampling = decoding.mode is DecodingMode.SAMPLING
    seeds = [sampling_seed(run_seed, r.pair_id, r.sample_index) if sampling else None for r in batch]
    generators = [torch.Generator().manual_seed(s) for s in seeds] if sampling else []
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    seen = torch.zeros((size, vocab), dtype=torch.bool)
    for b, r in enumerate(batch):
        seen[b, list(r.recipient_ids)] = True
    values_from_cache = plan.static_cache and patcher is None and lm.layout.value_is_projection_output
    hooks = _StepHooks(
        patcher,
        site_path(lm, patch.site, patch.layer) if patcher is not None else None,
        {} if values_from_cache else {lm.path(layer, "v_proj"): layer for layer in capture.v_layers},
        lm.v_columns,
        capture.capture_point,
    )
    state = kvcache.DecodeState(
        prefilled, static_cache_length=plan.static_cache_length, model=lm.model,
        forward=compiled_forward(lm.model) if plan.compiled and not hooks.paths() else None,
    )
    generated: list[list[int]] = [[] for _ in batch]
    gaps: list[list[float]] = [[] for _ in batch]
    entropy: dict[int, list[torch.Tensor]] = {layer: [] for layer in capture.entropy_layers}
    finished = [False] * size
    first_logits = None
    first_positions = state.next_positions
    tokens = torch.tensor([r.recipient_ids[-1] for r in batch], dtype=torch.long)
    with TraceDict(lm.model, hooks.paths(), retain_output=False, edit_output=hooks):
        eos_columns = sorted(eos_ids(lm))
        for step_index in range(decoding.max_new_tokens):
            step = state.step(lm.model, tokens, attentions=bool(capture.entropy_layers))
            logits = step.logits.to("cpu")
            if not bool(torch.isfinite(logits).all()):
                rows = [batch[b].pair_id for b in range(size) if not bool(torch.isfinite(logits[b]).all())]
                raise NonFiniteLogitsError(
                    f"{lm.name} {condition}: the logits are not finite at decode step {step_index} (pairs "
                    f"{', '.join(rows[:3])}{' …' if len(rows) > 3 else ''}); nothing is decoded from them")
            if first_logits is None and keep_first_logits:
                first_logits = logits.clone()
            for layer in capture.entropy_layers:
                entropy[layer].append(attention_entropy(step.attentions[layer][:, :, -1, :]).to("cpu"))
            if values_from_cache:
                for layer in capture.v_layers:
                    hooks.captured.setdefault(layer, []).append(state.last_values(layer).to("cpu", torch.float32))
            scores = _penalise(logits, seen, decoding.repetition_penalty)
            if step_index < decoding.min_new_tokens and eos_columns:
                scores = scores.clone()
                scores[:, eos_columns] = -torch.inf
            top2 = scores.topk(2, dim=-1).values
            if sampling:
                probs = torch.softmax(scores / decoding.temperature, dim=-1)
                chosen = torch.cat([torch.multinomial(probs[b], 1, generator=generators[b]) for b in range(size)])
            else:
                chosen = scores.argmax(dim=-1)
            for b in range(size):
                if finished[b]:
                    continue
                token = int(chosen[b])
                generated[b].append(token)
                gaps[b].append(float(top2[b, 0] - top2[b, 1]))
                seen[b, token] = True
                finished[b] = token in stops
            if all(finished):
                break
            tokens = chosen
    records = []
    for b, request in enumerate(batch):
        steps = len(generated[b])
        records.append(
            GenerationRecord(
                pair_id=request.pair_id,
                condition=condition,
                sample_index=request.sample_index,
                recipient_ids=request.recipient_ids,
                donor_ids=request.donor_ids,
                generated_ids=tuple(generated[b]),
                text=lm.tokenizer.decode(generated[b], skip_special_tokens=True),
                stopped_at_eos=bool(generated[b]) and generated[b][-1] in stops,
                first_position=first_positions[b],
                top2_gaps=tuple(gaps[b]),
                seed=seeds[b],
                spec=patch,
                decoding=decoding,
                not_applicable=not_applicable[b],
                intervention_counts=patcher.counts.for_row(b) if patcher is not None else None,
                v_captures={layer: torch.stack([s[b] for s in kept[:steps]]) for layer, kept in hooks.captured.items()},
                attention_entropy={layer: torch.stack([s[b] for s in kept[:steps]]) for layer, kept in entropy.items()},
                first_logits=first_logits[b] if first_logits is not None else None,
                decode_plan={**plan.as_record(), "compiled": plan.compiled and still_compiled(lm.model)},
            )
        )
    return records


def generate(
    lm: LoadedModel,
    requests: Sequence[GenerationRequest],
    *,
    decoding: DecodingRegime = DecodingRegime(),
    patch: KVPatchSpec | ActivationPatchSpec | None = None,
    capture: CaptureSpec = CaptureSpec(),
    condition: str = "natural",
    run_seed: int = 0,
    batch_size: int = 8,
    keep_first_logits: bool = False,
) -> list[GenerationRecord]:
    """Generate one continuation per request, in request order, in left-padded batches of ``batch_size``.

    ``patch`` is applied to every request (each needs ``donor_ids``, checked against the spec's
    alignment). Donor and recipient caches are built fresh per batch and never reused across calls,
    so conditions can run in any order. Results do not depend on ``batch_size`` beyond float rounding.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    _validate(lm, requests, patch, capture)
    records: list[GenerationRecord] = []
    for batch in _batches(requests, batch_size):
        plan = _plan(lm, batch, patch, decoding, capture)
        with attention_implementation(lm.model, plan.attention):
            records.extend(_generate_batch(lm, batch, patch, decoding, capture, condition, run_seed, keep_first_logits,
                                           plan))
    return records
