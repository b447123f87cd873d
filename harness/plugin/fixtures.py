"""The suite's fixtures: ``run_settings`` (run-wide options), ``lm`` (the model under test, session scope, one
per ``--model``), ``null_twin_model`` (its random-weight twin for ``--null-twin``, built on first use),
``prompt_bank``, ``measurement_store`` (raw measurements on disk, ``--claims-cache``) and ``claim`` (a
:class:`~harness.claim.context.ClaimContext` for the test's ``@pytest.mark.claim``)."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import harness.engine.layout_proof  # noqa: F401 - registers the engine's layout prover with the loader
from harness.claim.context import ClaimContext, RunSettings
from harness.engine.decode_path import resolve_decode_path
from harness.models import GPUUnavailableError, LoadedModel, ModelUnavailableError, load_model
from harness.models.model_args import ModelArgsError
from harness.plugin.hooks import MODEL_ARGS_KEY
from harness.models.manifest import MANIFEST_KIND, ManifestError, is_skeleton, manifest_parts, model_manifest, skeleton_model
from harness.plugin.layout_check import resident, take_kept
from harness.plugin.scale_out import manifest_for, runs_on_ray, shard_of, store_for
from harness.runtime.measurement_store import MeasurementStore

if TYPE_CHECKING:
    from harness.prompts import PromptBank


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
        null_twin=pytestconfig.getoption("null_twin"),
        decode_path=pytestconfig.getoption("decode_path"),
        shard=str(shard_of(pytestconfig)) if shard_of(pytestconfig) is not None else None,
    )


@pytest.fixture(scope="session")
def lm(request: pytest.FixtureRequest, run_settings: RunSettings,
       measurement_store: MeasurementStore) -> Iterator[LoadedModel]:
    """The model under test (one per parameter, session scope, one resident per process). Read-only.

    In a reduce (``--claims-cache read`` on a store holding the model's manifest, or the driver of ``--executor
    ray``) it is the manifest's weightless skeleton (:mod:`harness.plugin.scale_out`); a run that writes the store
    writes the loaded model's manifest. In a process that holds the model resident (a Ray actor) it is that copy."""
    name = request.param
    model_args = request.config.stash.get(MODEL_ARGS_KEY, None)
    manifest = manifest_for(request.config, name, model_args)
    if manifest is not None:
        try:
            skeleton = skeleton_model(manifest)
        except ManifestError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield skeleton
        return
    if runs_on_ray(request.config):
        pytest.fail(f"--executor ray: the store holds no manifest of {name}: no Ray actor loaded it (see the dispatch "
                    "lines above)", pytrace=False)
    options = {"device": run_settings.device, "dtype": run_settings.dtype, "model_args": model_args}
    try:
        loaded = resident(name, **options) or take_kept(name, **options) or load_model(name, **options)
    except GPUUnavailableError as exc:
        pytest.skip(str(exc))
    except (ModelUnavailableError, ModelArgsError) as exc:
        pytest.fail(str(exc), pytrace=False)
    loaded = loaded.with_decode_path(resolve_decode_path(run_settings.decode_path, loaded.input_device).value)
    if measurement_store.mode in ("readwrite", "refresh"):
        measurement_store.put(MANIFEST_KIND, manifest_parts(name, device=run_settings.device, dtype=run_settings.dtype,
                                                            model_args=model_args, decode_path=run_settings.decode_path),
                              model_manifest(loaded))
    yield loaded
    del loaded
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@pytest.fixture(scope="session")
def null_twin_model(lm: LoadedModel, run_settings: RunSettings) -> Iterator[Callable[[], LoadedModel]]:
    """The model's random-weight twin (``--null-twin``, :func:`harness.claim.null_twin.build_null_twin`), as a
    callable that builds it on first call and returns the same twin after: one per model and run, freed before the
    model is."""
    from harness.claim.null_twin import build_null_twin

    built: list[LoadedModel] = []

    def twin() -> LoadedModel:
        if not built:
            built.append(build_null_twin(lm, run_settings.seed))
        return built[0]

    yield twin
    if built:
        built.clear()
        gc.collect()


def rerun_of(request: pytest.FixtureRequest) -> Callable[[ClaimContext], None]:
    """A call of the requesting test's function with a given context as ``claim`` and the test's own values for its
    other arguments (read when called, in the call phase, so every fixture is set up)."""
    function = request.node.obj
    parameters = inspect.signature(function).parameters

    def rerun(context: ClaimContext) -> None:
        values, kwargs = request.node.funcargs, {}
        for name, parameter in parameters.items():
            if name == "claim":
                kwargs[name] = context
            elif name in values:
                kwargs[name] = values[name]
            elif parameter.default is inspect.Parameter.empty:
                kwargs[name] = request.getfixturevalue(name)
        function(**kwargs)

    return rerun


@pytest.fixture(scope="session")
def prompt_bank(pytestconfig: pytest.Config):  # type: ignore[no-untyped-def]
    """The prompt bank: ``--prompt-bank`` or the default bank in ``prompts/``."""
    from harness.prompts import load_bank

    return load_bank(pytestconfig.getoption("prompt_bank"))


@pytest.fixture(scope="session")
def measurement_store(pytestconfig: pytest.Config) -> MeasurementStore:
    """The on-disk measurement store of raw per-item measurements (root from ``--store``, mode from
    ``--claims-cache``)."""
    return store_for(pytestconfig)


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
    measurement_store: MeasurementStore,
    record_property,  # type: ignore[no-untyped-def]
    bank_fits: set[tuple[int, str]],
    null_twin_model: Callable[[], LoadedModel],
) -> ClaimContext:
    """The context of the claim named by the test's ``@pytest.mark.claim(<id>)`` on the model under test."""
    from harness.registry import get_claim

    marker = request.node.get_closest_marker("claim")
    claim_id = (marker.args[0] if marker.args else marker.kwargs.get("id")) if marker else None
    if claim_id is None:
        pytest.fail(f"{request.node.nodeid}: the claim fixture needs @pytest.mark.claim(<claim id>)", pytrace=False)
    _check_bank_fits(prompt_bank, lm, bank_fits)
    store = measurement_store.reading_only() if is_skeleton(lm) else measurement_store
    return ClaimContext(
        spec=get_claim(claim_id), lm=lm, bank=prompt_bank, settings=run_settings, store=store,
        record_property=record_property, rerun=rerun_of(request), twin_model=null_twin_model,
    )
