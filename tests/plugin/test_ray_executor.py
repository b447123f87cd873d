"""Issue 25 acceptance: ``--executor ray`` on a local Ray cluster gives the claims of a serial run, value for value.

Three claim tests on toy-llama (``--limit 4``; ``kv_transfer_specific`` stores first-step KLs, the measurement whose
last bits once depended on the thread count) run serially once, then through the Ray driver with one actor, two
actors, and one actor killed in the middle of an item (the ``KVCLAIMS_RAY_DIE_ONCE`` hook); each run's claims.json
must hold the serial run's values exactly (``python -m harness.report compare --exact``) and its store the same
entries, byte for byte. The drivers are subprocesses connecting to one local cluster (``ray.init(num_cpus=2)``)
started once for the module. The option errors are one line each, Ray missing among them.
"""

from __future__ import annotations

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
KILLED_ITEM = "kv_transfer@toy-llama"

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "OMP_NUM_THREADS",
                                                            "KVCLAIMS_RAY_DIE_ONCE")}
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


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serial run (local executor, the thread count of the process's policy)."""
    where = tmp_path_factory.mktemp("ray") / "serial"
    _claims_run(where)
    return where


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One local Ray cluster for the module (2 CPUs); its workers import the harness from this checkout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _entries(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.glob("*/*.json"))}


def _assert_same_as_serial(serial: Path, run: Path, finished: subprocess.CompletedProcess[str]) -> None:
    log = finished.stderr
    assert "[kvclaims] ray: 3 work items of 1 models" in log, finished.stdout[-3000:] + log[-3000:]
    measured = [line for line in log.splitlines() if "toy-llama natural_baseline:" in line]
    assert measured and all("(ModelActor" in line for line in measured), measured  # measured in actors, not here
    records_serial, records_run = load_records(serial / "report"), load_records(run / "report")
    assert records_serial.keys() == records_run.keys() and len(records_run) == 3
    assert [(key, path, a, b) for key in records_serial
            for path, a, b in differences(records_serial[key], records_run[key])] == []
    assert compare(serial / "report", run / "report", exact=True) == 0  # python -m harness.report compare --exact
    assert _entries(run / "store") == _entries(serial / "store")


@pytest.mark.xdist_group("ray")
def test_one_actor_gives_the_serial_claims(serial: Path, ray_address: str, tmp_path: Path) -> None:
    finished = _claims_run(tmp_path / "one", "--executor", "ray", "--ray-address", ray_address)
    assert "1 actors per model" in finished.stderr
    _assert_same_as_serial(serial, tmp_path / "one", finished)


@pytest.mark.xdist_group("ray")
def test_two_actors_give_the_serial_claims(serial: Path, ray_address: str, tmp_path: Path) -> None:
    finished = _claims_run(tmp_path / "two", "--executor", "ray", "--ray-address", ray_address, "--ray-actors", "2")
    assert "2 actors per model" in finished.stderr
    _assert_same_as_serial(serial, tmp_path / "two", finished)


@pytest.mark.xdist_group("ray")
def test_an_actor_killed_mid_item_is_replaced_and_the_item_retried(serial: Path, ray_address: str,
                                                                    tmp_path: Path) -> None:
    marker = tmp_path / "died"
    finished = _claims_run(tmp_path / "killed", "--executor", "ray", "--ray-address", ray_address,
                           env=_env(KVCLAIMS_RAY_DIE_ONCE=f"{KILLED_ITEM}:{marker}"))
    assert marker.exists()  # the actor did die in the middle of the item
    assert f"an actor died during {KILLED_ITEM} (try 1 of 3" in finished.stderr
    assert "1 actor restarts" in finished.stderr
    _assert_same_as_serial(serial, tmp_path / "killed", finished)


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
