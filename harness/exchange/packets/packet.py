"""Cache packets: one sequence's KV cache (or a layer / position subset of it) as a file another process can load.

File format: one safetensors file. The header is JSON in the file's own ``__metadata__`` under the key
:data:`HEADER_KEY` (one file, so header and tensors cannot drift apart, as a sidecar could). Tensors, per packet
layer ``i``: ``layer.i.keys`` / ``layer.i.values`` (``[n_kv_heads, positions, head_dim]``, post-RoPE keys, stored
as the header's ``storage`` says, :mod:`~harness.exchange.packets.codecs`), ``layer.i.keys.scale`` /
``layer.i.values.scale`` for int8, and ``layer.i.rope_inv_freq`` (the layer's rotary inverse frequencies, float32).

Header (:class:`PacketHeader`): model name, weights and tokenizer fingerprints
(:mod:`~harness.exchange.packets.identity`), the cache dtype, the storage format, the model's layer count, absolute
``positions`` [start, end) the packet carries, the source cache's ``cache_positions``, per layer the cache layer type,
the number of positions it had seen and the absolute positions it holds here (a sliding-window layer holds fewer,
:func:`harness.engine.kvcache.held_range`), the harness version, and ``content_sha256``: sha256 over every tensor's name,
dtype, shape and bytes in a fixed order (layers ascending; keys, key scale, values, value scale, rotary).

Refusal (:class:`PacketMismatchError`, one line naming the receiver's value and the packet's): another model or
weights, another tokenizer, another cache dtype, other rotary frequencies, or positions the receiver does not expect
or hold (RoPE is baked into cached keys, so a key is only valid at its own position). Every cache operation goes
through :mod:`harness.engine.kvcache`. Public API: :func:`make_packet`, :func:`write_packet`, :func:`read_packet`,
:func:`packet_prefill` (a fresh cache from a full packet), :func:`apply_packet` (a packet written into a copy of
a receiver's cache) and :meth:`CachePacket.layer_kv`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from harness.engine import kvcache
from harness.exchange.packets.codecs import STORAGE_FORMATS, StorageFormat, decode_tensor, encode_tensor
from harness.exchange.packets.identity import harness_version, tokenizer_fingerprint, weights_fingerprint
from harness.models import LoadedModel

__all__ = [
    "HEADER_KEY", "CachePacket", "PacketError", "PacketHeader", "PacketLayer", "PacketMismatchError",
    "apply_packet", "make_packet", "packet_prefill", "read_packet", "write_packet",
]

HEADER_KEY = "kvclaims.packet"
"""Key of the JSON header in the safetensors ``__metadata__``."""
FORMAT_VERSION = 1
"""Version of the packet layout; a reader refuses any other."""
_PARTS = ("keys", "keys.scale", "values", "values.scale", "rope_inv_freq")


class PacketError(kvcache.CacheError):
    """A packet file or request is malformed (not a packet, corrupt content, an impossible layer or position)."""


class PacketMismatchError(PacketError):
    """A packet refused by a receiver: another model, tokenizer, dtype, rotary frequencies or position range."""


@dataclass(frozen=True)
class PacketLayer:
    """One cache layer in a packet: index, cache layer class name, the number of positions the source cache layer had
    seen (its total length; more than it stores on a sliding layer past its window) and the absolute positions
    ``held`` [start, end) the packet carries for it."""

    layer: int
    cache_layer: str
    seen: int
    held: tuple[int, int]


@dataclass(frozen=True)
class PacketHeader:
    """The packet's JSON header (see the module docstring); positions are absolute rotary positions."""

    model: str
    weights: str
    tokenizer_sha256: str
    cache_dtype: str
    storage: StorageFormat
    n_layers: int
    positions: tuple[int, int]
    cache_positions: tuple[int, int]
    layers: tuple[PacketLayer, ...]
    harness_version: str
    content_sha256: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def is_full(self) -> bool:
        """Every layer and every position of the source cache."""
        return len(self.layers) == self.n_layers and self.positions == self.cache_positions

    def to_json(self) -> str:
        """The header as JSON text."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PacketHeader:
        """Parse a header; PacketError on anything that is not a version-1 packet header."""
        try:
            raw = json.loads(text)
            if raw.get("format_version") != FORMAT_VERSION:
                raise PacketError(f"packet format version {raw.get('format_version')!r}; this reader reads "
                                  f"version {FORMAT_VERSION}")
            raw["layers"] = tuple(PacketLayer(d["layer"], d["cache_layer"], d["seen"], tuple(d["held"]))
                                  for d in raw["layers"])
            raw["positions"], raw["cache_positions"] = tuple(raw["positions"]), tuple(raw["cache_positions"])
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise PacketError(f"malformed packet header: {exc}") from None


@dataclass(frozen=True)
class CachePacket:
    """A packet in memory: the header and the tensors as stored (names as in the module docstring)."""

    header: PacketHeader
    tensors: dict[str, torch.Tensor]

    def layer_kv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded ``(keys, values)`` of a packet layer, ``[n_kv_heads, held positions, head_dim]`` in the cache
        dtype (for int8, the dequantized values)."""
        if layer not in {entry.layer for entry in self.header.layers}:
            raise PacketError(f"layer {layer} is not in the packet (it holds {[e.layer for e in self.header.layers]})")
        dtype = getattr(torch, self.header.cache_dtype)
        decoded = []
        for name in ("keys", "values"):
            stored = {"data": self.tensors[f"layer.{layer}.{name}"]}
            if f"layer.{layer}.{name}.scale" in self.tensors:
                stored["scale"] = self.tensors[f"layer.{layer}.{name}.scale"]
            decoded.append(decode_tensor(stored, self.header.storage, dtype))
        return decoded[0], decoded[1]

    @property
    def kv_bytes(self) -> int:
        """Bytes of the K and V data with their int8 scales (no rotary frequencies, no header)."""
        return sum(t.numel() * t.element_size() for name, t in self.tensors.items()
                   if not name.endswith("rope_inv_freq"))


