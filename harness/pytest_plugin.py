"""pytest interface of the suite: options, model parametrization, session-scoped model fixture.

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
import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import progress
from harness.claim_context import ClaimContext, RunSettings
from harness.geometry.metrics import DEFAULT_WINDOW
from harness.gpu_assignment import (
    GPUAssignmentError,
    cuda_initialised,
    default_gpus_per_worker,
    nvidia_smi_gpus,
    pin_worker_gpus,
    visible_gpus,
    worker_gpu_slice,
)
from harness.measurement_cache import CACHE_MODES, MeasurementCache
from harness.models import (
    DEFAULT_MODEL,
    MODEL_ALIASES,
    GPUUnavailableError,
    LoadedModel,
    ModelUnavailableError,
    UnknownModelError,
    check_series,
    load_model,
    resolve_spec,
)
from harness.models.loading import cuda_index, placement_kwargs
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

if TYPE_CHECKING:
    from harness.prompts import PromptBank


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
        "'embedded', 'gpu', hf:<org/name>[@revision] or path:<dir>",
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
    group.addoption("--limit", "--n", dest="n_cap", type=int, default=None,
                    help="cap on prompts (or pairs) per condition (--n: the old name, kept as an alias)")
    group.addoption("--list-models", dest="list_models", action="store_true",
                    help="print the registered models and aliases, then exit")
    group.addoption("--list-claims", dest="list_claims", action="store_true",
                    help="print the registered claims (id, version, family, planned n, rule), then exit")
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


def share_cpu_threads_among_workers(worker_count: str | None) -> int | None:
    """Give torch as many intra-op threads as this process's share of the cores that are idle now; returns the count.

    The share is ``cores // workers`` in an xdist worker, all cores otherwise; it is capped at the cores measured
    idle over 0.2 s (:func:`harness.cpu_threads.idle_cores`), at least 1. Oversubscribed OpenMP threads spin
    against other processes: on the shared 2-core machine with 2 busy background processes, decode-shaped work
    with torch's default 2 threads ran 3.7× and 17× slower than without them (two runs), with this policy 2.0× and
    1.2× (benchmarks/bench_loaded_cpu.py). It also sets ``OMP_WAIT_POLICY=PASSIVE``
    in the environment when unset, so processes started afterwards (xdist workers, subprocesses) sleep instead of
    spin while waiting; this process's own OpenMP has read its setting already. An explicit ``OMP_NUM_THREADS``
    wins (and leaves the wait policy alone).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from harness.cpu_threads import idle_cores, thread_count

    cores, workers = os.cpu_count() or 1, max(1, int(worker_count)) if worker_count else 1
    threads = thread_count(cores, workers, idle_cores() if cores // workers > 1 else None)
    torch.set_num_threads(threads)
    return threads


def check_device_option(
    device: str, cuda_available: Callable[[], bool] | None = None, device_count: Callable[[], int] | None = None,
    per_worker: int | None = None,
) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA (otherwise every model test would skip and the run end
    green with nothing measured).

    Called on the controller only (after :func:`pin_gpus`): in an xdist worker, asking CUDA before the worker's GPU
    set is pinned would fix the visible devices too early. ``cuda:N`` must name a GPU that exists, and under xdist
    one inside each worker's set (``per_worker`` GPUs, when known).

    Raises:
        pytest.UsageError: naming the option and the missing GPU.
    """
    if not device.startswith("cuda"):
        return
    if cuda_available is None or device_count is None:
        import torch

        cuda_available = cuda_available or torch.cuda.is_available
        device_count = device_count or torch.cuda.device_count
    if not cuda_available():
        raise pytest.UsageError(
            f"--device {device}: no CUDA GPU is available (torch.cuda.is_available() is False); "
            "run on a CUDA machine or use --device auto or cpu"
        )
    index = cuda_index(device)
    visible = per_worker if per_worker is not None else device_count()
    if index is not None and index >= visible:
        raise pytest.UsageError(f"--device {device}: only {visible} GPU(s) visible"
                                + (" per worker" if per_worker is not None else "") + " (indices from 0)")


def xdist_worker_count(config: pytest.Config) -> int:
    """Workers pytest-xdist will start (0 without xdist); read on the controller after xdist resolved ``-n``."""
    if config.getoption("dist", default="no") == "no":
        return 0
    return len(config.getoption("tx", default=None) or [])


def pin_gpus(config: pytest.Config, list_gpus: Callable[[], list[str]] = nvidia_smi_gpus) -> int | None:
    """Give this process its GPU set (:mod:`harness.gpu_assignment`) before anything initialises CUDA; returns how
    many GPUs each xdist worker sees (None without xdist, without GPUs or with ``--device cpu``).

    - An xdist worker (``config.workerinput``) narrows ``CUDA_VISIBLE_DEVICES`` to its slice.
    - The controller of an xdist run checks ``--gpus-per-worker`` × workers against the GPU count (a usage error,
      before any worker starts) and leaves its own environment alone.
    - A run without xdist with ``--gpus-per-worker k`` uses the first k GPUs.
    Nothing is pinned with ``--device cpu``.

    Raises:
        pytest.UsageError: the GPU sets do not fit, or CUDA was initialised before a set could be pinned.
    """
    if config.getoption("device") == "cpu":
        return None
    per_worker = config.getoption("gpus_per_worker")
    workerinput = getattr(config, "workerinput", None)
    try:
        if workerinput is not None:
            _refuse_initialised_cuda(str(workerinput["workerid"]))
            value = pin_worker_gpus(str(workerinput["workerid"]), int(workerinput["workercount"]), per_worker,
                                    list_gpus=list_gpus)
            return len(value.split(",")) if value is not None else None
        workers = xdist_worker_count(config)
        if workers:
            gpus = visible_gpus(os.environ, list_gpus)
            if per_worker is not None:
                worker_gpu_slice(gpus, 0, workers, per_worker)
                return per_worker
            return max(1, default_gpus_per_worker(len(gpus), workers)) if gpus else None
        if per_worker is not None:
            _refuse_initialised_cuda("controller")
            pin_worker_gpus("gw0", 1, per_worker, list_gpus=list_gpus)
    except GPUAssignmentError as exc:
        raise pytest.UsageError(f"--gpus-per-worker: {exc}") from None
    return None


def _refuse_initialised_cuda(who: str) -> None:
    if cuda_initialised():
        raise pytest.UsageError(f"{who}: CUDA was initialised before its GPU set was pinned; do not touch CUDA at "
                                "import time in conftest files or plugins")


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
    except ModelArgsError as exc:
        message = str(exc)
        raise pytest.UsageError(message if message.startswith("--") else f"--model-args: {message}") from None
    config.stash[MODEL_ARGS_KEY] = args
    return args


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: GPU replication tier (CUDA and local weights)")
    config.addinivalue_line("markers", "slow: loads an embedded pretrained model on CPU")
    config.addinivalue_line("markers", "validation: a measurement that writes a record (tox -e scorer-validation)")
    models = selected_models(config)  # fail fast with a usage error, before collection
    per_worker = pin_gpus(config)  # first: nothing may initialise CUDA before a worker's GPU set is pinned
    configure_model_args(config, models)
    share_cpu_threads_among_workers(os.environ.get("PYTEST_XDIST_WORKER_COUNT"))
    progress.set_sink(lambda line: write_past_capture(config, line))
    if config.getoption("n_cap") is not None and config.getoption("n_cap") < 2:
        raise pytest.UsageError("--limit (--n) must be at least 2")
    if config.getoption("window") < 2:
        raise pytest.UsageError("--window must be at least 2")
    if getattr(config, "workerinput", None) is None:  # the controller checks once; workers start after it
        check_device_option(config.getoption("device"), per_worker=per_worker)
        prepare_report_dir(config.getoption("report_dir"))
    bank_path = config.getoption("prompt_bank")
    if bank_path is not None:
        from harness.prompts import PromptBankError, load_bank

        try:
            load_bank(bank_path)
        except PromptBankError as exc:
            raise pytest.UsageError(f"--prompt-bank: {exc}") from None


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


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadgroup``: one work unit per model of ``--model`` (:mod:`harness.xdist_scheduling`)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from harness.xdist_scheduling import ModelGroupScheduling

    return ModelGroupScheduling(config, log, selected_models(config))


@pytest.fixture(scope="session")
def run_settings(pytestconfig: pytest.Config) -> RunSettings:
    """The run-wide settings from the command line."""
    report_dir = pytestconfig.getoption("report_dir")
    return RunSettings(
        seed=pytestconfig.getoption("seed"),
        n_cap=pytestconfig.getoption("n_cap"),
        window=pytestconfig.getoption("window"),
        report_dir=Path(report_dir) if report_dir else None,
        device=pytestconfig.getoption("device"),
        dtype=pytestconfig.getoption("dtype"),
        batch_size=pytestconfig.getoption("batch_size"),
    )


@pytest.fixture(scope="session")
def lm(request: pytest.FixtureRequest, run_settings: RunSettings) -> Iterator[LoadedModel]:
    """The model under test (one per parameter, session scope, one resident per process). Read-only."""
    name = request.param
    try:
        loaded = load_model(name, device=run_settings.device, dtype=run_settings.dtype,
                            model_args=request.config.stash.get(MODEL_ARGS_KEY, None))
    except GPUUnavailableError as exc:
        pytest.skip(str(exc))
    except (ModelUnavailableError, ModelArgsError) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield loaded
    del loaded
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@pytest.fixture(scope="session")
def prompt_bank(pytestconfig: pytest.Config):  # type: ignore[no-untyped-def]
    """The prompt bank: ``--prompt-bank`` or the default bank in ``prompts/``."""
    from harness.prompts import load_bank

    return load_bank(pytestconfig.getoption("prompt_bank"))


@pytest.fixture(scope="session")
def measurement_cache(pytestconfig: pytest.Config) -> MeasurementCache:
    """The on-disk cache of raw per-item measurements (mode from ``--claims-cache``)."""
    return MeasurementCache(mode=pytestconfig.getoption("claims_cache"))


@pytest.fixture(scope="session")
def bank_fits() -> set[tuple[int, str]]:
    """(bank id, model name) pairs whose prompts were checked to fit the model's context (checked once each)."""
    return set()


def _check_bank_fits(bank: PromptBank, lm: LoadedModel, checked: set[tuple[int, str]]) -> None:
    """Fail the claim (one line) when a prompt of the bank is longer than the model's context."""
    from harness.models import context_length
    from harness.prompts import PromptBankError, check_max_tokens

    key = (id(bank), lm.name)
    if key in checked:
        return
    try:
        check_max_tokens(bank, lm.tokenizer, context_length(lm.model.config), lm.name)
    except PromptBankError as exc:
        pytest.fail(str(exc), pytrace=False)
    checked.add(key)


@pytest.fixture
def claim(
    request: pytest.FixtureRequest,
    lm: LoadedModel,
    prompt_bank,  # type: ignore[no-untyped-def]
    run_settings: RunSettings,
    measurement_cache: MeasurementCache,
    record_property,  # type: ignore[no-untyped-def]
    bank_fits: set[tuple[int, str]],
) -> ClaimContext:
    """The context of the claim named by the test's ``@pytest.mark.claim(<id>)`` on the model under test."""
    from harness.registry import get_claim

    marker = request.node.get_closest_marker("claim")
    claim_id = (marker.args[0] if marker.args else marker.kwargs.get("id")) if marker else None
    if claim_id is None:
        pytest.fail(f"{request.node.nodeid}: the claim fixture needs @pytest.mark.claim(<claim id>)", pytrace=False)
    _check_bank_fits(prompt_bank, lm, bank_fits)
    return ClaimContext(
        spec=get_claim(claim_id), lm=lm, bank=prompt_bank, settings=run_settings, cache=measurement_cache,
        record_property=record_property,
    )


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
        return lines + ["also: hf:<org/name>[@revision] (local Hugging Face cache), path:<dir> (save_pretrained)"]
    from harness.registry import CLAIMS

    return [f"{spec.id:30s} v{spec.version} {spec.family or '(no p)':14s} n={spec.planned_n:<4d} {spec.rule_summary()}"
            for spec in CLAIMS.values()]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--list-models`` / ``--list-claims``: print and exit 0 without collecting or loading anything."""
    for option, what in (("list_models", "models"), ("list_claims", "claims")):
        if config.getoption(option, default=False):
            for line in listing_lines(what):
                print(line)
            return 0
    return None
