"""pytest interface of the suite: options, model parametrization, session hooks (the fixtures are in
:mod:`harness.plugin.fixtures`, the thread and GPU policy in :mod:`harness.runtime.worker_policy`).

Any test that requests the ``lm`` fixture is parametrized (indirectly, session scope) over the models
selected with ``--model``: one parameter per model, with exactly one ``xdist_group`` mark (one model
per xdist worker under ``--dist loadgroup``) and a ``gpu`` mark for GPU-tier and user-named models.
Collection depends only on the command line, never on worker-local state (CUDA, caches).

A GPU-tier model on a machine without CUDA is *skipped* with a reason naming the missing GPU (so
``pytest claims/ -m gpu --model mistral7b`` exits 0 on a laptop); missing weights are a one-line setup
error that says where the loader looked and how to provide them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.engine.decode_path import DECODE_PATH_CHOICES
from harness.geometry.metrics import DEFAULT_WINDOW
from harness.models import DEFAULT_MODEL, MODEL_ALIASES, ModelUnavailableError, UnknownModelError, check_series, resolve_spec
from harness.models.loading import placement_kwargs, quantization_kwargs
from harness.models.model_args import (
    DTYPE_ALIASES,
    MODEL_ARG_KEYS,
    ModelArgs,
    ModelArgsError,
    canonical_dtype,
    check_args_for_model,
    parse_model_args,
    resolve_dtype,
)
from harness.plugin.user_claims import load_user_claims
from harness.runtime import progress
from harness.runtime.gpu_assignment import cuda_index
from harness.runtime.measurement_store import CACHE_MODES
from harness.runtime.worker_policy import check_device_option, pin_gpus, share_cpu_threads_among_workers

DTYPE_CHOICES: dict[str, str] = DTYPE_ALIASES
"""Accepted ``--dtype`` values and the torch dtype name each means."""

MODEL_ARGS_KEY = pytest.StashKey[ModelArgs]()
"""The parsed ``--model-args`` of the run (set in ``pytest_configure``)."""


def dtype_choice(value: str) -> str:
    """``--dtype``'s type: the canonical dtype name of ``value`` (an alias such as bf16 accepted); anything else is a
    usage error naming the choices."""
    try:
        return canonical_dtype(value)
    except ModelArgsError:
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from {', '.join(DTYPE_CHOICES)})") from None


def device_choice(value: str) -> str:
    """``--device``'s type: ``auto``, ``cpu``, ``cuda`` (all visible GPUs) or ``cuda:N`` (visible GPU N)."""
    try:
        cuda_index(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid device {value!r} (auto, cpu, cuda or cuda:N)") from None
    return value


def positive_int(value: str) -> int:
    """argparse type: an int of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value!r} (a positive int)")
    return number


def batch_size_choice(value: str) -> int | str:
    """``--batch-size``: ``auto`` or a positive int (argparse type; a bad value is a usage error naming both)."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"invalid batch size {value!r} (a positive int or auto)") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvclaims", "KV-cache and value-geometry claims")
    group.addoption(
        "--model",
        action="append",
        default=None,
        help=f"model name(s), comma-separated or repeated (default {DEFAULT_MODEL}); registry names, "
        "'embedded', 'gpu', hf:<org/name>[@revision], path:<dir> or gguf:<file>",
    )
    group.addoption("--device", default="auto", type=device_choice,
                    help="where models run: auto (default), cpu, cuda (spread over the visible GPUs as needed) or "
                         "cuda:N (visible GPU N); on CUDA every model loads in bfloat16 unless a dtype is given")
    group.addoption("--model-args", dest="model_args", default=None,
                    help="key=value,... applied to every selected model; keys: " + ", ".join(MODEL_ARG_KEYS)
                         + " (e.g. dtype=bf16,revision=step1000,device_map=sequential,max_memory=70GiB,"
                           "attn_implementation=sdpa,early=4,late=27,patch=16-31)")
    group.addoption("--gpus-per-worker", dest="gpus_per_worker", default=None, type=positive_int,
                    help="GPUs of each pytest-xdist worker, disjoint sets taken from CUDA_VISIBLE_DEVICES (or "
                         "nvidia-smi -L) before CUDA starts (default: all GPUs ÷ workers)")
    group.addoption("--dtype", default=None, type=dtype_choice,
                    help="override the model's dtype: " + ", ".join(f"{a} ({c})" if a != c else a
                                                                   for a, c in DTYPE_CHOICES.items()))
    group.addoption("--prompt-bank", dest="prompt_bank", default=None, help="a prompt bank file or directory")
    group.addoption(
        "--report-dir", dest="report_dir", default=None, help="where reports go (default reports/<run-id>/)"
    )
    group.addoption("--seed", type=int, default=0, help="run seed for sampling, bootstrap and controls")
    group.addoption("--batch-size", dest="batch_size", default="auto", type=batch_size_choice,
                    help="continuations per generation batch: a positive int, or auto (default: 32 on CPU, sized from "
                         "free memory on CUDA); a batch that runs out of memory is halved and retried")
    group.addoption("--decode-path", dest="decode_path", default="auto", choices=DECODE_PATH_CHOICES,
                    help="how continuations are decoded: eager (the reference: the model's attention, a growing cache), "
                         "fast (SDPA, a preallocated static cache, a compiled step on CUDA; same tokens, logits within "
                         "1e-4 in fp32; conditions that read attention weights stay eager) or auto (default: fast on "
                         "CUDA, eager elsewhere)")
    group.addoption("--limit", "--n", dest="n_cap", type=int, default=None,
                    help="cap on prompts (or pairs) per condition (--n: the old name, kept as an alias)")
    group.addoption("--list-models", dest="list_models", action="store_true",
                    help="print the registered models and aliases, then exit")
    group.addoption("--list-claims", dest="list_claims", action="store_true",
                    help="print the registered claims, with the user claims (*.claim.yaml) under the given paths (id, "
                         "version, family, planned n, rule), then exit")
    group.addoption("--verdicts-exit", dest="verdicts_exit", default="strict", choices=("strict", "report"),
                    help="strict (default): a claim that does not PASS fails the run (a replication check); "
                         "report: exit 0 once a complete report is written")
    group.addoption(
        "--claims-cache",
        dest="claims_cache",
        default="readwrite",
        choices=CACHE_MODES,
        help="on-disk cache of raw measurements: off, read, readwrite (default), refresh",
    )
    group.addoption(
        "--projector", default="train", choices=("train", "cached"),
        help="projector_transfers_context: train (default) a missing cross-model projector, or cached: use only a "
             "stored one (none stored: the claim is INCONCLUSIVE, naming the command that trains it)",
    )
    group.addoption(
        "--window", type=int, default=DEFAULT_WINDOW, help=f"V window W in content tokens (default {DEFAULT_WINDOW})"
    )
    group.addoption(
        "--null-twin", dest="null_twin", nargs="?", const="passing", default=None, metavar="passing|all",
        help="re-run each claim that PASSes (passing, what a bare --null-twin means) or every claim with a verdict "
             "(all) on a random-weight copy of the model, and report the twin's verdict beside it (off by default: "
             "it costs a second run of each such claim)",
    )


