"""V-patching and residual-stream patching (DESIGN §4.5), through ``harness.engine.hooks``.

An :class:`ActivationPatcher` is an ``edit_output`` callback for ``harness.engine.hooks.TraceDict``. It
writes donor activations into the output of one site — the value projection (``v_proj``; only the
V columns of a fused ``qkv_proj``) or a decoder layer's output (the residual stream after that
layer) — of one layer:

- prefill phase: at each span position ``p`` of row ``b`` (padded index ``pad_b + p``) the output
  becomes the donor's activation at the same absolute position ``p``;
- decode phase (``PERSISTENT`` mode only): the single new position of every row becomes the donor
  vector chosen by ``spec.decode_source``.

Use it as ``TraceDict(model, [site_path(...)], retain_output=False, edit_output=patcher)`` around
the forward calls. The patcher counts, per phase, how many forward calls it saw and how many output elements it
actually changed (``new != old``), so tests and records can show that a persistent patch fires on
decode steps and a prefill-only patch does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from harness.engine.hooks import TraceDict
from harness.engine.patch_specs import ActivationPatchSpec, ActivationSite, DecodeSource, PatchMode, PatchSpecError
from harness.engine.tokens import left_pad, pad_id
from harness.models import LoadedModel
from harness.models.architectures import select_columns

__all__ = [
    "ActivationPatcher",
    "DonorActivations",
    "Phase",
    "PhaseCounts",
    "capture_donor_activations",
    "site_columns",
    "site_path",
]

Phase = str  # "prefill" or "decode"
PHASES: tuple[Phase, ...] = ("prefill", "decode")


def site_path(lm: LoadedModel, site: ActivationSite, layer: int) -> str:
    """Module path of a patch site: the layer's value projection, or the decoder layer itself (residual output)."""
    return lm.path(layer, "v_proj" if site is ActivationSite.V_PROJ else "layer")


def site_columns(lm: LoadedModel, site: ActivationSite) -> tuple[int, ...] | None:
    """Columns of the site's output that the patch owns: V's column indices for the value projection (see
    ``harness.models.architectures.value_columns``), None (every column) for the residual."""
    return lm.v_columns if site is ActivationSite.V_PROJ else None


@dataclass(frozen=True)
class DonorActivations:
    """Clean donor activations at one site: ``rows[b]`` is ``[m_b, width]`` for donor tokens ``0 … m_b−1``."""

    site: ActivationSite
    layer: int
    rows: tuple[torch.Tensor, ...]


@torch.no_grad()
def capture_donor_activations(
    lm: LoadedModel, donor_rows: Sequence[Sequence[int]], site: ActivationSite, layer: int
) -> DonorActivations:
    """Run the donors (left-padded batch, no intervention) and keep each row's activations at the site."""
    path = site_path(lm, site, layer)
    columns = site_columns(lm, site)
    batch = left_pad(donor_rows, pad_id(lm.tokenizer)).to(lm.input_device)
    with TraceDict(lm.model, [path]) as traces:
        lm.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        )
    out = select_columns(traces[path].output, columns)
    return DonorActivations(site, layer, tuple(out[b, off:].clone() for b, off in enumerate(batch.offsets)))


@dataclass
class PhaseCounts:
    """Per phase: forward calls the hook saw, and output elements it changed in each batch row."""

    batch_size: int
    calls: dict[Phase, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    modified: dict[Phase, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.modified = {phase: [0] * self.batch_size for phase in PHASES}

    def for_row(self, row: int) -> dict[Phase, int]:
        """``{phase: elements changed}`` for one row."""
        return {phase: self.modified[phase][row] for phase in PHASES}


class ActivationPatcher:
    """``edit_output`` callback that writes donor activations at one site (see the module docstring).

    ``recipient_lengths[b]`` is the number of recipient tokens prefilled in row ``b`` (``n_b − 1``);
    the prefill batch is left-padded to their maximum. Call :meth:`set_phase` before each phase.
    """

    def __init__(
        self,
        spec: ActivationPatchSpec,
        donor: DonorActivations,
        recipient_lengths: Sequence[int],
        columns: tuple[int, ...] | None,
    ) -> None:
        if (donor.site, donor.layer) != (spec.site, spec.layer):
            raise PatchSpecError(
                f"donor activations are from {donor.site.value} layer {donor.layer}, "
                f"the spec patches {spec.site.value} layer {spec.layer}"
            )
        if len(donor.rows) != len(recipient_lengths):
            raise PatchSpecError(f"{len(donor.rows)} donor rows for {len(recipient_lengths)} recipients")
        self.spec = spec
        self.columns = columns
        width = max(recipient_lengths)
        self.pads = tuple(width - n for n in recipient_lengths)
        # shared positions 0 … min(n_b, m) − 2: the recipient's prefill rows (n = n_b − 1) and the donor's own
        # prefix (its m − 1 rows before its last token), as in a KV patch of an unmatched pair
        self.positions = tuple(
            spec.span.resolve(min(n, d.shape[0] - 1)) for n, d in zip(recipient_lengths, donor.rows)
        )
        self._prefill_values = tuple(d[list(pos)] for d, pos in zip(donor.rows, self.positions))
        if spec.decode_source is DecodeSource.DONOR_LAST:
            decode = [d[-1] for d in donor.rows]
        else:
            decode = [v.mean(dim=0) for v in self._prefill_values]
        self._decode_values = torch.stack(decode)
        self.phase: Phase = "prefill"
        self.counts = PhaseCounts(len(recipient_lengths))

    def set_phase(self, phase: Phase) -> None:
        """Switch between ``prefill`` and ``decode``."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.phase = phase

    def __call__(self, output: torch.Tensor, path: str) -> torch.Tensor:
        self.counts.calls[self.phase] += 1
        if self.phase == "decode" and self.spec.mode is PatchMode.PREFILL_ONLY:
            return output
        new = output.clone()
        # the owned columns as an index (V of a fused projection may be interleaved), broadcast against positions
        cols = (
            torch.arange(new.shape[-1], device=new.device)
            if self.columns is None
            else torch.as_tensor(self.columns, dtype=torch.long, device=new.device)
        )
        if self.phase == "prefill":
            for b, (pad, positions) in enumerate(zip(self.pads, self.positions)):
                index = torch.tensor([pad + p for p in positions], device=new.device)
                new[b, index[:, None], cols[None, :]] = self._prefill_values[b].to(device=new.device, dtype=new.dtype)
        else:
            if output.shape[1] != 1:
                raise PatchSpecError(f"a decode step feeds one token per row, got {output.shape[1]}")
            new[:, 0, cols] = self._decode_values.to(device=new.device, dtype=new.dtype)
        changed = (new != output).flatten(1).sum(dim=1).tolist()
        self.counts.modified[self.phase] = [a + int(c) for a, c in zip(self.counts.modified[self.phase], changed)]
        return new
