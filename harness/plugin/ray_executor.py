"""``--executor ray``: the run's claim tests measured on Ray actors that each hold one model, then decided here from
the run's store (docs/SCALE_OUT.md, "Ray").

The pytest session is the *driver*: it loads no model. Once the claim tests are collected it groups them into work
items (:func:`harness.runtime.shards.work_item`: one claim test × model, the item the shards split) and, model by
model, starts ``--ray-actors`` actors (:class:`harness.plugin.ray_actor.ModelActor`, ``num_gpus`` from
``--ray-gpus-per-actor``, one CPU each, ``max_restarts=0``) that load the model once, with the run's options, and
hold it resident (a model larger than one GPU spreads over the actor's GPUs as ``--device cuda`` does). The items
are fed to the actors one at a time each (:class:`ActorPool`, ``ray.wait``). An actor runs an item as a shard of
one (measure, decide nothing) into its own temporary store and hands back the entries it wrote; the driver merges
them into the run's store (``--store``) with :func:`harness.store.merge.merge_stores` (a conflict fails the item in
one line). Then pytest's own loop runs the claim tests here as a reduce: each model is the weightless skeleton of
the manifest its actor wrote, every claim reads through a store that cannot compute, and the report is written as in
any run; the claims come out as a serial run's would, value for value.

- An actor that *dies* (``RayActorError``: the process crashed, was killed or its node was lost) is replaced by a
  new one for the same model and its item is sent again, at most :data:`MAX_TRIES` times in all; after that the
  item's claim tests fail in one line naming it. A claim test that *fails inside* its actor's session is not
  retried: its error (setup or call phase, a skip with its reason, or numbers that stopped being finite) is raised
  again in the same phase here, so its report row is the one a serial run would write.
- Progress lines: the dispatch, each model's items done/total with an ETA, every actor restart, and a summary line
  ``ray: N work items in S s (R items/s, E store entries/s), K actor restarts``.

Test hook: ``KVCLAIMS_RAY_DIE_ONCE=<work item>:<marker file>`` in the driver's environment (handed to its actors)
makes the actor that runs ``<work item>`` (e.g. ``kv_transfer@toy-llama``) create the marker file and ``os._exit(1)``
in the middle of the item (its model and fixtures set up, the test about to run) when the marker does not exist yet:
one actor death, exactly once, for the retry test. The marker path must not contain ``:``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.plugin.hooks import positive_int
from harness.plugin.ray_actor import ACTOR_SHARD, ActorSetup, ModelActor, scratch_folder
from harness.plugin.scale_out import claim_work_item, runs_on_ray, store_for
from harness.runtime import progress

__all__ = ["DIE_ONCE_ENV", "MAX_TRIES", "ActorPool", "ItemOutcome", "PoolResult", "actor_options", "run_on_ray"]

DIE_ONCE_ENV = "KVCLAIMS_RAY_DIE_ONCE"
"""The fault hook's environment variable (see the module docstring)."""

MAX_TRIES = 3
"""Tries of one work item, counting the first: an item whose actor died this many times fails."""

NEEDS_RAY = "--executor ray needs Ray: pip install 'kvclaims[ray]'"


@dataclass(frozen=True)
class ItemOutcome:
    """What the driver re-raises for a claim test whose actor did not simply measure it: in ``phase`` (``setup`` or
    ``call``), a ``skip``, a ``fail`` or a ``non_finite`` error with ``message``."""

    phase: str
    kind: str
    message: str


OUTCOMES_KEY = pytest.StashKey[dict[str, ItemOutcome]]()
"""The outcomes of the dispatch, by node id, for the claim tests that did not just measure."""