def selected_models(config: pytest.Config) -> list[str]:
    """Model names from ``--model`` (comma-separated and repeatable), aliases expanded, de-duplicated, sorted.

    Raises:
        pytest.UsageError: for a name that is not a registry name, alias, ``hf:`` or ``path:`` reference, or a
            malformed revision series.
    """
    raw = config.getoption("model") or [DEFAULT_MODEL]
    names: list[str] = []
    for item in raw:
        for name in (part.strip() for part in item.split(",")):
            if name:
                names.extend(MODEL_ALIASES.get(name, (name,)))
    try:
        for name in names:
            resolve_spec(name)
        check_series(names)  # checkpoints of one run (harness.models.revisions): each stays its own model
    except UnknownModelError as exc:
        raise pytest.UsageError(f"--model: {exc}") from None
    return sorted(dict.fromkeys(names))


def configure_model_args(config: pytest.Config, models: list[str]) -> ModelArgs:
    """Parse ``--model-args``, check it against ``--dtype``, ``--device`` and every selected model (registry facts),
    and keep it in ``config.stash[MODEL_ARGS_KEY]``.

    Raises:
        pytest.UsageError: one line naming the problem (for an unknown key: the allowed keys).
    """
    try:
        args = parse_model_args(config.getoption("model_args"))
        resolve_dtype("float32", "cpu", config.getoption("dtype"), args)  # --dtype and dtype= must agree
        if config.getoption("device") == "cpu":
            placement_kwargs("cpu", args, [])
        for name in models:
            spec = resolve_spec(name)
            check_args_for_model(args, name, spec.source, spec.expected.n_layers if spec.expected else None)
        if args.quantization is not None:
            check_quantization_device(args, config.getoption("device"))
    except (ModelArgsError, ModelUnavailableError) as exc:
        message = str(exc)
        raise pytest.UsageError(message if message.startswith("--") else f"--model-args: {message}") from None
    config.stash[MODEL_ARGS_KEY] = args
    return args


