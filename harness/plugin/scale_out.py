"""The plugin's part of scale-out (docs/SCALE_OUT.md): ``--shard i/N``, ``--store DIR``, the models' manifests and
the weightless reduce.

- ``--store DIR``: the measurement store's root (default ``<cache root>/measurements``); a shard writes its own,
  ``python -m harness.store merge`` joins them.
- ``--shard i/N``: only the claim tests this shard owns (:mod:`harness.runtime.shards`) are collected; each measures
  into the store and is skipped instead of decided; at the end the shard writes its record (kind
  :data:`~harness.runtime.shards.SHARD_RECORD_KIND`) so the reduce knows how many shards there were.
- ``--claims-cache read`` on a store holding a model's manifest is a reduce: the model is a skeleton
  (:func:`harness.models.manifest.skeleton_model`, no weights read) and its claims read through a store that cannot
  compute; an absent entry fails its claim test in one line naming the entry and the shard that owed it.
- ``--executor ray`` (:mod:`harness.plugin.ray_executor`) is the same reduce in the driver once its Ray actors have
  measured every claim test into the run's store: the driver loads no model and reads every manifest from the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.runtime.measurement_store import MeasurementStore, MissingMeasurementError
from harness.runtime.shards import SHARD_RECORD_KIND, Shard, ShardSyntaxError, owner, parse_shard, work_item

__all__ = ["SHARD_KEY", "claim_work_item", "manifest_for", "runs_on_ray", "shard_of", "store_for", "store_root"]

SHARD_KEY = pytest.StashKey[Shard | None]()
"""The run's ``--shard`` (None in a whole run), set in ``pytest_configure``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvclaims")
    group.addoption("--shard", default=None, metavar="i/N",
                    help="measure only shard i of N (0-based; sha256 of each claim test and model) into the store, "
                         "deciding no verdict; merge the shards' stores and reduce with --claims-cache read")
    group.addoption("--store", default=None, metavar="DIR",
                    help="the measurement store's folder (default <KVCLAIMS_CACHE>/measurements)")


def pytest_configure(config: pytest.Config) -> None:
    text = config.getoption("shard", default=None)
    shard = None
    if text is not None:
        try:
            shard = parse_shard(text)
        except ShardSyntaxError as exc:
            raise pytest.UsageError(str(exc)) from None
        if config.getoption("claims_cache") not in ("readwrite", "refresh"):
            raise pytest.UsageError(f"--shard {text}: a shard writes its store; --claims-cache must be readwrite or "
                                    f"refresh, not {config.getoption('claims_cache')}")
        if config.getoption("null_twin", default=None) is not None:
            raise pytest.UsageError(f"--shard {text}: --null-twin is not supported in sharded runs (the reduce has no "
                                    "weights to build the random-weight twin from)")
    config.stash[SHARD_KEY] = shard


_MANIFESTS_KEY = pytest.StashKey[dict[str, Any]]()
"""Manifests :func:`manifest_for` has read in this process, by their key parts."""


def shard_of(config: pytest.Config) -> Shard | None:
    """The run's ``--shard``, or None."""
    return config.stash.get(SHARD_KEY, None)


def store_root(config: pytest.Config) -> Path | None:
    """``--store`` as a path, or None for the default root."""
    value = config.getoption("store", default=None)
    return Path(value).expanduser().resolve() if value else None


def store_for(config: pytest.Config) -> MeasurementStore:
    """The run's measurement store (``--store`` root, ``--claims-cache`` mode)."""
    return MeasurementStore(store_root(config), config.getoption("claims_cache"))


def runs_on_ray(config: pytest.Config) -> bool:
    """Whether the run's claim tests are measured by Ray actors (``--executor ray``) and this process only reduces."""
    return config.getoption("executor", default="local") == "ray"


def manifest_for(config: pytest.Config, name: str, model_args: Any) -> dict[str, Any] | None:
    """The manifest of model ``name`` in the run's store under the run's load options, when the run is a reduce
    (``--claims-cache read``, or the driver of ``--executor ray``) and the store holds one; None otherwise."""
    from harness.models.manifest import MANIFEST_KIND, manifest_parts
    from harness.runtime.measurement_store import ABSENT

    if config.getoption("claims_cache") != "read" and not runs_on_ray(config):
        return None
    parts = manifest_parts(name, device=config.getoption("device"), dtype=config.getoption("dtype"),
                           model_args=model_args, decode_path=config.getoption("decode_path"))
    read = config.stash.setdefault(_MANIFESTS_KEY, {})  # a manifest is MBs: read and checked once per process
    key = repr(sorted(parts.items()))
    if key not in read:
        found = MeasurementStore(store_root(config), "read").lookup(MANIFEST_KIND, parts)
        read[key] = None if found is ABSENT else found
    return read[key]


def claim_work_item(item: pytest.Item) -> str | None:
    """The work item (``<claim id>@<model>``) of a claim test, or None for another test."""
    marker = item.get_closest_marker("claim")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "lm" not in callspec.params:
        return None
    claim_id = marker.args[0] if marker.args else marker.kwargs.get("id")
    return work_item(str(claim_id), str(callspec.params["lm"]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--shard``: keep only the claim tests this shard owns (the others are deselected)."""
    shard = shard_of(config)
    if shard is None:
        return
    kept, dropped = [], []
    for item in items:
        name = claim_work_item(item)
        (kept if name is not None and shard.owns(name) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A shard that was not interrupted records itself in its store (the reduce counts the shards from these)."""
    config = session.config
    shard = shard_of(config)
    if shard is None or getattr(config, "workerinput", None) is not None:
        return
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return
    store_for(config).put(SHARD_RECORD_KIND, {"shard": str(shard)}, {"index": shard.index, "count": shard.count})
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:  # a shard that owns no claim test has done its share
        session.exitstatus = pytest.ExitCode.OK


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A shard's last line: how many claim tests it measured, where, and what comes next."""
    shard = shard_of(config)
    if shard is None:
        return
    measured = len(terminalreporter.stats.get("skipped", []))
    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    root = store_for(config).root
    terminalreporter.write_line(
        f"shard {shard}: {measured} claim test(s) measured into {root}"
        + (f", {failed} failed (their measurements are incomplete: run this shard again)" if failed else "")
        + "; merge the shards' stores (python -m harness.store merge) and reduce (--claims-cache read)")


def shard_counts(root: Path | None) -> dict[int, set[int]]:
    """``{N: {indices of the shards of N that recorded themselves}}`` in the store at ``root``."""
    folder = (root if root is not None else MeasurementStore().root) / SHARD_RECORD_KIND
    counts: dict[int, set[int]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            value = json.loads(path.read_text())["value"]
            counts.setdefault(int(value["count"]), set()).add(int(value["index"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return counts


def missing_line(error: MissingMeasurementError, item: str | None, root: Path | None) -> str:
    """One line for a claim test of a reduce that found an entry absent: the entry, and the shard that owed it."""
    counts = shard_counts(root)
    if item is None:
        return f"{error}"
    if not counts:
        return f"{error}; no shard recorded itself in this store: compute {item} with --claims-cache readwrite"
    lines = []
    for count, recorded in sorted(counts.items()):
        owed = owner(item, count)
        state = "finished" if owed in recorded else "has not recorded itself: did it finish?"
        lines.append(f"owed by shard {owed}/{count} ({state})")
    return f"{error}; claim test {item} was {' or '.join(lines)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """An entry a reduce lacks: one line naming it and the shard that owed it, no traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(MissingMeasurementError):
        report.longrepr = missing_line(call.excinfo.value, claim_work_item(item), store_root(item.config))
    return report
