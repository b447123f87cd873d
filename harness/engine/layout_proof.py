"""The proof of an inferred layout at load: the engine invariants on a short probe, before any claim runs.

The proof needs the engine (caches, patches, decoding), which imports the models room, so the models room cannot
import it: :func:`harness.models.loading.load_model` calls the prover this module registers when it is imported
(:func:`harness.models.layout_inference.register_layout_prover`). The pytest plugin imports it; a script that loads a
model without a row through ``load_model`` imports ``harness.engine.layout_proof`` first (the loader says so in one
line otherwise).

A layout read off a module tree (:mod:`harness.models.layout_inference`) is a guess about where V lives. Every
measurement of the suite rests on it, so it is accepted only when the invariants that the family acceptance tests
(``tests/engine/test_model_architectures.py``) assert for every row also hold on this model, in this dtype, on this
device, for two probe texts:

1. **captured V = cached V**: the value projection's output at the layout's V columns, reshaped to KV heads, is
   exactly what the cache stores as values, in every layer (a left-padded batch of two rows). For a fused
   projection each candidate column order is tried and the first that passes is kept.
2. **a V patch lands in its layer only**: writing the donor's V into the value projection's output at the last
   layer makes the cached values there the donor's, and leaves every lower layer's keys and values as they were.
3. **self-patch identity**: patching a cache with a copy of itself (α = 0.3 and 1, all layers) changes no logit.
4. **α endpoints**: α = 0 leaves the recipient's cache, α = 1 over every layer and position gives the donor's.
5. **batched ≡ single**: first-step logits of each row in a left-padded batch equal its single-row logits
   (max |Δ logit| within :func:`logit_tolerance`).
6. **key re-rotation**: the probe's cache encoded at positions 0… and moved by Δ (every key re-rotated) holds the
   keys of the same tokens encoded at positions Δ…, in every layer (within :func:`key_tolerance`), with the rotary
   pairing read off the model or, failing that, the other one.

A failure raises :class:`LayoutProofError`: one line naming the layout found and the invariant that failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.engine import kvcache
from harness.engine.hooks import TraceDict
from harness.engine.patch_specs import KVPatchSpec
from harness.engine.tokens import encode, pad_id
from harness.models.architectures import ArchitectureLayout, UnknownArchitectureError, module_path, select_columns, value_columns
from harness.models.layout_inference import InferredLayouts, register_layout_prover
from harness.models.loaded import ModelShape

__all__ = ["LayoutProof", "LayoutProofError", "PROBE_TEXTS", "key_tolerance", "logit_tolerance", "prove_layout",
           "proven_layout"]

PROBE_TEXTS = (
    "The river bends twice before it reaches the old mill, where the water slows and turns green under the trees.",
    "Observe the observer who is noticing this sentence being read, and notice what notices the noticing itself.",
)
"""The two probe texts (recipient, donor); cut to equal token counts. Any two different texts would do."""
MIN_PROBE_TOKENS = 8
"""Tokens each probe row needs (the batched check drops 3 from one row and keeps at least 4)."""


class LayoutProofError(UnknownArchitectureError):
    """An inferred layout failed an engine invariant on the load-time probe (one line)."""


@dataclass(frozen=True)
class LayoutProof:
    """A proven layout and what proved it: ``checks`` passed in order, ``rejected`` the candidate V column orders
    that failed check 1 (``qkv_blocks`` on a per-head fused projection, say)."""

    layout: ArchitectureLayout
    found: str
    checks: tuple[str, ...]
    rejected: tuple[str, ...] = field(default=())

    def provenance(self) -> dict[str, Any]:
        """The record a run's provenance keeps: ``layout: inferred (proven at load)`` and the layout found."""
        row = self.layout
        return {
            "layout": "inferred (proven at load)",
            "layout_proof": {
                "layers_path": row.layers_path, "attn_name": row.attn_name, "proj_names": list(row.proj_names),
                "value_layout": row.value_layout, "found": self.found, "checks": list(self.checks),
                "rejected_value_layouts": list(self.rejected),
            },
        }


def logit_tolerance(dtype: torch.dtype, scale: float) -> float:
    """Largest |Δ logit| accepted between two computations that should agree (batched vs single rows): 1e-4 in
    float32 (as the family tests), 2⁻⁶ of the logit scale in bf16 / fp16 (a few units in their last place)."""
    return 1e-4 if dtype == torch.float32 else max(1e-4, scale * 2.0**-6)


def key_tolerance(dtype: torch.dtype, scale: float) -> float:
    """Largest |Δ| accepted between a re-rotated key and the key encoded there (``scale``: the largest |key| of the
    layer): 1e-4 of the scale (at least 1e-4) in float32, 2⁻⁵ of it in bf16 / fp16 (a few units in the last of their
    8 or 11 mantissa bits, accumulated over the layers). A key rotated by the wrong angle, or rotated where the layer
    has no rotary, is off by a sizeable fraction of the scale."""
    return max(1e-4, scale * 1e-4) if dtype == torch.float32 else max(1e-4, scale * 2.0**-5)


