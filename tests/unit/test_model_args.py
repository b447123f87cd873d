"""--model-args parsing, the dtype rule (bf16 on CUDA for every tier), placement kwargs, and a toy load with args."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.models import MODEL_REGISTRY, load_model, resolve_spec
from harness.models.errors import ModelUnavailableError
from harness.models.loading import placement_kwargs, quantization_kwargs
from harness.models.model_args import (
    ATTN_IMPLEMENTATIONS,
    CUDA_DEFAULT_DTYPE,
    DEVICE_MAP_STRATEGIES,
    DTYPE_ALIASES,
    MODEL_ARG_KEYS,
    QUANTIZATIONS,
    ModelArgs,
    ModelArgsError,
    check_args_for_model,
    layer_choice,
    parse_layer_set,
    parse_memory_size,
    parse_model_args,
    resolve_dtype,
)
from harness.runtime.gpu_assignment import GPU_MEMORY_FRACTION, cuda_index

EVERY_SPEC = [*MODEL_REGISTRY.values(), resolve_spec("hf:org/some-model@step1000"), resolve_spec("path:/tmp/m")]


def test_full_string_parses() -> None:
    args = parse_model_args("dtype=bf16,revision=step1000,device_map=sequential,max_memory=70GiB,"
                            "attn_implementation=sdpa,early=4,late=27,patch=16-18,20")
    assert args == ModelArgs("bfloat16", "step1000", "sequential", 70 * 2**30, "sdpa", 4, 27, (16, 17, 18, 20))
    assert args.applied()["patch"] == [16, 17, 18, 20]
    assert parse_model_args(None) == parse_model_args("  ") == ModelArgs()
    assert ModelArgs().applied() == {}


@pytest.mark.parametrize(("text", "message"), [
    ("colour=red", "unknown model argument 'colour'; allowed keys: dtype, revision, device_map, max_memory, "
                   "attn_implementation, early, late, patch"),
    ("bf16", "invalid model argument 'bf16': expected key=value"),
    ("dtype=int8", "invalid dtype 'int8'"),
    ("dtype=bf16,dtype=fp32", "'dtype' is given twice"),
    ("early=", "'early' has no value"),
    ("early=-1", "invalid early='-1'"),
    ("late=x", "invalid late='x'"),
    ("patch=5-3", "invalid layer range '5-3'"),
    ("patch=a", "invalid layer set 'a'"),
    ("device_map=everywhere", "invalid device_map='everywhere' (choose from auto, balanced"),
    ("attn_implementation=magic", "invalid attn_implementation='magic' (choose from eager, sdpa"),
    ("max_memory=lots", "invalid memory size 'lots'"),
    ("max_memory=0GiB", "invalid memory size '0GiB'"),
    ("revision=a b", "invalid revision='a b'"),
    ("quantization=int4", "invalid quantization='int4' (choose from int8, nf4)"),
    ("chat_template=yes", "invalid chat_template='yes' (true or false)"),
])
def test_bad_input_is_one_line_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ModelArgsError) as info:
        parse_model_args(text)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "size"), [("70GiB", 70 * 2**30), ("80GB", 80 * 10**9), ("512mib", 512 * 2**20),
                                            ("1.5GiB", int(1.5 * 2**30)), ("4096", 4096)])
def test_memory_sizes(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


MODEL_ARGS = st.builds(
    ModelArgs,
    dtype=st.none() | st.sampled_from(sorted(set(DTYPE_ALIASES.values()))),
    revision=st.none() | st.from_regex(r"[a-z0-9][a-z0-9._\-]{0,12}", fullmatch=True),
    device_map=st.none() | st.sampled_from(DEVICE_MAP_STRATEGIES),
    max_memory_bytes=st.none() | st.integers(1, 2**44),
    attn_implementation=st.none() | st.sampled_from(ATTN_IMPLEMENTATIONS),
    early=st.none() | st.integers(0, 200),
    late=st.none() | st.integers(0, 200),
    patch=st.none() | st.lists(st.integers(0, 200), min_size=1, max_size=8, unique=True).map(lambda v: tuple(sorted(v))),
    quantization=st.none() | st.sampled_from(QUANTIZATIONS),
    chat_template=st.none() | st.just(True),
)


def render(args: ModelArgs) -> str:
    """The ``--model-args`` string a user would type for ``args`` (keys in a fixed order)."""
    names = {"max_memory_bytes": "max_memory"}
    return ",".join(f"{names.get(k, k)}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in args.applied().items())


@settings(deadline=None, max_examples=60)
@given(MODEL_ARGS, st.randoms())
def test_rendered_args_parse_back_in_any_key_order(args: ModelArgs, rng) -> None:  # type: ignore[no-untyped-def]
    items = render(args).split(",") if args.applied() else []
    # keys may come in any order; a patch list's continuation tokens stay behind their key
    groups: list[list[str]] = []
    for item in items:
        (groups.append([item]) if "=" in item else groups[-1].append(item))
    rng.shuffle(groups)
    assert parse_model_args(",".join(t for g in groups for t in g)) == args


@settings(deadline=None, max_examples=60)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(lambda k: k not in MODEL_ARG_KEYS))
def test_every_unknown_key_is_refused_naming_the_allowed_keys(key: str) -> None:
    with pytest.raises(ModelArgsError, match="allowed keys: " + ", ".join(MODEL_ARG_KEYS)):
        parse_model_args(f"{key}=1")


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 5)), min_size=1, max_size=6))
def test_layer_sets_are_the_union_of_their_ranges(ranges: list[tuple[int, int]]) -> None:
    text = ",".join(f"{low}-{low + width}" if width else str(low) for low, width in ranges)
    expected = sorted({layer for low, width in ranges for layer in range(low, low + width + 1)})
    assert parse_layer_set(text) == tuple(expected)


# ------------------------------------------------------------------------------------------------- dtype rule
@pytest.mark.parametrize("spec", EVERY_SPEC, ids=lambda s: s.name)
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_every_model_defaults_to_bf16_on_cuda(spec, device: str) -> None:  # type: ignore[no-untyped-def]
    assert resolve_dtype(spec.dtype, device) == CUDA_DEFAULT_DTYPE == "bfloat16"


@pytest.mark.parametrize("spec", EVERY_SPEC, ids=lambda s: s.name)
def test_on_cpu_the_registry_dtype_applies(spec) -> None:  # type: ignore[no-untyped-def]
    assert resolve_dtype(spec.dtype, "cpu") == spec.dtype
    assert resolve_dtype(spec.dtype, "cpu") == ("bfloat16" if spec.tier == "gpu" else "float32")


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(EVERY_SPEC), st.sampled_from(["cpu", "cuda", "cuda:1"]),
       st.none() | st.sampled_from(sorted(DTYPE_ALIASES)), st.none() | st.sampled_from(sorted(DTYPE_ALIASES)))
def test_a_given_dtype_always_wins_and_two_must_agree(spec, device, cli, given_arg) -> None:  # type: ignore[no-untyped-def]
    args = ModelArgs(dtype=DTYPE_ALIASES[given_arg]) if given_arg else ModelArgs()
    wanted = {DTYPE_ALIASES[v] for v in (cli, given_arg) if v}
    if len(wanted) == 2:
        with pytest.raises(ModelArgsError, match="disagree; give the dtype once"):
            resolve_dtype(spec.dtype, device, cli, args)
        return
    expected = wanted.pop() if wanted else ("bfloat16" if device.startswith("cuda") else spec.dtype)
    assert resolve_dtype(spec.dtype, device, cli, args) == expected


# ------------------------------------------------------------------------------------------------- placement
def test_placement_on_each_device() -> None:
    totals = [80 * 10**9, 40 * 10**9]
    assert placement_kwargs("cpu", ModelArgs(), totals) == {}
    assert placement_kwargs("cuda:1", ModelArgs(), totals) == {"device_map": {"": "cuda:1"}}
    spread = placement_kwargs("cuda", ModelArgs(), totals)
    assert spread == {"device_map": "sequential",
                      "max_memory": {0: int(80e9 * GPU_MEMORY_FRACTION), 1: int(40e9 * GPU_MEMORY_FRACTION)}}
    capped = placement_kwargs("cuda", ModelArgs(device_map="balanced", max_memory_bytes=50 * 10**9), totals)
    assert capped == {"device_map": "balanced", "max_memory": {0: 50 * 10**9, 1: 40 * 10**9}}
    with pytest.raises(ModelArgsError, match="apply on CUDA only"):
        placement_kwargs("cpu", ModelArgs(max_memory_bytes=10), totals)
    with pytest.raises(ModelArgsError, match="conflicts with --device cuda:0"):
        placement_kwargs("cuda:0", ModelArgs(device_map="auto"), totals)


@pytest.mark.parametrize(("device", "index"), [("cpu", None), ("cuda", None), ("auto", None), ("cuda:2", 2)])
def test_cuda_index(device: str, index: int | None) -> None:
    assert cuda_index(device) == index


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "mps:0", "cuda:-1"])
def test_cuda_index_refuses_other_devices(device: str) -> None:
    with pytest.raises(ValueError, match="expected auto, cpu, cuda or cuda:N"):
        cuda_index(device)


# ------------------------------------------------------------------------------------------------- per model
def test_args_that_cannot_apply_to_a_model_are_refused() -> None:
    with pytest.raises(ModelArgsError, match="revision= applies to hf models only; toy-llama is a toy model"):
        check_args_for_model(ModelArgs(revision="main"), "toy-llama", "toy", 4)
    with pytest.raises(ModelArgsError, match="toy-llama is a toy model built on one device"):
        check_args_for_model(ModelArgs(device_map="auto"), "toy-llama", "toy", 4)
    with pytest.raises(ModelArgsError, match=r"late: layer 4 does not exist in toy-llama \(4 layers, 0..3\)"):
        check_args_for_model(ModelArgs(late=4), "toy-llama", "toy", 4)
    with pytest.raises(ModelArgsError, match="patch: layer 9 does not exist"):
        check_args_for_model(ModelArgs(patch=(1, 9)), "toy-llama", "toy", 4)
    check_args_for_model(ModelArgs(revision="step1000", late=99), "hf:org/m", "hf", None)  # checked after loading


def test_layer_choice_replaces_only_what_was_given() -> None:
    assert layer_choice(ModelArgs(late=3), 4, "m", early=1, late=2, patch=(2, 3)) == (1, 3, (2, 3))
    assert layer_choice(ModelArgs(), 4, "m", early=1, late=2, patch=(2, 3)) == (1, 2, (2, 3))
    assert layer_choice(ModelArgs(early=0, patch=(0, 1)), 4, "m", early=1, late=2, patch=(2, 3)) == (0, 2, (0, 1))


def test_toy_load_applies_the_args_and_records_them() -> None:
    plain = load_model("toy-llama", device="cpu")
    args = parse_model_args("early=0,late=2,patch=1-2,attn_implementation=sdpa,dtype=bf16")
    loaded = load_model("toy-llama", device="cpu", model_args=args)
    assert (loaded.layers.early, loaded.layers.late, loaded.layers.patch_layers) == (0, 2, (1, 2))
    assert loaded.model.config._attn_implementation == "sdpa"
    assert next(loaded.model.parameters()).dtype == torch.bfloat16 and loaded.provenance["dtype"] == "bfloat16"
    assert loaded.provenance["model_args"] == args.applied()
    assert loaded.identity["model_args"] == args.applied()  # cache keys of an args load differ from a plain load
    assert "model_args" not in plain.provenance and "model_args" not in plain.identity
    assert plain.provenance["devices"] == ["cpu"]
    with pytest.raises(ModelArgsError, match="revision= applies to hf models only"):
        load_model("toy-llama", device="cpu", model_args=ModelArgs(revision="main"))


def test_quantization_and_chat_template_parse_and_false_is_the_default() -> None:
    args = parse_model_args("quantization=nf4,chat_template=TRUE")
    assert (args.quantization, args.chat_template) == ("nf4", True)
    assert args.applied() == {"quantization": "nf4", "chat_template": True}
    assert parse_model_args("chat_template=false") == ModelArgs()  # raw text: the keys of a default run unchanged


def test_quantization_needs_cuda_pretrained_weights_and_bitsandbytes() -> None:
    args = ModelArgs(quantization="int8")
    with pytest.raises(ModelArgsError) as err:
        quantization_kwargs(args, "cpu", torch.float32)
    assert str(err.value) == ("--model-args quantization=int8 needs a CUDA GPU (bitsandbytes quantizes weights on the "
                              "GPU); this run's device is cpu")
    with pytest.raises(ModelArgsError, match="quantization= needs pretrained weights; toy-llama is a toy model"):
        check_args_for_model(args, "toy-llama", "toy", None)
    with pytest.raises(ModelArgsError, match="needs a CUDA GPU"):  # load_model refuses before loading anything
        load_model("path:/nonexistent/model", device="cpu", model_args=ModelArgs(quantization="nf4"))
    assert quantization_kwargs(ModelArgs(), "cpu", torch.float32) == {}


def test_quantization_configs_on_cuda() -> None:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(ModelUnavailableError, match="needs bitsandbytes: pip install 'kvclaims\\[quantization\\]'"):
            quantization_kwargs(ModelArgs(quantization="nf4"), "cuda", torch.bfloat16)
        return
    int8 = quantization_kwargs(ModelArgs(quantization="int8"), "cuda", torch.bfloat16)["quantization_config"]
    nf4 = quantization_kwargs(ModelArgs(quantization="nf4"), "cuda:0", torch.bfloat16)["quantization_config"]
    assert int8.load_in_8bit and not int8.load_in_4bit
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_compute_dtype == torch.bfloat16