def check_quantization_device(args: ModelArgs, device_option: str) -> None:
    """``quantization=`` needs CUDA and bitsandbytes: checked at start against ``--device`` (``auto`` means CUDA when
    this machine has it).

    Raises:
        ModelArgsError, ModelUnavailableError: one line (see :func:`harness.models.loading.quantization_kwargs`).
    """
    import torch

    device = device_option if device_option != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    quantization_kwargs(args, device, torch.bfloat16)


def check_bank_against_models(bank: Any, models: list[str], window: int) -> None:
    """A user bank's prompts against every selected model's context length and the V window (``--window``: each
    prompt needs W + 1 content tokens), before any claim runs (tokenizers and configs only; a model whose tokenizer
    cannot be read here is left to its load).

    Raises:
        pytest.UsageError: ``--prompt-bank: <file>: prompt <id>: <n> tokens exceed the context of <model> …`` or
            ``… too short for the window: <n> content tokens < W + 1 = …``.
    """
    from harness.models.loading import tokenizer_and_context
    from harness.prompts import PromptBankError, check_max_tokens, check_min_tokens

    for name in models:
        try:
            tokenizer, context = tokenizer_and_context(resolve_spec(name))
        except ModelUnavailableError:
            continue
        try:
            check_max_tokens(bank, tokenizer, context, name)
        except PromptBankError as exc:
            raise pytest.UsageError(f"--prompt-bank: {exc}") from None
        try:
            check_min_tokens(bank, tokenizer, window)
        except PromptBankError as exc:
            raise pytest.UsageError(f"--prompt-bank: {exc} (tokenized for {name}; or lower --window)") from None


def prepare_report_dir(option: str | None) -> None:
    """Check ``--report-dir`` at start and remove an earlier run's report files from it (only the suite's own).

    Raises:
        pytest.UsageError: the path is a file or cannot be written.
    """
    if not option:
        return
    from harness.report.files import ReportDirError, check_report_dir, clear_stale_report

    try:
        check_report_dir(Path(option))
    except ReportDirError as exc:
        raise pytest.UsageError(f"--report-dir: {exc}") from None
    clear_stale_report(Path(option))


