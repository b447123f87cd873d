"""Immutable patch specifications and controls (DESIGN §4.3–4.5).

A spec is a small frozen value, validated when it is built, that says *what* to patch; the
tensor work happens in :mod:`harness.engine.kvcache` (KV caches) and :mod:`harness.engine.interventions`
(``v_proj`` / residual-stream activations). Records store the exact spec that ran.

Positions are absolute token positions counted from the first prompt token (BOS included), the
same in recipient and donor: position ``p`` of the recipient is patched from position ``p`` of the
donor, with the same RoPE phase. For a recipient of ``n`` tokens the prefix cache holds positions
``0 … n−2``; a donor of ``m`` tokens contributes the positions of its own prefix ``0 … m−2`` that the
recipient's prefix also holds (``n_shared = min(n, m) − 1``). Spans select among those shared positions.

Controls (§4.4):

- ``SHUFFLED``: donor positions permuted inside the span by a seeded derangement (no position keeps
  its own donor entry), the same permutation for K and V and for every layer. The moved keys are
  re-rotated from their source position's RoPE phase to the target position's
  (:func:`harness.engine.kv_math.rotate_keys`).
  Without that, a joint K/V permutation is *exactly* the main condition for every decode query:
  attention is a sum over (key, value) pairs, so it is invariant to permuting them together (the
  "in-window shuffle identical to main" pitfall). With re-rotation the donor's states sit at new
  relative distances, which is what a position shuffle is meant to test;
- ``RANDOM_NORM_MATCHED``: donor K/V replaced by Gaussian vectors whose Euclidean norm equals the
  donor's, per layer, KV head and position;
- ``CROSS_BASELINE``: the donor is a different baseline prompt;
- ``REVERSE``: recipient and donor roles swapped (recipient recursive, donor baseline);
- ``CROSS_RECURSIVE``: recipient recursive, donor a different recursive prompt (the reverse patch's
  same-length recursive contrast).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

__all__ = [
    "ActivationPatchSpec",
    "ActivationSite",
    "Alignment",
    "Components",
    "Control",
    "ControlKind",
    "DecodeSource",
    "KVPatchSpec",
    "PatchMode",
    "PatchSpecError",
    "Span",
    "SpanKind",
    "assign_roles",
    "check_alignment",
]

T = TypeVar("T")


class PatchSpecError(ValueError):
    """A patch specification is invalid, or does not fit the prompts or model it is applied to."""


class Alignment(str, Enum):
    """How recipient and donor positions correspond. Both align absolute positions from BOS.

    ``LENGTH_MATCHED`` (primary design) requires equal token counts and rejects other pairs;
    ``SHARED_PREFIX`` (reported variant) accepts unequal lengths and patches only the positions
    both prompts have.
    """

    LENGTH_MATCHED = "length_matched"
    SHARED_PREFIX = "shared_prefix"


def check_alignment(alignment: Alignment, recipient_tokens: int, donor_tokens: int) -> None:
    """Raise :class:`PatchSpecError` when a pair of full prompt lengths violates ``alignment``."""
    if recipient_tokens < 2:
        raise PatchSpecError(
            f"recipient prompt has {recipient_tokens} token(s); patching needs at least 2 "
            "(a prefix to cache and a last token to decode from)"
        )
    if donor_tokens < 1:
        raise PatchSpecError("donor prompt is empty")
    if alignment is Alignment.LENGTH_MATCHED and recipient_tokens != donor_tokens:
        raise PatchSpecError(
            f"alignment=length_matched needs equal token counts, got recipient {recipient_tokens} "
            f"and donor {donor_tokens}; use Alignment.SHARED_PREFIX for unmatched pairs"
        )


class SpanKind(str, Enum):
    """Which of the shared positions a span selects (see :meth:`Span.resolve`)."""

    ALL = "all"
    FIRST_QUARTER = "first_quarter"
    MIDDLE_HALF = "middle_half"
    LAST_QUARTER = "last_quarter"
    RANGE = "range"
    POSITIONS = "positions"


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PatchSpecError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise PatchSpecError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Span:
    """A selection of shared token positions.

    Build with the class methods. With ``n`` shared positions the fraction spans are, with
    ``a = floor(n/4)`` and ``b = n − floor(n/4)``: first quarter ``[0, a)``, middle half ``[a, b)``,
    last quarter ``[b, n)`` — a partition of ``[0, n)``. ``range(start, stop)`` is ``[start, stop)``
    with ``stop=None`` meaning the end; ``positions`` lists positions explicitly.
    """

    kind: SpanKind = SpanKind.ALL
    start: int | None = None
    stop: int | None = None
    positions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, SpanKind):
            raise PatchSpecError(f"span kind must be a SpanKind, got {self.kind!r}")
        if self.kind is SpanKind.RANGE:
            _check_int("span start", self.start, 0)
            if self.stop is not None and _check_int("span stop", self.stop, 1) <= self.start:
                raise PatchSpecError(f"span range [{self.start}, {self.stop}) is empty")
        elif self.start is not None or self.stop is not None:
            raise PatchSpecError(f"span kind {self.kind.value} takes no start/stop")
        if self.kind is SpanKind.POSITIONS:
            if not self.positions:
                raise PatchSpecError("an explicit span needs at least one position")
            for p in self.positions:
                _check_int("span position", p, 0)
            if list(self.positions) != sorted(set(self.positions)):
                raise PatchSpecError(f"span positions must be strictly increasing, got {self.positions}")
        elif self.positions is not None:
            raise PatchSpecError(f"span kind {self.kind.value} takes no explicit positions")

    @classmethod
    def all(cls) -> Span:
        return cls(SpanKind.ALL)

    @classmethod
    def first_quarter(cls) -> Span:
        return cls(SpanKind.FIRST_QUARTER)

    @classmethod
    def middle_half(cls) -> Span:
        return cls(SpanKind.MIDDLE_HALF)

    @classmethod
    def last_quarter(cls) -> Span:
        return cls(SpanKind.LAST_QUARTER)

    @classmethod
    def range(cls, start: int, stop: int | None = None) -> Span:
        return cls(SpanKind.RANGE, start=start, stop=stop)

    @classmethod
    def at(cls, positions: Sequence[int]) -> Span:
        return cls(SpanKind.POSITIONS, positions=tuple(positions))

    def resolve(self, n_shared: int) -> tuple[int, ...]:
        """The selected positions among ``0 … n_shared−1``; raises if empty or out of range."""
        _check_int("number of shared positions", n_shared, 1)
        quarter = n_shared // 4
        if self.kind is SpanKind.ALL:
            lo, hi = 0, n_shared
        elif self.kind is SpanKind.FIRST_QUARTER:
            lo, hi = 0, quarter
        elif self.kind is SpanKind.MIDDLE_HALF:
            lo, hi = quarter, n_shared - quarter
        elif self.kind is SpanKind.LAST_QUARTER:
            lo, hi = n_shared - quarter, n_shared
        elif self.kind is SpanKind.RANGE:
            lo, hi = self.start, n_shared if self.stop is None else self.stop
            if hi > n_shared:
                raise PatchSpecError(f"span range [{self.start}, {self.stop}) exceeds the {n_shared} shared positions")
        else:
            if self.positions[-1] >= n_shared:
                raise PatchSpecError(
                    f"span position {self.positions[-1]} is outside the {n_shared} shared positions"
                )
            return self.positions
        if hi <= lo:
            raise PatchSpecError(f"span {self.kind.value} is empty for {n_shared} shared positions")
        return tuple(range(lo, hi))


class ControlKind(str, Enum):
    """Control conditions of DESIGN §4.4 (see the module docstring)."""

    SHUFFLED = "shuffled"
    RANDOM_NORM_MATCHED = "random_norm_matched"
    CROSS_BASELINE = "cross_baseline"
    REVERSE = "reverse"
    CROSS_RECURSIVE = "cross_recursive"


@dataclass(frozen=True)
class Control:
    """A control condition. ``seed`` feeds the shuffled and random controls (combined per pair)."""

    kind: ControlKind
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ControlKind):
            raise PatchSpecError(f"control kind must be a ControlKind, got {self.kind!r}")
        _check_int("control seed", self.seed, 0)

    @property
    def transforms_donor(self) -> bool:
        """True for controls that alter the donor's tensors (shuffled, random)."""
        return self.kind in (ControlKind.SHUFFLED, ControlKind.RANDOM_NORM_MATCHED)


