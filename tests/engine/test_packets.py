"""Cache packets (harness/exchange/packets/packet.py, packet_fidelity.py) on the toy models: bitwise round trip, the same
next-token logits after injection, refusal of a mismatched packet with one line, partial packets, the int8 bound on
real caches, corrupt files, and bytes per token against the config."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from harness.engine import kvcache
from harness.engine.tokens import encode, pad_id
from harness.exchange.packets.codecs import STORAGE_FORMATS, config_packet_size, int8_error_bound
from harness.exchange.packets.fidelity import gpu_tier_bytes_per_token, prompt_fidelity
from harness.exchange.packets.packet import (
    HEADER_KEY,
    PacketError,
    PacketMismatchError,
    apply_packet,
    make_packet,
    packet_prefill,
    read_packet,
    write_packet,
)
from harness.models import LoadedModel

TEXT = "The river bends past the old mill where the children used to swim every summer afternoon before dinner"
OTHER = "A committee of seven engineers reviewed the bridge design twice before the city council finally approved its budget"


def prefix(lm: LoadedModel, text: str = TEXT, offset: int = 0) -> tuple[kvcache.Prefill, list[int]]:
    ids = encode(lm.tokenizer, text)
    return kvcache.prefill(lm.model, [ids[:-1]], pad_id=pad_id(lm.tokenizer), position_offset=offset), ids


def next_logits(lm: LoadedModel, state: kvcache.Prefill, token: int) -> torch.Tensor:
    return kvcache.DecodeState(state).step(lm.model, torch.tensor([token])).logits[0]


def round_trip(lm: LoadedModel, state: kvcache.Prefill, tmp_path: Path, storage: str = "uncompressed", **kw):
    path = tmp_path / f"{storage}.safetensors"
    write_packet(make_packet(lm, state, storage=storage, **kw), path)  # type: ignore[arg-type]
    return read_packet(path, lm)


def refusal(exc: pytest.ExceptionInfo[PacketMismatchError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.startswith("packet refused: ")
    return text


# ------------------------------------------------------------------------------------------------ round trip


def test_uncompressed_round_trip_is_bitwise_and_decodes_identically(toy_model: LoadedModel, tmp_path: Path) -> None:
    state, ids = prefix(toy_model)
    received = packet_prefill(toy_model, round_trip(toy_model, state, tmp_path))
    assert kvcache.cache_hash(received) == kvcache.cache_hash(state)
    assert kvcache.layer_lengths(received) == kvcache.layer_lengths(state)
    assert torch.equal(next_logits(toy_model, received, ids[-1]), next_logits(toy_model, state, ids[-1]))


def test_round_trip_keeps_the_position_offset(toy_llama: LoadedModel, tmp_path: Path) -> None:
    state, ids = prefix(toy_llama, offset=7)
    packet = round_trip(toy_llama, state, tmp_path)
    assert packet.header.positions == (7, 7 + len(ids) - 1)
    received = packet_prefill(toy_llama, packet)
    assert received.position_offset == 7
    assert torch.equal(next_logits(toy_llama, received, ids[-1]), next_logits(toy_llama, state, ids[-1]))


@pytest.mark.parametrize("storage", ["float16", "bfloat16", "int8"])
def test_compressed_packets_stay_within_their_format_error(toy_model: LoadedModel, tmp_path: Path,
                                                           storage: str) -> None:
    state, ids = prefix(toy_model)
    packet = round_trip(toy_model, state, tmp_path, storage)
    received = packet_prefill(toy_model, packet)
    relative = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
    for layer in range(kvcache.num_layers(state)):
        for name, original, back in zip(("keys", "values"), kvcache.layer_kv(state, layer),
                                        kvcache.layer_kv(received, layer)):
            error = (original.double() - back.double()).abs()[0]
            if storage == "int8":
                bound = int8_error_bound(packet.tensors[f"layer.{layer}.{name}.scale"], back[0])
            else:
                bound = original.double().abs()[0] * relative[storage]
            assert bool((error <= bound).all()), (layer, name)
            assert bool((error > 0).any()), "a compressed packet that changes nothing would hide a bypass"
    logits = next_logits(toy_model, received, ids[-1])
    assert torch.isfinite(logits).all() and not torch.equal(logits, next_logits(toy_model, state, ids[-1]))


def test_header_lives_in_safetensors_metadata(toy_gemma3: LoadedModel, tmp_path: Path) -> None:
    state, ids = prefix(toy_gemma3)
    path = tmp_path / "p.safetensors"
    write_packet(make_packet(toy_gemma3, state, storage="int8"), path)
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()[HEADER_KEY])
        names = set(handle.keys())
    assert header["model"] == "toy-gemma3" and header["storage"] == "int8" and header["cache_dtype"] == "float32"
    assert header["positions"] == header["cache_positions"] == [0, len(ids) - 1]
    assert header["weights"].startswith("params:") and len(header["tokenizer_sha256"]) == 64
    assert [e["layer"] for e in header["layers"]] == list(range(6)) and header["format_version"] == 1
    for entry in header["layers"]:  # sliding layers hold only the positions still in the window
        lo, hi = kvcache.held_range(state, entry["layer"])
        assert entry["held"] == [lo, hi] and entry["seen"] == hi
        assert {f"layer.{entry['layer']}.{n}" for n in ("keys", "values", "keys.scale", "values.scale",
                                                        "rope_inv_freq")} <= names
    assert any(e["held"][0] > 0 for e in header["layers"]), "the text must be longer than the toy window"


# ---------------------------------------------------------------------------------------------------- refusal


def test_packet_for_another_model_is_refused(toy_llama: LoadedModel, toy_gemma3: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_llama)
    path = tmp_path / "p.safetensors"
    write_packet(make_packet(toy_llama, state), path)
    with pytest.raises(PacketMismatchError) as exc:
        read_packet(path, toy_gemma3)
    assert refusal(exc) == "packet refused: model: receiver toy-gemma3 has toy-gemma3, packet has toy-llama"


def test_packet_for_other_weights_is_refused(toy_llama: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_llama)
    packet = round_trip(toy_llama, state, tmp_path)
    model = copy.deepcopy(toy_llama.model)
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1.0
    with pytest.raises(PacketMismatchError) as exc:
        packet_prefill(dataclasses.replace(toy_llama, model=model), packet)
    assert refusal(exc).startswith("packet refused: weights: receiver toy-llama has params:")


def test_packet_for_another_tokenizer_is_refused(toy_llama: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_llama)
    path = tmp_path / "p.safetensors"
    write_packet(make_packet(toy_llama, state), path)
    tokenizer = copy.deepcopy(toy_llama.tokenizer)
    tokenizer.add_tokens(["<packet-test-token>"])
    with pytest.raises(PacketMismatchError) as exc:
        read_packet(path, dataclasses.replace(toy_llama, tokenizer=tokenizer))
    assert refusal(exc).startswith("packet refused: tokenizer sha256: receiver toy-llama has ")


def test_packet_of_another_dtype_is_refused(toy_llama: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_llama)
    packet = round_trip(toy_llama, state, tmp_path)
    half = dataclasses.replace(toy_llama, model=copy.deepcopy(toy_llama.model).to(torch.bfloat16))
    with pytest.raises(PacketMismatchError) as exc:
        packet_prefill(half, packet)
    assert refusal(exc) == "packet refused: cache dtype: receiver toy-llama has bfloat16, packet has float32"


def test_packet_at_other_positions_is_refused(toy_model: LoadedModel, tmp_path: Path) -> None:
    state, ids = prefix(toy_model)
    n = len(ids) - 1
    path = tmp_path / "p.safetensors"
    write_packet(make_packet(toy_model, state), path)
    with pytest.raises(PacketMismatchError) as exc:
        read_packet(path, toy_model, positions=(3, 3 + n))
    assert refusal(exc) == f"packet refused: positions: receiver expects [3, {3 + n}), packet carries [0, {n})"
    with pytest.raises(PacketMismatchError):
        packet_prefill(toy_model, read_packet(path, toy_model), positions=(0, n - 1))
    shifted, _ = prefix(toy_model, offset=5)  # same tokens, keys rotated for positions 5…: not where the packet is
    with pytest.raises(PacketMismatchError) as exc:
        apply_packet(toy_model, shifted, read_packet(path, toy_model))
    assert refusal(exc).startswith("packet refused: positions: receiver layer 0 holds [")  # layer 0 sees it first


def test_partial_packet_beyond_a_sliding_window_is_refused(toy_gemma3: LoadedModel) -> None:
    long_state, _ = prefix(toy_gemma3)
    short = kvcache.prefill(toy_gemma3.model, [encode(toy_gemma3.tokenizer, OTHER)[:12]], pad_id=0)
    packet = make_packet(toy_gemma3, short, layers=[0], positions=(0, 6))  # layer 0 slides (window 8)
    with pytest.raises(PacketMismatchError) as exc:
        apply_packet(toy_gemma3, long_state, packet)  # the long cache's layer 0 no longer holds positions 0…5
    assert refusal(exc).startswith("packet refused: positions: receiver layer 0 holds [")


def test_corrupt_or_foreign_files_are_refused(toy_llama: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_llama)
    path = tmp_path / "p.safetensors"
    write_packet(make_packet(toy_llama, state, storage="int8"), path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PacketError, match="content sha256 .* differs from the header's"):
        read_packet(path)
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(PacketError, match="without a kvclaims packet header"):
        read_packet(tmp_path / "plain.safetensors")
    with pytest.raises(PacketError, match="not a readable safetensors file"):
        read_packet(tmp_path / "missing.safetensors")


def test_bad_packet_requests_are_refused(toy_llama: LoadedModel) -> None:
    state, ids = prefix(toy_llama)
    with pytest.raises(PacketError, match="subset of 0…3"):
        make_packet(toy_llama, state, layers=[4])
    with pytest.raises(PacketError, match=r"positions \[5, 99\) must be a non-empty part"):
        make_packet(toy_llama, state, positions=(5, 99))
    with pytest.raises(PacketError, match="was not made by toy-gemma3"):
        make_packet(dataclasses.replace(toy_llama, name="toy-gemma3", shape=dataclasses.replace(
            toy_llama.shape, n_layers=6)), state)
    batch = kvcache.prefill(toy_llama.model, [ids[:5], ids[:7]], pad_id=pad_id(toy_llama.tokenizer))
    with pytest.raises(PacketError, match="one-row, unpadded cache"):
        make_packet(toy_llama, batch)


# --------------------------------------------------------------------------------------------------- partial


def test_partial_packet_writes_only_its_layers_and_positions(toy_llama: LoadedModel, tmp_path: Path) -> None:
    donor, _ = prefix(toy_llama, TEXT)
    ids = encode(toy_llama.tokenizer, OTHER)
    assert len(ids) >= donor.lengths[0]
    receiver = kvcache.prefill(toy_llama.model, [ids[: donor.lengths[0]]], pad_id=pad_id(toy_llama.tokenizer))
    packet = round_trip(toy_llama, donor, tmp_path, layers=[1, 3], positions=(2, 6))
    with pytest.raises(PacketError, match="a fresh cache needs a full packet"):
        packet_prefill(toy_llama, packet)
    before = kvcache.cache_hash(receiver)
    mixed = apply_packet(toy_llama, receiver, packet)
    assert kvcache.cache_hash(receiver) == before
    for layer in range(4):
        for got, rec, don in zip(kvcache.layer_kv(mixed, layer), kvcache.layer_kv(receiver, layer),
                                 kvcache.layer_kv(donor, layer)):
            inside = torch.zeros(got.shape[-2], dtype=torch.bool)
            if layer in (1, 3):
                inside[2:6] = True
            assert torch.equal(got[:, :, inside], don[:, :, inside])
            assert torch.equal(got[:, :, ~inside], rec[:, :, ~inside])


def test_full_packet_applied_to_its_own_cache_changes_nothing(toy_gemma3: LoadedModel, tmp_path: Path) -> None:
    state, _ = prefix(toy_gemma3)
    assert kvcache.cache_hash(apply_packet(toy_gemma3, state, round_trip(toy_gemma3, state, tmp_path))) == \
        kvcache.cache_hash(state)


# ----------------------------------------------------------------------------------------- fidelity and bytes


def test_prompt_fidelity_rows_and_bytes_match_the_config(toy_llama: LoadedModel, tmp_path: Path) -> None:
    ids = encode(toy_llama.tokenizer, TEXT)
    row, reference = prompt_fidelity(toy_llama, ids, tmp_path)
    assert row["uncompressed"]["kl_nats"] == 0.0 and row["uncompressed"]["max_abs_logit_diff"] == 0.0
    assert row["int8"]["kl_nats"] > 0.0 and reference.shape == (toy_llama.model.config.vocab_size,)
    assert list(tmp_path.iterdir()) == []
    g, n = toy_llama.shape, row["cached_tokens"]
    for storage in STORAGE_FORMATS:
        size = config_packet_size(g.n_layers, g.n_kv_heads, g.head_dim, torch.float32, storage)
        assert row[storage]["kv_bytes"] == size.payload_bytes_per_token * n + size.scale_bytes, storage
        assert row[storage]["file_bytes"] > row[storage]["kv_bytes"]


def test_gpu_tier_bytes_per_token_from_configs() -> None:
    table = gpu_tier_bytes_per_token(1024)
    assert table["mistral7b"]["bfloat16"]["payload_bytes_per_token"] == 32 * 8 * 128 * 2 * 2  # 128 KiB per token
    assert table["mistral7b"]["uncompressed"]["payload_bytes_per_token"] == 131072  # registered dtype bf16
    assert table["llama3-70b"]["int8"]["bytes_per_token"] == pytest.approx(80 * 8 * 128 * 2 * (1 + 4 / 1024))
    assert not any(name.startswith("random-") for name in table)


# ------------------------------------------------------------------------------------------------ the claim


def test_claim_runs_on_alternating_prompts_and_is_inconclusive_below_planned_n(toy_llama: LoadedModel) -> None:
    import claims.test_compressed_packet_fidelity as packet_claim
    from harness.claim.context import ClaimContext, RunSettings
    from harness.claim.verdicts import PROPERTY_NAME, ClaimNotPassed
    from harness.prompts import load_bank
    from harness.registry import get_claim
    from harness.runtime.measurement_store import MeasurementStore

    records: dict[str, object] = {}
    settings = RunSettings(seed=0, n_cap=4, window=16, report_dir=None, device="cpu", dtype=None)
    ctx = ClaimContext(get_claim("compressed_packet_fidelity"), toy_llama, load_bank(), settings,
                       MeasurementStore(mode="off"), lambda name, value: records.__setitem__(name, value))
    with pytest.raises(ClaimNotPassed):
        packet_claim.test_compressed_packet_fidelity(ctx)
    record = records[PROPERTY_NAME]
    assert record["verdict"] == "INCONCLUSIVE" and record["n"] == 4 and "n = 4 < planned 34" in record["explanation"]
    details = record["details"]
    groups = [ctx.bank.get(pid).group for pid in details["prompts"]]
    assert groups == ["baseline", "recursive", "baseline", "recursive"]
    assert details["max_abs_logit_diff"]["uncompressed"] == 0.0 and details["kl_nats"]["uncompressed"]["mean"] == 0.0
    assert record["estimate"] == pytest.approx(details["kl_nats"]["int8"]["mean"]) and record["estimate"] > 0
    assert record["ci_low"] <= record["estimate"] <= record["ci_high"]
    assert set(details["gpu_tier_bytes_per_token"]["models"]) >= {"mistral7b", "llama3-70b"}
