"""Issue 25 acceptance: ``--executor ray`` on a local Ray cluster gives the claims of a serial run, value for value.

Three claim tests on toy-llama (``--limit 4``; ``kv_transfer_specific`` stores first-step KLs, the measurement whose
last bits once depended on the thread count) run serially once, then through the Ray driver with one actor, two
actors, and one actor killed in the middle of an item (the ``KVCLAIMS_RAY_DIE_ONCE`` hook); each run's claims.json
must hold the serial run's values exactly (``python -m harness.report compare --exact``) and its store the same
entries, byte for byte. The drivers are subprocesses connecting to one local cluster (``ray.init(num_cpus=2)``)
started by the test. The option errors are one line each, Ray missing among them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor's tests need Ray: pip install 'kvclaims[ray]'")

from harness.report.compare import compare, differences, load_records

REPO = Path(__file__).resolve().parents[2]
CLAIM_FILES = ("claims/test_kv_transfer.py", "claims/test_kv_transfer_specific.py", "claims/test_rv_contraction.py")
ITEMS = ("kv_transfer@toy-llama", "kv_transfer_specific@toy-llama", "rv_contraction@toy-llama")
KILLED_ITEM = "rv_contraction@toy-llama"
"""The item whose actor is killed: no other item computes its units (kv_transfer's are a subset of
kv_transfer_specific's, so a kv_transfer lost with its actor would not show in the claims)."""

pytestmark = pytest.mark.slow


NOT_PASSED_ON = ("GITHUB_STEP_SUMMARY", "OMP_NUM_THREADS", "KVCLAIMS_RAY_DIE_ONCE", "PYTEST_XDIST_WORKER",
                 "PYTEST_XDIST_WORKER_COUNT")
"""This test process's environment the runs do not inherit (it may be an xdist worker's: a serial run is a user's)."""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED_ON}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg", **extra)
    return env


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", *(str(REPO / f) for f in CLAIM_FILES), f"--rootdir={REPO}",
                           "-p", "no:cacheprovider", "--model", "toy-llama", *args],
                          cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=600, check=False)


def _claims_run(where: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The three claim tests into store ``where/store``, report ``where/report``."""
    where.mkdir(parents=True)
    finished = _pytest(where, "--limit", "4", "--store", str(where / "store"), "--report-dir", str(where / "report"),
                       *args, env=env)
    assert (where / "report" / "claims.json").is_file(), finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished


@contextlib.contextmanager
def _local_cluster() -> Iterator[str]:
    """One local Ray cluster (2 CPUs) for the three Ray runs; its workers import the harness from this checkout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))
        for name in NOT_PASSED_ON:
            patch.delenv(name, raising=False)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _entries(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.glob("*/*.json"))}


def _unlike_serial(serial: Path, run: Path, finished: subprocess.CompletedProcess[str], *lines: str) -> list[str]:
    """What a Ray run did not do as it should: a progress line missing, a measurement made in the driver, a value of
    claims.json or a store entry that differs from the serial run's."""
    log = finished.stderr
    problems = [] if finished.returncode in (0, 1) else [f"exit {finished.returncode}: {log[-2000:]}"]
    expected = ("[kvclaims] ray: 3 work items of 1 models", *(f"{item} measured in" for item in ITEMS), *lines)
    problems += [f"no line {line!r}" for line in expected if line not in log]
    measured = [line for line in log.splitlines() if "toy-llama natural_baseline:" in line]
    if not measured or not all("(ModelActor" in line for line in measured):  # measured in actors, not the driver
        problems.append(f"natural_baseline not measured in an actor: {measured}")
    records_serial, records_run = load_records(serial / "report"), load_records(run / "report")
    if records_serial.keys() != records_run.keys() or len(records_run) != 3:
        problems.append(f"rows {sorted(records_run)} instead of {sorted(records_serial)}")
    problems += [f"{key} {path}: {a!r} != {b!r}" for key in records_serial.keys() & records_run.keys()
                 for path, a, b in differences(records_serial[key], records_run[key])]
    if compare(serial / "report", run / "report", exact=True) != 0:  # python -m harness.report compare --exact
        problems.append("compare --exact finds differences")
    stored, serial_stored = _entries(run / "store"), _entries(serial / "store")
    problems += [f"store entry {name} differs or is missing" for name in sorted(set(stored) | set(serial_stored))
                 if stored.get(name) != serial_stored.get(name)]
    return problems


def test_one_actor_two_actors_and_a_killed_actor_give_the_serial_claims(tmp_path: Path) -> None:
    """(a) one actor, (b) two actors, (c) one actor killed in the middle of an item, replaced and the item retried:
    each run's claims.json holds the serial run's values and its store the same entries. One test, one cluster:
    pytest-xdist (on pytest 9.2, see harness.runtime.xdist_scheduling) would spread separate tests over its workers,
    each starting its own cluster and serial run."""
    _claims_run(tmp_path / "serial")
    marker = tmp_path / "died"
    with _local_cluster() as address:
        ray_run = ("--executor", "ray", "--ray-address", address)
        one = _claims_run(tmp_path / "one", *ray_run)
        two = _claims_run(tmp_path / "two", *ray_run, "--ray-actors", "2")
        killed = _claims_run(tmp_path / "killed", *ray_run, env=_env(KVCLAIMS_RAY_DIE_ONCE=f"{KILLED_ITEM}:{marker}"))
    assert marker.exists()  # the actor did die in the middle of the item
    problems = {
        "one actor": _unlike_serial(tmp_path / "serial", tmp_path / "one", one, "1 actors per model",
                                    "0 actor restarts"),
        "two actors": _unlike_serial(tmp_path / "serial", tmp_path / "two", two, "2 actors per model"),
        "killed actor": _unlike_serial(tmp_path / "serial", tmp_path / "killed", killed,
                                       f"an actor died during {KILLED_ITEM} (try 1 of 3", "1 actor restarts"),
    }
    assert problems == {"one actor": [], "two actors": [], "killed actor": []}


@pytest.mark.parametrize(("args", "message"), [
    (("-n", "2"), "--executor ray runs the claim tests on Ray actors: drop -n (pytest-xdist workers)"),
    (("--shard", "0/2"), "--executor ray with --shard 0/2: use one or the other"),
    (("--claims-cache", "read"), ("--executor ray: the actors fill the run's store; --claims-cache must be readwrite "
                                  "or refresh, not read")),
    (("--null-twin=passing",), "--executor ray: --null-twin is not supported"),
    (("--executor", "local", "--ray-actors", "2"), "--ray-actors is an option of --executor ray"),
    (("--no-ray",), "--executor ray needs Ray: pip install 'kvclaims[ray]'"),
], ids=["xdist", "shard", "read", "null-twin", "local", "no-ray"])
def test_option_errors_are_one_line(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    env = _env()
    if args == ("--no-ray",):  # Ray not installed: a sitecustomize that makes `import ray` fail
        (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
        env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{REPO}"
        args = ()
    finished = _pytest(tmp_path, "--executor", "ray", *args, env=env)
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert finished.returncode == pytest.ExitCode.USAGE_ERROR, finished.stdout[-2000:] + finished.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {message}"), lines