def assign_roles(control: Control | None, *, recursive: T, baseline: T, other_baseline: T | None = None,
                 other_recursive: T | None = None) -> tuple[T, T]:
    """``(recipient, donor)`` for a condition: main is (baseline, recursive).

    ``REVERSE`` gives (recursive, baseline); ``CROSS_BASELINE`` gives (baseline, other_baseline)
    and needs an ``other_baseline`` different from ``baseline``; ``CROSS_RECURSIVE`` gives
    (recursive, other_recursive) and needs an ``other_recursive`` different from ``recursive``; the tensor
    controls keep the main roles.
    """
    if control is not None and control.kind is ControlKind.CROSS_RECURSIVE:
        if other_recursive is None:
            raise PatchSpecError("the cross-recursive control needs other_recursive")
        if other_recursive == recursive:
            raise PatchSpecError("the cross-recursive donor must differ from the recipient recursive prompt")
        return recursive, other_recursive
    if control is not None and control.kind is ControlKind.REVERSE:
        return recursive, baseline
    if control is not None and control.kind is ControlKind.CROSS_BASELINE:
        if other_baseline is None:
            raise PatchSpecError("the cross-baseline control needs other_baseline")
        if other_baseline == baseline:
            raise PatchSpecError("the cross-baseline donor must differ from the recipient baseline")
        return baseline, other_baseline
    return baseline, recursive