def _rows(tokenizer: Any) -> tuple[list[int], list[int]]:
    a, b = (encode(tokenizer, text) for text in PROBE_TEXTS)
    n = min(len(a), len(b))
    if n < MIN_PROBE_TOKENS or a[:n] == b[:n]:
        raise LayoutProofError(f"the tokenizer cuts the probe texts to {n} tokens (< {MIN_PROBE_TOKENS} or equal rows)")
    return a[:n], b[:n]


def _first_logits(model: nn.Module, state: kvcache.Prefill, last: list[int]) -> torch.Tensor:
    return kvcache.DecodeState(state).step(model, torch.tensor(last)).logits.float()


def _same_cache(a: kvcache.Prefill, b: kvcache.Prefill) -> bool:
    return all(
        torch.equal(x, y)
        for layer in range(kvcache.num_layers(a))
        for x, y in zip(kvcache.layer_kv(a, layer), kvcache.layer_kv(b, layer))
    )


class _Probe:
    """The probe's model, rows and helpers; each ``check_*`` returns None or the words of what failed."""

    def __init__(self, model: nn.Module, tokenizer: Any, shape: ModelShape) -> None:
        self.model, self.shape = model, shape
        self.pad = pad_id(tokenizer)
        self.rec, self.don = _rows(tokenizer)
        self.dtype = next(model.parameters()).dtype
        self.rotary_pairing = ""

    def prefill(self, *rows: list[int]) -> kvcache.Prefill:
        return kvcache.prefill(self.model, list(rows), pad_id=self.pad)

    def check_captured_v(self, layout: ArchitectureLayout) -> str | None:
        g = self.shape
        try:
            columns = value_columns(layout, g.n_heads, g.n_kv_heads, g.head_dim)
        except ValueError as exc:
            return str(exc)
        paths = [module_path(layout, layer, "v_proj") for layer in range(g.n_layers)]
        with TraceDict(self.model, paths) as traces:
            state = self.prefill(self.rec[:-1], self.don[:-4])
        for layer, path in enumerate(paths):
            output = traces[path].output
            if output is None or max(columns) >= output.shape[-1]:
                return f"layer {layer}: `{path}` gives no output with {max(columns) + 1} columns"
            out = select_columns(output, columns)
            reshaped = out.reshape(out.shape[0], out.shape[1], g.n_kv_heads, g.head_dim).transpose(1, 2)
            start, stop = kvcache.held_range(state, layer)
            cached = kvcache.layer_kv(state, layer)[1]
            if cached.shape != reshaped[:, :, start:stop].shape or not torch.equal(cached, reshaped[:, :, start:stop]):
                return f"captured V ≠ cached V at layer {layer}"
        return None

    def check_v_patch_lands(self, layout: ArchitectureLayout) -> str | None:
        g = self.shape
        layer = g.n_layers - 1
        columns = torch.as_tensor(value_columns(layout, g.n_heads, g.n_kv_heads, g.head_dim))
        path = module_path(layout, layer, "v_proj")
        with TraceDict(self.model, [path]) as traces:
            self.prefill(self.don[:-1])
        donor_v = traces[path].output[..., columns.to(traces[path].output.device)].clone()

        def write(output: torch.Tensor, _: str) -> torch.Tensor:
            edited = output.clone()
            edited[..., columns.to(output.device)] = donor_v.to(output.dtype)
            return edited

        with TraceDict(self.model, [path], retain_output=False, edit_output=write):
            patched = self.prefill(self.rec[:-1])
        clean = self.prefill(self.rec[:-1])
        expected = donor_v.reshape(1, -1, g.n_kv_heads, g.head_dim).transpose(1, 2)
        if not torch.equal(kvcache.layer_kv(patched, layer)[1], expected):
            return f"a V patch written into `{path}` is not what layer {layer} caches"
        for lower in range(layer):
            if not all(torch.equal(a, b) for a, b in zip(kvcache.layer_kv(patched, lower), kvcache.layer_kv(clean, lower))):
                return f"a V patch at layer {layer} changed the cache of layer {lower}"
        return None

    def check_self_patch(self) -> str | None:
        state = self.prefill(self.rec[:-1])
        natural = _first_logits(self.model, state, [self.rec[-1]])
        everything = tuple(range(self.shape.n_layers))
        for alpha in (0.3, 1.0):
            patched, _ = kvcache.patch_kv(state, self.prefill(self.rec[:-1]), KVPatchSpec(everything, alpha=alpha))
            if not torch.equal(_first_logits(self.model, patched, [self.rec[-1]]), natural):
                return f"patching a cache with a copy of itself (α = {alpha}) changed the logits"
        return None

    def check_alpha_endpoints(self) -> str | None:
        recipient, donor = self.prefill(self.rec[:-1]), self.prefill(self.don[:-1])
        everything = tuple(range(self.shape.n_layers))
        zero, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(everything, alpha=0.0))
        one, _ = kvcache.patch_kv(recipient, donor, KVPatchSpec(everything, alpha=1.0))
        if not _same_cache(zero, recipient):
            return "α = 0 did not leave the recipient's cache"
        if not _same_cache(one, donor):
            return "α = 1 over every layer did not give the donor's cache"
        return None

    def check_batched_equals_single(self) -> str | None:
        rows = [self.rec, self.don[:-3]]
        batched = _first_logits(self.model, self.prefill(*(r[:-1] for r in rows)), [r[-1] for r in rows])
        for b, row in enumerate(rows):
            single = _first_logits(self.model, self.prefill(row[:-1]), [row[-1]])[0]
            gap = (batched[b] - single).abs().max().item()
            tolerance = logit_tolerance(self.dtype, single.abs().max().item())
            if not gap <= tolerance:
                return f"row {b} of a left-padded batch differs from its single-row logits by {gap:.3g} (> {tolerance:.3g})"
        return None

    def check_rerotation(self) -> str | None:
        """Rotary attention depends on relative positions only, so the cache of the probe encoded at positions 0…
        and moved by Δ = 3 (every stored key re-rotated, :func:`~harness.engine.kvcache.shift_positions`) must hold
        the keys of the same tokens encoded at positions 3…, in every layer (a layer without rotary, such as a NoPE
        layer, fails). The pairing :func:`~harness.engine.kvcache.rope_interleaved` reads off ``rotary_emb`` is
        tried first; if only the other pairing holds it is recorded for this model
        (:func:`~harness.engine.kvcache.set_rope_interleaved`)."""
        delta = 3
        tokens = self.rec[:-1]
        state = self.prefill(tokens)
        there = kvcache.prefill(self.model, [tokens], pad_id=self.pad, position_offset=delta)
        worst: dict[bool, tuple[float, int, float]] = {}
        for interleaved in (state.rope_interleaved, not state.rope_interleaved):
            moved = kvcache.shift_positions(dataclasses.replace(state, rope_interleaved=interleaved), delta)
            worst[interleaved] = (0.0, -1, 0.0)
            for layer in range(kvcache.num_layers(state)):
                target = kvcache.layer_kv(there, layer)[0].float()
                tolerance = key_tolerance(self.dtype, target.abs().max().item())
                gap = (kvcache.layer_kv(moved, layer)[0].float() - target).abs().max().item()
                if not gap <= tolerance:
                    worst[interleaved] = (gap, layer, tolerance)
                    break
            else:
                if interleaved != state.rope_interleaved:
                    kvcache.set_rope_interleaved(self.model, interleaved)
                self.rotary_pairing = "interleaved" if interleaved else "half-split"
                return None
        gap, layer, tolerance = worst[state.rope_interleaved]
        return (f"keys re-rotated by {delta} positions differ from the keys encoded there by {gap:.3g} at layer {layer} "
                f"(> {tolerance:.3g}) with either rotary pairing (a layer without rotary, or frequencies that depend on "
                "the position or the length?)")