def gpu_count(value: str) -> float:
    """``--ray-gpus-per-actor``: a number of GPUs ≥ 0 (Ray accepts fractions: 0.5 puts two actors on a GPU)."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"invalid GPU count {value!r} (a number >= 0)")
    return int(number) if number.is_integer() else number


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvclaims")
    group.addoption("--executor", default="local", choices=("local", "ray"),
                    help="local (default): claim tests run in this process (or its xdist workers); ray: on Ray actors "
                         "that each hold one model, then decided here from the store (needs kvclaims[ray])")
    group.addoption("--ray-address", dest="ray_address", default=None, metavar="ADDR",
                    help="the Ray cluster of --executor ray (default: start a local one with this machine's cores)")
    group.addoption("--ray-actors", dest="ray_actors", default=None, type=positive_int, metavar="K",
                    help="actors per model under --executor ray, each holding one copy (default 1)")
    group.addoption("--ray-gpus-per-actor", dest="ray_gpus_per_actor", default=None, type=gpu_count, metavar="k",
                    help="GPUs of each actor under --executor ray (default 1 where the cluster has GPUs and --device "
                         "is not cpu, else 0); a model larger than one GPU spreads over its actor's GPUs")


def pytest_configure(config: pytest.Config) -> None:
    """The options of ``--executor ray``, checked before anything loads (each problem a one-line usage error)."""
    if not runs_on_ray(config):
        for option, name in (("ray_address", "--ray-address"), ("ray_actors", "--ray-actors"),
                             ("ray_gpus_per_actor", "--ray-gpus-per-actor")):
            if config.getoption(option, default=None) is not None:
                raise pytest.UsageError(f"{name} is an option of --executor ray (the run's executor is local)")
        return
    if importlib.util.find_spec("ray") is None:
        raise pytest.UsageError(NEEDS_RAY)
    if config.getoption("numprocesses", default=None):
        raise pytest.UsageError("--executor ray runs the claim tests on Ray actors: drop -n (pytest-xdist workers); "
                                "--ray-actors sets how many actors hold each model")
    if config.getoption("shard", default=None) is not None:  # read as given: this may run before scale_out's check
        raise pytest.UsageError(f"--executor ray with --shard {config.getoption('shard')}: use one or the other (the "
                                "actors measure every claim test of the run)")
    if config.getoption("claims_cache") not in ("readwrite", "refresh"):
        raise pytest.UsageError(f"--executor ray: the actors fill the run's store; --claims-cache must be readwrite or "
                                f"refresh, not {config.getoption('claims_cache')} (reduce a filled store with "
                                "--claims-cache read and the local executor)")
    if config.getoption("null_twin", default=None) is not None:
        raise pytest.UsageError("--executor ray: --null-twin is not supported (the driver holds no weights to build "
                                "the random-weight twin from)")


def work_of(items: list[pytest.Item]) -> dict[str, dict[str, list[str]]]:
    """``{model: {work item: [node ids]}}`` of the claim tests among ``items``, in collection order."""
    work: dict[str, dict[str, list[str]]] = {}
    for item in items:
        name = claim_work_item(item)
        if name is not None:
            model = str(item.callspec.params["lm"])  # type: ignore[attr-defined]
            work.setdefault(model, {}).setdefault(name, []).append(item.nodeid)
    return work


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Under ``--executor ray``: measure every claim test on the actors, then let pytest's loop run them here as a
    reduce (returns None, so the next implementation runs the items)."""
    config = session.config
    if not runs_on_ray(config) or config.option.collectonly:
        return
    if session.testsfailed and not config.option.continue_on_collection_errors:
        return  # pytest's loop stops the run with the collection errors
    work = work_of(session.items)
    config.stash[OUTCOMES_KEY] = run_on_ray(config, work) if work else {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A claim test whose actor skipped it, failed in setup, or could not run it: the same here, before fixtures."""
    outcome = item.config.stash.get(OUTCOMES_KEY, {}).get(item.nodeid)
    if outcome is not None and outcome.phase == "setup":
        _raise(outcome)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A claim test that failed (or skipped) in its actor once set up: the same error here, in the call phase."""
    outcome = item.config.stash.get(OUTCOMES_KEY, {}).get(item.nodeid)
    if outcome is not None and outcome.phase == "call":
        _raise(outcome)


def _raise(outcome: ItemOutcome) -> None:
    if outcome.kind == "skip":
        pytest.skip(outcome.message)
    if outcome.kind == "non_finite":
        from harness.foundation.nonfinite import NonFiniteError

        raise NonFiniteError(outcome.message)
    pytest.fail(outcome.message, pytrace=False)


def actor_options(config: pytest.Config) -> tuple[str, ...]:
    """The driver's options that change measurements, as an actor's command-line words (paths absolute)."""
    words = ["--seed", str(config.getoption("seed")), "--window", str(config.getoption("window")),
             "--batch-size", str(config.getoption("batch_size")), "--decode-path", config.getoption("decode_path"),
             "--device", config.getoption("device"), "--claims-cache", config.getoption("claims_cache"),
             "--projector", config.getoption("projector")]
    for option, flag in (("n_cap", "--limit"), ("dtype", "--dtype"), ("model_args", "--model-args")):
        if config.getoption(option) is not None:
            words += [flag, str(config.getoption(option))]
    if config.getoption("prompt_bank"):
        words += ["--prompt-bank", str((config.invocation_params.dir / config.getoption("prompt_bank")).resolve())]
    if config.pluginmanager.hasplugin("xdist"):
        words += ["-n", "0"]  # an ini file's -n must not start workers inside an actor
    return tuple(words)


def run_on_ray(config: pytest.Config, work: dict[str, dict[str, list[str]]]) -> dict[str, ItemOutcome]:
    """Connect to (or start) the cluster, run every model's work items on its actors, merge their entries into the
    run's store; the outcomes to re-raise, by node id."""
    import ray

    connected = connect(ray, config.getoption("ray_address"))
    run = uuid.uuid4().hex[:12]
    try:
        gpus = config.getoption("ray_gpus_per_actor")
        if gpus is None:
            gpus = 1 if config.getoption("device") != "cpu" and ray.cluster_resources().get("GPU", 0) > 0 else 0
        if gpus > ray.cluster_resources().get("GPU", 0):  # an actor that can never be placed would wait forever
            raise pytest.UsageError(f"--ray-gpus-per-actor {gpus}: the Ray cluster has "
                                    f"{ray.cluster_resources().get('GPU', 0):g} GPUs in all")
        wanted = config.getoption("ray_actors") or 1
        actors = fitting_actors(ray.cluster_resources(), wanted, gpus)
        total = sum(len(items) for items in work.values())
        progress.emit(f"[kvclaims] ray: {total} work items of {len(work)} models, {actors} actors per model "
                      f"(num_gpus={gpus}, num_cpus=1)" + (f", {wanted} asked: the cluster fits {actors}"
                                                          if actors < wanted else ""))
        outcomes: dict[str, ItemOutcome] = {}
        summary = PoolResult()
        root = store_for(config).root
        for model, items in work.items():
            pool = ActorPool(ray, driver_setup(config, model, run), actors, gpus, root,
                             refresh=config.getoption("claims_cache") == "refresh")
            result = pool.run(items)
            outcomes.update(result.outcomes)
            summary = summary.plus(result)
        progress.emit(f"[kvclaims] {summary.line()}")
        return outcomes
    finally:
        if connected:
            ray.shutdown()
        shutil.rmtree(scratch_folder(run), ignore_errors=True)  # a dead actor's store, on this node


def connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster at ``address``, or start a local one with this machine's cores; False when this
    process was connected already (then it is left connected)."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable or refused cluster
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        what = f"connect to {address}" if address else "start a local Ray cluster"
        raise pytest.UsageError(f"--executor ray: cannot {what}: {first}") from None
    return True


def fitting_actors(resources: dict[str, float], wanted: int, gpus: float) -> int:
    """How many of ``wanted`` actors (one CPU and ``gpus`` GPUs each) the cluster's ``resources`` hold at once (at
    least 1). Actors beyond what fits would wait, with their items, for a slot that frees only when the pool ends."""
    fits = int(resources.get("CPU", 0))
    if gpus > 0:
        fits = min(fits, int(resources.get("GPU", 0) / gpus + 1e-9))
    return max(1, min(wanted, fits))


def driver_setup(config: pytest.Config, model: str, run: str = "run") -> ActorSetup:
    """What the actors of ``model`` need from this driver (:class:`~harness.plugin.ray_actor.ActorSetup`) in run
    ``run``."""
    return ActorSetup(model=model, device=config.getoption("device"), dtype=config.getoption("dtype"),
                      model_args=config.getoption("model_args"), rootdir=str(config.rootpath),
                      inifile=str(config.inipath) if config.inipath else None, options=actor_options(config),
                      die_once=os.environ.get(DIE_ONCE_ENV), run=run)


@dataclass
class PoolResult:
    """What one or more pools did: outcomes to re-raise, items done, restarts, entries merged, seconds."""

    outcomes: dict[str, ItemOutcome] | None = None
    items: int = 0
    restarts: int = 0
    entries: int = 0
    seconds: float = 0.0

    def plus(self, other: PoolResult) -> PoolResult:
        return PoolResult({**(self.outcomes or {}), **(other.outcomes or {})}, self.items + other.items,
                          self.restarts + other.restarts, self.entries + other.entries, self.seconds + other.seconds)

    def line(self) -> str:
        """``ray: N work items in S s (R items/s, E store entries/s), K actor restarts``."""
        seconds = max(self.seconds, 1e-9)
        return (f"ray: {self.items} work items in {self.seconds:.1f} s ({self.items / seconds:.3f} items/s, "
                f"{self.entries / seconds:.1f} store entries/s), {self.restarts} actor restarts")


class ActorPool:
    """``count`` actors of one model, fed one work item each at a time; a dead actor is replaced and its item sent
    again (at most :data:`MAX_TRIES` tries); each result's entries are merged into the store at ``root``."""

    def __init__(self, ray: Any, setup: ActorSetup, count: int, gpus: float, root: Path, *, refresh: bool = False):
        self.ray, self.setup, self.count, self.root, self.refresh = ray, setup, count, root, refresh
        self.actor_class = ray.remote(ModelActor).options(num_cpus=1, num_gpus=gpus, max_restarts=0,
                                                         max_task_retries=0)
        self.written: set[str] = set()
        self.load_reported = False

    def run(self, items: dict[str, list[str]]) -> PoolResult:
        """Every item of ``items`` (``{work item: [node ids]}``) through the actors."""
        from ray.exceptions import RayActorError

        started, result = time.perf_counter(), PoolResult(outcomes={})
        meter = progress.ProgressMeter(f"ray {self.setup.model}", len(items), unit="work items")
        queue, tries = deque(items), dict.fromkeys(items, 0)
        idle = [self.actor_class.remote(self.setup) for _ in range(min(self.count, len(items)))]
        running: dict[Any, tuple[Any, str]] = {}
        try:
            while queue or running:
                while queue and idle:
                    actor, item = idle.pop(), queue.popleft()
                    tries[item] += 1
                    running[actor.run_item.remote(item, items[item])] = (actor, item)
                ready, _ = self.ray.wait(list(running), num_returns=1)
                actor, item = running.pop(ready[0])
                try:
                    done = self.ray.get(ready[0])
                except RayActorError as exc:
                    result.restarts += 1
                    idle.append(self.actor_class.remote(self.setup))
                    self._died(item, items[item], tries[item], exc, queue, result)
                    continue
                except Exception as exc:  # noqa: BLE001 - run_item itself raised: reported, not retried
                    idle.append(actor)
                    self._fail(items[item], f"{item}: its Ray actor raised {_first_line(exc)}", result)
                    continue
                idle.append(actor)
                self._absorb(done, items[item], result)
                progress.emit(f"[kvclaims] ray {self.setup.model}: {item} measured in {done['seconds']:.1f} s by "
                              f"{done['where']}, {len(done['entries'])} new store entries")
                meter.advance(1)
        finally:
            self._close(idle + [actor for actor, _ in running.values()])
        result.items, result.seconds = len(items), time.perf_counter() - started
        return result

    def _died(self, item: str, nodeids: list[str], tried: int, exc: Exception, queue: deque[str],
              result: PoolResult) -> None:
        """An actor died during ``item``: send it again, or fail it after :data:`MAX_TRIES` tries."""
        again = tried < MAX_TRIES
        progress.emit(f"[kvclaims] ray {self.setup.model}: an actor died during {item} (try {tried} of {MAX_TRIES}: "
                      f"{_first_line(exc)}); restarted a new actor, {'item sent again' if again else 'item failed'} "
                      f"({result.restarts} actor restarts)")
        if again:
            queue.appendleft(item)
        else:
            self._fail(nodeids, f"{item}: its Ray actor died {MAX_TRIES} times ({_first_line(exc)}); not tried again",
                       result)

    def _fail(self, nodeids: list[str], message: str, result: PoolResult) -> None:
        for nodeid in nodeids:
            result.outcomes[nodeid] = ItemOutcome("setup", "fail", message)  # type: ignore[index]

    def _absorb(self, done: dict[str, Any], nodeids: list[str], result: PoolResult) -> None:
        """Merge an item's entries into the store and keep its claim tests' outcomes."""
        from harness.store.merge import MergeError

        item = done["item"]
        if done.get("load_error") and not self.load_reported:
            self.load_reported = True
            progress.emit(f"[kvclaims] ray {self.setup.model}: an actor could not load the model "
                          f"({done['load_error']}); each item's session loads it again and reports why")
        try:
            result.entries += self._merge(done["entries"])
        except MergeError as exc:
            self._fail(nodeids, f"{item}: its measurements conflict with the run's store: {exc}", result)
            return
        for nodeid in nodeids:
            outcome = actor_outcome(item, nodeid, done)
            if outcome is not None:
                result.outcomes[nodeid] = outcome  # type: ignore[index]

    def _merge(self, entries: dict[str, bytes]) -> int:
        """Write ``entries`` into a staging store and merge it into the run's; under ``refresh`` an entry the
        store held before this run is replaced. The number of entries."""
        from harness.store.merge import merge_stores

        if not entries:
            return 0
        with tempfile.TemporaryDirectory(prefix="kvclaims-ray-staging-") as staging:
            for name, data in entries.items():
                (Path(staging) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(staging) / name).write_bytes(data)
                if self.refresh and name not in self.written:
                    replace_entry(self.root / name, data)
            merge_stores([Path(staging)], self.root)
        self.written.update(entries)
        return len(entries)

    def _close(self, actors: list[Any]) -> None:
        """Remove the actors' temporary stores and end them."""
        with contextlib.suppress(Exception):  # a dead actor has nothing left to remove
            self.ray.get([actor.close.remote() for actor in actors], timeout=60)
        for actor in actors:
            self.ray.kill(actor)


def replace_entry(target: Path, data: bytes) -> None:
    """``--claims-cache refresh``: an entry the run's store held before this run is overwritten by the new one."""
    from filelock import FileLock

    from harness.store.merge import write_atomically

    if target.exists():
        with FileLock(str(target) + ".lock"):
            if target.read_bytes() != data:
                write_atomically(target, data)


def actor_outcome(item: str, nodeid: str, done: dict[str, Any]) -> ItemOutcome | None:
    """What the driver must re-raise for claim test ``nodeid`` after its actor's session: nothing when it measured
    (skipped as shard :data:`~harness.plugin.ray_actor.ACTOR_SHARD`, or passed), else its skip or error."""
    got = done["outcomes"].get(nodeid)
    if got is None:
        tail = [line for line in str(done.get("log_tail", "")).splitlines() if line.strip()]
        return ItemOutcome("setup", "fail", f"{item}: its Ray actor's session (exit {done['exit']}) did not run "
                                            f"{nodeid}: {tail[-1] if tail else 'no output'}")
    outcome, phase, message, non_finite = got
    if outcome == "passed" or (outcome == "skipped" and message.startswith(f"shard {ACTOR_SHARD}:")):
        return None
    phase = phase if phase in ("setup", "call") else "setup"
    if outcome == "skipped":
        return ItemOutcome(phase, "skip", message)
    return ItemOutcome(phase, "non_finite" if non_finite else "fail", message)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