def write_past_capture(config: pytest.Config, line: str) -> None:
    """One progress line on the terminal's standard error, with pytest's output capturing suspended (so it shows
    during a test, and from a pytest-xdist worker, whose standard error is the terminal's)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    suspended = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    with suspended:
        sys.stderr.write((f"[{worker}] " if worker else "") + line + "\n")
        sys.stderr.flush()


def check_null_twin_option(value: str | None) -> None:
    """``--null-twin``: absent, ``passing`` or ``all``.

    Raises:
        pytest.UsageError: one line naming the value and the choices (``--null-twin`` takes the next word as its
            value, so a path right after it lands here).
    """
    from harness.claim.null_twin import NULL_TWIN_MODES

    if value is not None and value not in NULL_TWIN_MODES:
        raise pytest.UsageError(f"--null-twin: invalid value {value!r} (passing or all; put a bare --null-twin after "
                                "the paths, or write --null-twin=passing)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: GPU replication tier (CUDA and local weights)")
    config.addinivalue_line("markers", "slow: loads an embedded pretrained model on CPU")
    models = selected_models(config)  # fail fast with a usage error, before collection
    load_user_claims(config)  # every process: workers collect and run them, the controller reports them
    per_worker = pin_gpus(config)  # first: nothing may initialise CUDA before a worker's GPU set is pinned
    configure_model_args(config, models)
    share_cpu_threads_among_workers(os.environ.get("PYTEST_XDIST_WORKER_COUNT"))
    progress.set_sink(lambda line: write_past_capture(config, line))
    if config.getoption("n_cap") is not None and config.getoption("n_cap") < 2:
        raise pytest.UsageError("--limit (--n) must be at least 2")
    if config.getoption("window") < 2:
        raise pytest.UsageError("--window must be at least 2")
    check_null_twin_option(config.getoption("null_twin"))
    if getattr(config, "workerinput", None) is None:  # the controller checks once; workers start after it
        from harness.plugin.scale_out import runs_on_ray  # not at the top: pytest registers (rewrites) it after this

        if not runs_on_ray(config):  # a Ray driver runs no model: its actors check --device where they run
            check_device_option(config.getoption("device"), per_worker=per_worker)
        prepare_report_dir(config.getoption("report_dir"))
    bank_path = config.getoption("prompt_bank")
    if bank_path is not None:
        from harness.prompts import PromptBankError, load_bank

        try:
            bank = load_bank(bank_path)
        except PromptBankError as exc:
            raise pytest.UsageError(f"--prompt-bank: {exc}") from None
        if getattr(config, "workerinput", None) is None:
            check_bank_against_models(bank, weighted_models(config, models), config.getoption("window"))
    if getattr(config, "workerinput", None) is None:  # last: the other usage errors come before any model loads
        from harness.plugin.layout_check import check_models_at_start

        serial = not config.getoption("numprocesses", default=None)  # no xdist workers: this process runs the claims
        for line in check_models_at_start(models_to_load_at_start(config, models),
                                           device=config.getoption("device"), dtype=config.getoption("dtype"),
                                           model_args=config.stash[MODEL_ARGS_KEY], keep_first=serial):
            progress.emit(line)


def weighted_models(config: pytest.Config, models: list[str]) -> list[str]:
    """The ``models`` this run loads: all but those a reduce reads from their manifests
    (:func:`harness.plugin.scale_out.manifest_for`), which nothing at start may load; none in the driver of
    ``--executor ray``, whose actors load the models (and check them, and the prompt bank against them)."""
    from harness.plugin.scale_out import manifest_for, runs_on_ray

    if runs_on_ray(config):
        return []
    return [name for name in models if manifest_for(config, name, config.stash[MODEL_ARGS_KEY]) is None]


def models_to_load_at_start(config: pytest.Config, models: list[str]) -> list[str]:
    """The :func:`weighted_models` the start-time check may load: not those this process holds resident
    (:func:`harness.plugin.layout_check.resident`: a Ray actor loaded, and so checked, them once for all its
    sessions)."""
    from harness.plugin.layout_check import resident

    options = {"device": config.getoption("device"), "dtype": config.getoption("dtype"),
               "model_args": config.stash[MODEL_ARGS_KEY]}
    return [name for name in weighted_models(config, models) if resident(name, **options) is None]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lm" not in metafunc.fixturenames:
        return
    params = []
    for name in selected_models(metafunc.config):
        marks = [pytest.mark.xdist_group(name)]
        if resolve_spec(name).tier in ("gpu", "any"):
            marks.append(pytest.mark.gpu)
        params.append(pytest.param(name, id=name, marks=marks))
    metafunc.parametrize("lm", params, indirect=True, scope="session")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: without xdist loaded (-p no:xdist) it is never called
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadgroup``: one work unit per model of ``--model`` (:mod:`harness.runtime.xdist_scheduling`)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from harness.runtime.xdist_scheduling import ModelGroupScheduling

    return ModelGroupScheduling(config, log, selected_models(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Progress lines go back to the logger once this session's terminal is gone."""
    progress.set_sink(None)


def listing_lines(what: str) -> list[str]:
    """The lines ``--list-models`` (``what="models"``) or ``--list-claims`` (``"claims"``) prints."""
    if what == "models":
        from harness.models.registry import MODEL_ALIASES, MODEL_REGISTRY

        lines = [f"{name:22s} {spec.tier:4s} {spec.dtype:9s} {spec.source:13s} {spec.location}"
                 for name, spec in MODEL_REGISTRY.items()]
        lines += [f"alias {alias}: {', '.join(names)}" for alias, names in MODEL_ALIASES.items()]
        return lines + ["also: hf:<org/name>[@revision] (local Hugging Face cache), path:<dir> (save_pretrained), "
                        "gguf:<file> (any GGUF transformers can dequantize); a model_type without a row gets its layout "
                        "inferred and proven at load"]
    from harness.registry import CLAIMS
    from harness.registry.reachability import reachability_words
    from harness.registry.user_claims import USER_CLAIM_SOURCES

    return [f"{spec.id:30s} v{spec.version} {spec.family or '(no p)':14s} n={spec.planned_n:<4d} {spec.rule_summary()}"
            + (f"  [{reachability_words(spec)}]" if reachability_words(spec) else "")
            + (f"  [user claim: {USER_CLAIM_SOURCES[spec.id]}]" if spec.id in USER_CLAIM_SOURCES else "")
            for spec in CLAIMS.values()]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--list-models`` / ``--list-claims``: print and exit 0 without collecting or loading anything."""
    for option, what in (("list_models", "models"), ("list_claims", "claims")):
        if config.getoption(option, default=False):
            if what == "claims":
                load_user_claims(config)
            for line in listing_lines(what):
                print(line)
            return 0
    return None