def _guarded(check: Callable[[], str | None]) -> str | None:
    """A check's words of failure, an exception it raised (the model cannot run the probe) included, in one line."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure of the probe refuses the layout, named in one line
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0] if text else ''}"


def prove_layout(model: nn.Module, tokenizer: Any, shape: ModelShape, inferred: InferredLayouts) -> LayoutProof:
    """The first candidate of ``inferred`` that passes every invariant of the module docstring.

    Raises:
        LayoutProofError: one line with the model_type, the layout found and the invariant that failed.
    """
    probe = _Probe(model, tokenizer, shape)
    model_type = getattr(model.config, "model_type", None)
    where = f"model_type {model_type!r} ({type(model).__name__}): inferred layout ({inferred.found})"
    rejected: list[str] = []
    layout: ArchitectureLayout | None = None
    with torch.no_grad():
        for candidate in inferred.candidates:
            problem = _guarded(lambda: probe.check_captured_v(candidate))
            if problem is None:
                layout = candidate
                break
            rejected.append(f"{candidate.value_layout}: {problem}")
        if layout is None:
            raise LayoutProofError(f"{where} refused by the load-time probe: " + "; ".join(rejected))
        checks = ["captured V = cached V"]
        for name, run in (
            ("a V patch lands in its layer only", lambda: probe.check_v_patch_lands(layout)),
            ("self-patch identity", probe.check_self_patch),
            ("α endpoints", probe.check_alpha_endpoints),
            ("batched ≡ single", probe.check_batched_equals_single),
            ("key re-rotation", probe.check_rerotation),
        ):
            problem = _guarded(run)
            if problem is not None:
                raise LayoutProofError(f"{where}, V as {layout.value_layout}, refused by the load-time probe: {name} "
                                       f"failed: {problem}")
            checks.append(name)
    checks[-1] = f"key re-rotation ({probe.rotary_pairing} rotary pairs)"
    return LayoutProof(layout, inferred.found, tuple(checks), tuple(r.split(":")[0] for r in rejected))


def proven_layout(model: nn.Module, tokenizer: Any, shape: ModelShape,
                  inferred: InferredLayouts) -> tuple[ArchitectureLayout, dict[str, Any]]:
    """The registered prover: the layout :func:`prove_layout` accepts and its provenance record."""
    proof = prove_layout(model, tokenizer, shape, inferred)
    return proof.layout, proof.provenance()


register_layout_prover(proven_layout)
