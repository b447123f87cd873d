"""Experimental conditions as model-independent data, the suite's catalogue, and constructors for new ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from harness.engine import patch_specs
from harness.models import LoadedModel
from harness.engine.patch_specs import (
    ActivationPatchSpec, ActivationSite, Components, Control, ControlKind, DecodeSource, KVPatchSpec, PatchMode,
    Span,
)
from harness.prompts.pairing import PairRole
from harness.foundation.seeds import derive_seed
from harness.foundation.serialize import to_builtin



@dataclass(frozen=True)
class LayerSet:
    """A model-independent choice of layers, resolved per model by :meth:`resolve`.

    Kinds: ``patch_set`` (the model's registered KV patch layers, the second half by default), ``late``
    (the registered late layer), ``around_late`` (late ± ``radius``, clipped to the stack: the peak zone),
    ``quarter`` (layers ``[q·L/4, (q+1)·L/4)`` for ``quarter`` q = 0..3, integer division), ``explicit``.
    """

    kind: Literal["patch_set", "late", "around_late", "quarter", "explicit"]
    radius: int = 0
    quarter: int = 0
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("patch_set", "late", "around_late", "quarter", "explicit"):
            raise ValueError(f"unknown layer-set kind {self.kind!r}")
        if self.kind == "around_late" and self.radius < 1:
            raise ValueError(f"around_late needs radius >= 1, got {self.radius}")
        if self.kind == "quarter" and self.quarter not in (0, 1, 2, 3):
            raise ValueError(f"quarter must be 0..3, got {self.quarter}")
        if self.kind == "explicit" and not self.layers:
            raise ValueError("an explicit layer set needs at least one layer")

    @classmethod
    def patch_set(cls) -> LayerSet:
        return cls("patch_set")

    @classmethod
    def late(cls) -> LayerSet:
        return cls("late")

    @classmethod
    def around_late(cls, radius: int = 2) -> LayerSet:
        return cls("around_late", radius=radius)

    @classmethod
    def quarter_of(cls, quarter: int) -> LayerSet:
        return cls("quarter", quarter=quarter)

    @classmethod
    def explicit(cls, layers: Sequence[int]) -> LayerSet:
        return cls("explicit", layers=tuple(sorted(set(layers))))

    def resolve(self, lm: LoadedModel) -> tuple[int, ...]:
        """The concrete layer indices for ``lm``."""
        n = lm.shape.n_layers
        if self.kind == "patch_set":
            return tuple(lm.layers.patch_layers)
        if self.kind == "late":
            return (lm.layers.late,)
        if self.kind == "around_late":
            return tuple(range(max(0, lm.layers.late - self.radius), min(n, lm.layers.late + self.radius + 1)))
        if self.kind == "quarter":
            lo, hi = self.quarter * n // 4, (self.quarter + 1) * n // 4
            if hi <= lo:
                raise ValueError(f"{lm.name} has {n} layers: quarter {self.quarter} is empty")
            return tuple(range(lo, hi))
        bad = [layer for layer in self.layers if layer >= n]
        if bad:
            raise ValueError(f"{lm.name} has {n} layers; layers {bad} do not exist")
        return self.layers


class Intervention(str, Enum):
    """What a condition changes: nothing (natural run), the KV cache, ``v_proj`` output or the residual stream."""

    NONE = "none"
    KV = "kv"
    V_PROJ = "v_proj"
    RESIDUAL = "residual"


@dataclass(frozen=True)
class Condition:
    """A named experimental condition as data (see the module docstring). Build with the constructors.

    ``pair_positions`` (KV only) lists explicit token positions per pair id, overriding ``span`` for those
    pairs (e.g. the positions of self-referential donor tokens); a pair not listed uses ``span``.
    ``control`` is a :class:`~harness.engine.patch_specs.ControlKind`; its roles follow
    :func:`harness.engine.patch_specs.assign_roles`. The name labels reports; the cache key ignores it.
    """

    name: str
    recipient: PairRole
    donor: PairRole | None = None
    intervention: Intervention = Intervention.NONE
    layers: LayerSet | None = None
    span: Span = Span()
    pair_positions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    alpha: float = 1.0
    components: Components = Components.KV
    control: ControlKind | None = None
    mode: PatchMode = PatchMode.PERSISTENT
    decode_source: DecodeSource = DecodeSource.DONOR_LAST

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a condition needs a name")
        natural = self.intervention is Intervention.NONE
        if natural != (self.donor is None):
            raise ValueError(f"condition {self.name!r}: a donor is needed exactly when something is patched")
        if not natural and self.layers is None:
            raise ValueError(f"condition {self.name!r}: a patch needs a LayerSet")
        if self.intervention not in (Intervention.KV,) and (self.control is not None or self.pair_positions):
            raise ValueError(f"condition {self.name!r}: controls and per-pair positions apply to KV patches only")
        if self.control is not None and self.donor is not None:
            allowed = _allowed_roles(self.control)
            if (self.recipient, self.donor) not in allowed:
                needs = " or ".join(f"{r.value}/{d.value}" for r, d in allowed)
                raise ValueError(f"condition {self.name!r}: the {self.control.value} control needs recipient/donor {needs}")
        if self.control is None and self.donor is not None and (self.recipient, self.donor) != (PairRole.BASELINE, PairRole.RECURSIVE):
            raise ValueError(f"condition {self.name!r}: without a control the recipient is baseline and the donor recursive")

    @property
    def natural(self) -> bool:
        """True for an unpatched run."""
        return self.intervention is Intervention.NONE

    def patch_for(self, lm: LoadedModel, pair_id: str, run_seed: int) -> KVPatchSpec | ActivationPatchSpec | None:
        """The exact patch spec this condition runs for ``pair_id`` on ``lm`` (None for a natural run).

        The shuffled and random controls get ``Control.seed = derive_seed(run_seed, "control", kind)``;
        kvcache combines it with the pair id, so each pair has its own, reproducible draw.
        """
        if self.natural:
            return None
        layers = self.layers.resolve(lm)  # type: ignore[union-attr]
        if self.intervention is Intervention.KV:
            control = None
            if self.control is not None:
                transforms = self.control in (ControlKind.SHUFFLED, ControlKind.RANDOM_NORM_MATCHED)
                seed = derive_seed(run_seed, "control", self.control.value) if transforms else 0
                control = Control(self.control, seed=seed)
            positions = dict(self.pair_positions).get(pair_id)
            span = Span.at(positions) if positions is not None else self.span
            return KVPatchSpec(layers=layers, span=span, alpha=self.alpha, components=self.components, control=control)
        if len(layers) != 1:
            raise ValueError(f"condition {self.name!r}: an activation patch writes one layer, got {layers}")
        site = ActivationSite.V_PROJ if self.intervention is Intervention.V_PROJ else ActivationSite.RESIDUAL
        return ActivationPatchSpec(site=site, layer=layers[0], span=self.span, mode=self.mode,
                                   decode_source=self.decode_source)

    def describe(self) -> dict[str, Any]:
        """The condition as builtins (for reports)."""
        return to_builtin(self, nonfinite="keep")


def _roles_for(control: ControlKind) -> tuple[PairRole, PairRole]:
    recipient, donor = patch_specs.assign_roles(
        Control(control), recursive=PairRole.RECURSIVE, baseline=PairRole.BASELINE,
        other_baseline=PairRole.OTHER_BASELINE, other_recursive=PairRole.OTHER_RECURSIVE,
    )
    return recipient, donor


REVERSED_ROLES = (PairRole.RECURSIVE, PairRole.BASELINE)
"""Recipient/donor of the reverse patch: a tensor control (shuffled, random) may run in this direction too, e.g.
noise with the baseline donor's norms into the recursive recipient."""


def _allowed_roles(control: ControlKind) -> tuple[tuple[PairRole, PairRole], ...]:
    """The recipient/donor roles ``control`` can run with: those of :func:`harness.engine.patch_specs.assign_roles`, and for
    the tensor controls (which transform the donor's tensors whatever prompt it is) also :data:`REVERSED_ROLES`."""
    main = _roles_for(control)
    return (main, REVERSED_ROLES) if Control(control).transforms_donor else (main,)


def kv_condition(
    name: str,
    *,
    layers: LayerSet = LayerSet.patch_set(),
    span: Span = Span(),
    alpha: float = 1.0,
    components: Components = Components.KV,
    control: ControlKind | None = None,
    pair_positions: Mapping[str, Sequence[int]] | None = None,
    reversed_roles: bool = False,
) -> Condition:
    """A KV-patch condition (default: K+V over the patch set, all shared positions, α = 1).

    Roles follow the control: main and tensor controls patch recursive → baseline, ``REVERSE`` baseline →
    recursive, ``CROSS_BASELINE`` other baseline → baseline, ``CROSS_RECURSIVE`` other recursive → recursive.
    ``reversed_roles`` (tensor controls only) runs the control in the reverse direction, baseline donor →
    recursive recipient (:data:`REVERSED_ROLES`).
    """
    if reversed_roles:
        if control is None or not Control(control).transforms_donor:
            raise ValueError(f"condition {name!r}: reversed_roles applies to the shuffled and random controls only")
        recipient, donor = REVERSED_ROLES
    else:
        recipient, donor = _roles_for(control) if control is not None else (PairRole.BASELINE, PairRole.RECURSIVE)
    positions = tuple(sorted((k, tuple(v)) for k, v in (pair_positions or {}).items()))
    return Condition(name, recipient, donor, Intervention.KV, layers, span, positions, alpha, components, control)


def activation_condition(
    name: str,
    *,
    site: ActivationSite = ActivationSite.V_PROJ,
    layer: LayerSet = LayerSet.late(),
    span: Span = Span(),
    mode: PatchMode = PatchMode.PERSISTENT,
    decode_source: DecodeSource = DecodeSource.DONOR_LAST,
) -> Condition:
    """An activation-patch condition at one layer (default: V at the late layer, persistent during decoding)."""
    intervention = Intervention.V_PROJ if site is ActivationSite.V_PROJ else Intervention.RESIDUAL
    return Condition(name, PairRole.BASELINE, PairRole.RECURSIVE, intervention, layer, span, mode=mode,
                     decode_source=decode_source)


NATURAL_BASELINE = Condition("natural_baseline", PairRole.BASELINE)
"""B: the baseline prompt, unpatched."""
NATURAL_RECURSIVE = Condition("natural_recursive", PairRole.RECURSIVE)
"""A: the recursive prompt, unpatched."""
KV_MAIN = kv_condition("kv_main")
"""B⊕A: K and V of the patch set (second half of the layers), all shared positions, α = 1."""
KV_SINGLE_LATE = kv_condition("kv_single_late", layers=LayerSet.late())
"""B⊕A at the late layer only."""
V_PATCH_LATE = activation_condition("v_patch_late")
"""B with A's ``v_proj`` output at the late layer: prompt positions aligned, and on every decode step A's last-token V."""
REVERSE = kv_condition("reverse", control=ControlKind.REVERSE)
"""A⊕B: the baseline's K/V over the patch set into the recursive recipient."""
ORDER_ABLATION = kv_condition("order_ablation", control=ControlKind.SHUFFLED)
"""B⊕A with A's positions permuted by a seeded derangement (keys re-rotated to their new positions): an order
ablation, not a null, since it keeps A's whole set of K/V vectors."""
RANDOM_NORM_MATCHED = kv_condition("control_random", control=ControlKind.RANDOM_NORM_MATCHED)
"""B⊕noise: Gaussian K/V with A's norm per layer, KV head and position."""
CROSS_BASELINE = kv_condition("control_cross_baseline", control=ControlKind.CROSS_BASELINE)
"""B⊕B': another baseline prompt of the same length as donor."""
REVERSE_RECURSIVE_DONOR = kv_condition("reverse_recursive_donor", control=ControlKind.CROSS_RECURSIVE)
"""A⊕A': another recursive prompt of A's token length as donor into the recursive recipient (reverse-patch contrast)."""
REVERSE_RANDOM = kv_condition("reverse_random", control=ControlKind.RANDOM_NORM_MATCHED, reversed_roles=True)
"""A⊕noise: Gaussian K/V with the baseline donor B's norm per layer, KV head and position into the recursive
recipient (reverse-patch contrast)."""

ALPHAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The registered mixing weights of the dose-response claim."""


def kv_alpha(alpha: float) -> Condition:
    """The second-half KV patch at mixing weight α; α = 0 is :data:`NATURAL_BASELINE` (mixing with weight 0
    leaves the recipient's cache bit for bit unchanged, tested) and α = 1 is :data:`KV_MAIN`."""
    if alpha == 0.0:
        return NATURAL_BASELINE
    if alpha == 1.0:
        return KV_MAIN
    return kv_condition(f"kv_alpha_{alpha:g}", alpha=alpha)


CATALOGUE: dict[str, Condition] = {
    c.name: c
    for c in (
        NATURAL_BASELINE, NATURAL_RECURSIVE, KV_MAIN, *(kv_alpha(a) for a in ALPHAS[1:-1]), KV_SINGLE_LATE,
        V_PATCH_LATE, REVERSE, ORDER_ABLATION, RANDOM_NORM_MATCHED, CROSS_BASELINE, REVERSE_RECURSIVE_DONOR,
        REVERSE_RANDOM,
    )
}
"""The suite's named conditions (model-independent)."""