def _order(name: str) -> tuple[int, int]:
    _, layer, part = name.split(".", 2)
    return int(layer), _PARTS.index(part)


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 hex over each tensor's name, dtype, shape and bytes, in the packet's fixed order."""
    digest = hashlib.sha256()
    for name in sorted(tensors, key=_order):
        t = tensors[name].contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _single_row(prefill: kvcache.Prefill, what: str) -> None:
    if prefill.batch_size != 1 or prefill.pads != (0,):
        raise PacketError(f"{what} needs a one-row, unpadded cache, got rows of lengths {prefill.lengths}")


def _dtype_name(lm: LoadedModel) -> str:
    return str(next(lm.model.parameters()).dtype).removeprefix("torch.")


def make_packet(lm: LoadedModel, prefill: kvcache.Prefill, *, storage: StorageFormat = "uncompressed",
                layers: Sequence[int] | None = None, positions: tuple[int, int] | None = None) -> CachePacket:
    """A packet of ``prefill`` (one unpadded row, from ``lm``): ``layers`` (default all) × absolute ``positions``
    [start, end) (default the whole cache), each layer cut to what it still holds. Raises PacketError on a batch,
    padding, a cache of another layer count or rotary frequencies than ``lm``'s, an unknown format, a layer out of
    range or positions outside the cache."""
    _single_row(prefill, "a packet")
    if storage not in STORAGE_FORMATS:
        raise PacketError(f"unknown packet storage format {storage!r}; known: {', '.join(STORAGE_FORMATS)}")
    n_layers, offset = kvcache.num_layers(prefill), prefill.position_offset
    frequencies = kvcache.rope_inv_freq(lm.model)
    if n_layers != lm.shape.n_layers or len(prefill.rope_inv_freq) != n_layers or not all(
            torch.equal(a, b) for a, b in zip(frequencies, prefill.rope_inv_freq)):
        raise PacketError(f"the cache ({n_layers} layers) was not made by {lm.name} ({lm.shape.n_layers} layers, "
                          "its rotary frequencies); a packet names the model that made its cache")
    cache_positions = (offset, offset + prefill.lengths[0])
    chosen = sorted(set(range(n_layers) if layers is None else layers))
    if not chosen or chosen[0] < 0 or chosen[-1] >= n_layers:
        raise PacketError(f"packet layers {list(layers or [])} must be a non-empty subset of 0…{n_layers - 1}")
    start, end = positions or cache_positions
    if not cache_positions[0] <= start < end <= cache_positions[1]:
        raise PacketError(f"packet positions [{start}, {end}) must be a non-empty part of the cache's "
                          f"[{cache_positions[0]}, {cache_positions[1]})")
    snapshot = kvcache.export_kv(prefill)
    tensors: dict[str, torch.Tensor] = {}
    entries = []
    for layer in chosen:
        lo, hi = kvcache.held_range(prefill, layer)
        a = max(start, offset + lo)
        b = max(a, min(end, offset + hi))
        for name, tensor in (("keys", snapshot.keys[layer]), ("values", snapshot.values[layer])):
            try:
                stored = encode_tensor(tensor[0, :, a - offset - lo: b - offset - lo], storage)
            except ValueError as exc:
                raise PacketError(f"layer {layer} {name}: {exc}") from None
            tensors[f"layer.{layer}.{name}"] = stored["data"]
            if "scale" in stored:
                tensors[f"layer.{layer}.{name}.scale"] = stored["scale"]
        tensors[f"layer.{layer}.rope_inv_freq"] = prefill.rope_inv_freq[layer].to("cpu", torch.float32).clone()
        entries.append(PacketLayer(layer, snapshot.layer_types[layer], snapshot.seen[layer], (a, b)))
    header = PacketHeader(
        model=lm.name, weights=weights_fingerprint(lm), tokenizer_sha256=tokenizer_fingerprint(lm.tokenizer),
        cache_dtype=str(snapshot.keys[0].dtype).removeprefix("torch."), storage=storage,
        n_layers=n_layers, positions=(start, end), cache_positions=cache_positions, layers=tuple(entries),
        harness_version=harness_version(), content_sha256=content_hash(tensors),
    )
    return CachePacket(header, tensors)


def write_packet(packet: CachePacket, path: str | os.PathLike[str]) -> int:
    """Write ``packet`` to ``path`` atomically (a temporary file, then rename); returns the file's size in bytes."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    save_file(packet.tensors, str(partial), metadata={HEADER_KEY: packet.header.to_json()})
    os.replace(partial, target)
    return target.stat().st_size