class Components(str, Enum):
    """Which cache tensors a KV patch writes: both (the default, DESIGN §4.3), keys only, values only."""

    KV = "kv"
    K = "k"
    V = "v"


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise PatchSpecError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0:
        raise PatchSpecError(f"alpha must be in [0, 1], got {alpha}")
    return float(alpha)


@dataclass(frozen=True)
class KVPatchSpec:
    """Patch K/V of ``layers`` at the ``span`` positions: ``(1−α)·recipient + α·donor``.

    ``layers`` is normalised to a sorted tuple of distinct non-negative ints (checked against the
    model by :meth:`check_layers`). ``alpha`` is in ``[0, 1]``; α = 1 runs the same arithmetic as any
    other α. ``control`` is ``None`` for the main condition.
    """

    layers: tuple[int, ...]
    span: Span = Span()
    alpha: float = 1.0
    alignment: Alignment = Alignment.LENGTH_MATCHED
    components: Components = Components.KV
    control: Control | None = None

    def __post_init__(self) -> None:
        layers = tuple(self.layers) if isinstance(self.layers, (tuple, list, range)) else None
        if not layers:
            raise PatchSpecError(f"layers must be a non-empty sequence of ints, got {self.layers!r}")
        for layer in layers:
            _check_int("layer", layer, 0)
        if len(set(layers)) != len(layers):
            raise PatchSpecError(f"layers contain duplicates: {layers}")
        object.__setattr__(self, "layers", tuple(sorted(layers)))
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))
        for name, value, kind in (
            ("span", self.span, Span),
            ("alignment", self.alignment, Alignment),
            ("components", self.components, Components),
        ):
            if not isinstance(value, kind):
                raise PatchSpecError(f"{name} must be a {kind.__name__}, got {value!r}")
        if self.control is not None and not isinstance(self.control, Control):
            raise PatchSpecError(f"control must be a Control or None, got {self.control!r}")

    def check_layers(self, n_layers: int) -> None:
        """Raise if a layer index is not below ``n_layers``."""
        if self.layers[-1] >= n_layers:
            raise PatchSpecError(f"layer {self.layers[-1]} does not exist: the model has {n_layers} layers")


class ActivationSite(str, Enum):
    """Where an activation patch writes: the ``v_proj`` output, or the decoder layer's output (residual stream)."""

    V_PROJ = "v_proj"
    RESIDUAL = "residual"


class PatchMode(str, Enum):
    """``PREFILL_ONLY`` patches the prompt prefix; ``PERSISTENT`` also patches every decode step."""

    PREFILL_ONLY = "prefill_only"
    PERSISTENT = "persistent"


class DecodeSource(str, Enum):
    """The donor vector written at decode positions in persistent mode.

    ``DONOR_LAST``: the donor's activation at its last token; ``DONOR_SPAN_MEAN``: the donor's mean
    activation over the span positions.
    """

    DONOR_LAST = "donor_last"
    DONOR_SPAN_MEAN = "donor_span_mean"


@dataclass(frozen=True)
class ActivationPatchSpec:
    """Replace the activation at ``site`` of ``layer`` at the aligned ``span`` positions with the donor's.

    In ``PERSISTENT`` mode every decode step (including the first, which feeds the recipient's last
    token) is also overwritten with the donor vector chosen by ``decode_source``.
    """

    site: ActivationSite
    layer: int
    span: Span = Span()
    mode: PatchMode = PatchMode.PREFILL_ONLY
    decode_source: DecodeSource = DecodeSource.DONOR_LAST
    alignment: Alignment = Alignment.LENGTH_MATCHED

    def __post_init__(self) -> None:
        _check_int("layer", self.layer, 0)
        for name, value, kind in (
            ("site", self.site, ActivationSite),
            ("span", self.span, Span),
            ("mode", self.mode, PatchMode),
            ("decode_source", self.decode_source, DecodeSource),
            ("alignment", self.alignment, Alignment),
        ):
            if not isinstance(value, kind):
                raise PatchSpecError(f"{name} must be a {kind.__name__}, got {value!r}")

    def check_layers(self, n_layers: int) -> None:
        """Raise if the layer index is not below ``n_layers``."""
        if self.layer >= n_layers:
            raise PatchSpecError(f"layer {self.layer} does not exist: the model has {n_layers} layers")