def read_packet(path: str | os.PathLike[str], receiver: LoadedModel | None = None, *,
                positions: tuple[int, int] | None = None) -> CachePacket:
    """Read a packet and check its content hash (PacketError when it is not a packet or is corrupt). With a
    ``receiver``, refuse (PacketMismatchError) a packet for another model, weights, tokenizer, cache dtype or rotary
    frequencies; with ``positions``, one that carries other absolute positions than [start, end)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, ValueError, RuntimeError) as exc:
        raise PacketError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    if HEADER_KEY not in meta:
        raise PacketError(f"{path}: a safetensors file without a kvclaims packet header ({HEADER_KEY!r})")
    header = PacketHeader.from_json(meta[HEADER_KEY])
    found = content_hash(tensors)
    if found != header.content_sha256:
        raise PacketError(f"{path}: content sha256 {found[:12]}… differs from the header's "
                          f"{header.content_sha256[:12]}… (the tensors were changed or damaged)")
    packet = CachePacket(header, tensors)
    if receiver is not None:
        check_receiver(receiver, packet)
    if positions is not None and tuple(positions) != header.positions:
        raise PacketMismatchError(f"packet refused: positions: receiver expects [{positions[0]}, {positions[1]}), "
                                  f"packet carries [{header.positions[0]}, {header.positions[1]})")
    return packet


def check_receiver(receiver: LoadedModel, packet: CachePacket) -> None:
    """Raise PacketMismatchError (one line: receiver's value, packet's value) unless ``receiver`` is the model,
    cache dtype, layer count, tokenizer, weights and rotary frequencies the packet was made with (checked in that
    order; the first difference is named)."""
    h = packet.header
    checks = (
        ("model", receiver.name, h.model),
        ("cache dtype", _dtype_name(receiver), h.cache_dtype),
        ("layers", receiver.shape.n_layers, h.n_layers),
        ("tokenizer sha256", tokenizer_fingerprint(receiver.tokenizer), h.tokenizer_sha256),
        ("weights", weights_fingerprint(receiver), h.weights),
    )
    for what, mine, theirs in checks:
        if mine != theirs:
            raise PacketMismatchError(f"packet refused: {what}: receiver {receiver.name} has {mine}, packet has "
                                      f"{theirs}")
    frequencies = kvcache.rope_inv_freq(receiver.model)
    for entry in h.layers:
        if not torch.equal(frequencies[entry.layer], packet.tensors[f"layer.{entry.layer}.rope_inv_freq"]):
            raise PacketMismatchError(f"packet refused: rotary frequencies of layer {entry.layer} differ between "
                                      f"receiver {receiver.name} and the packet")


def packet_prefill(receiver: LoadedModel, packet: CachePacket, *,
                   positions: tuple[int, int] | None = None) -> kvcache.Prefill:
    """A fresh one-row cache on ``receiver`` from a full packet, ready to decode at ``positions[1]``; ``positions``,
    when given, is the absolute range the receiver expects (refused when the packet carries another). A partial
    packet is refused here: write it into a receiver's cache with :func:`apply_packet`."""
    check_receiver(receiver, packet)
    h = packet.header
    if positions is not None and tuple(positions) != h.positions:
        raise PacketMismatchError(f"packet refused: positions: receiver expects [{positions[0]}, {positions[1]}), "
                                  f"packet carries [{h.positions[0]}, {h.positions[1]})")
    if not h.is_full:
        raise PacketError(f"a fresh cache needs a full packet; this one holds {len(h.layers)} of {h.n_layers} "
                          f"layers and positions [{h.positions[0]}, {h.positions[1]}) of "
                          f"[{h.cache_positions[0]}, {h.cache_positions[1]}); use apply_packet with a receiver cache")
    device = receiver.input_device
    decoded = [packet.layer_kv(entry.layer) for entry in h.layers]
    n = h.cache_positions[1] - h.cache_positions[0]
    snapshot = kvcache.KVSnapshot(
        keys=tuple(k[None].to(device) for k, _ in decoded), values=tuple(v[None].to(device) for _, v in decoded),
        seen=tuple(entry.seen for entry in h.layers),
        layer_types=tuple(entry.cache_layer for entry in h.layers), lengths=(n,),
        attention_mask=torch.ones((1, n), dtype=torch.long, device=device),
        rope_inv_freq=tuple(packet.tensors[f"layer.{e.layer}.rope_inv_freq"] for e in h.layers),
        position_offset=h.cache_positions[0],
    )
    return kvcache.inject_kv(receiver.model, snapshot)


def apply_packet(receiver: LoadedModel, cache: kvcache.Prefill, packet: CachePacket) -> kvcache.Prefill:
    """A copy of ``cache`` (one unpadded row on ``receiver``) with the packet's layers and positions written in; the
    rest of the cache is kept. Refused when a packet layer's positions are not all held by ``cache`` at that layer
    (other absolute positions, or evicted from a sliding window). ``cache`` is not modified."""
    _single_row(cache, "apply_packet")
    check_receiver(receiver, packet)
    offset = cache.position_offset
    snapshot = kvcache.export_kv(cache)
    keys, values = list(snapshot.keys), list(snapshot.values)
    for entry in packet.header.layers:
        lo, hi = kvcache.held_range(cache, entry.layer)
        a, b = entry.held
        if a < b and not offset + lo <= a < b <= offset + hi:
            raise PacketMismatchError(f"packet refused: positions: receiver layer {entry.layer} holds "
                                      f"[{offset + lo}, {offset + hi}), packet carries [{a}, {b})")
        k, v = packet.layer_kv(entry.layer)
        for store, new in ((keys, k), (values, v)):
            updated = store[entry.layer].clone()
            updated[0, :, a - offset - lo: b - offset - lo] = new.to(updated.device, updated.dtype)
            store[entry.layer] = updated
    return kvcache.inject_kv(receiver.model, replace(snapshot, keys=tuple(keys), values=tuple(values)))
