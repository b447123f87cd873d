"""Throughput of ``--executor ray`` with 1 and 2 actors (not a timed test): the same claim tests on the same model,
one local Ray cluster for the whole session, each run a fresh pytest driver with a fresh store.

For each actor count the script runs ``pytest CLAIMS --model M --limit N --executor ray --ray-address <the cluster>
--ray-actors K`` and reads the driver's summary line (``ray: N work items in S s …``: the dispatch, from the first
actor started to the last item merged, actor start and model load included) and its per-item lines (``<item>
measured in S s``: one actor's ``pytest.main`` of the item, resident model, its store filling), and counts the
distinct entries of the run's store. It prints work items per second, distinct store entries per second, the
2-actor / 1-actor ratio of both, the per-item seconds and each run's whole wall time (driver start, dispatch and
the reduce) as JSON. Each actor has one CPU (Ray's ``OMP_NUM_THREADS=1``), so on a 2-core machine the ideal ratio is
2 less the units both actors compute (an actor only reuses what it computed itself) and the per-actor start.

    python benchmarks/ray_actors.py                     # toy-llama, --limit 4, 14 claim tests (the default -k)
    python benchmarks/ray_actors.py --model smollm2-135m --limit 8 -k "kv_transfer or rv_contraction"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"ray: (\d+) work items in ([\d.]+) s")
ITEM = re.compile(r"ray \S+: (\S+) measured in ([\d.]+) s by ")


def one_run(address: str, actors: int, args: argparse.Namespace, where: Path) -> dict[str, object]:
    """One driver with ``actors`` actors per model; its dispatch summary, per-item seconds and store size."""
    command = [sys.executable, "-m", "pytest", str(REPO / "claims"), f"--rootdir={REPO}", "-p", "no:cacheprovider",
               "-q", "--model", args.model, "--limit", str(args.limit), "-k", args.k, "--store", str(where / "store"),
               "--report-dir", str(where / "report"), "--executor", "ray", "--ray-address", address,
               "--ray-actors", str(actors), "--verdicts-exit", "report", "--projector", "cached"]
    where.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    summary = SUMMARY.search(finished.stderr)
    if finished.returncode != 0 or summary is None:
        sys.exit(f"the {actors}-actor run failed (exit {finished.returncode}):\n{finished.stdout[-3000:]}"
                 f"\n{finished.stderr[-3000:]}")
    items, seconds = int(summary.group(1)), float(summary.group(2))
    entries = sum(1 for _ in (where / "store").glob("*/*.json"))
    return {"actors": actors, "work_items": items, "dispatch_s": seconds, "items_per_s": items / seconds,
            "store_entries": entries, "entries_per_s": entries / seconds, "run_wall_s": round(wall, 1),
            "item_s": {name: float(s) for name, s in ITEM.findall(finished.stderr)},
            "load_average_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy-llama")
    parser.add_argument("--limit", type=int, default=4, help="--limit of the claims runs")
    parser.add_argument("-k", default=("kv_transfer or rv_contraction or v_patch_null or alpha_monotone or controls or "
                                       "single_layer or reverse_patch or order_ablation or level_rv_trend or "
                                       "rv_confounds"),
                        help="which claim tests (pytest -k)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local cluster (ray.init(num_cpus=...))")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]  # another process's load on the cores changes the ratio: say what it was
    os.environ["PYTHONPATH"] = str(REPO)  # the cluster's workers import the harness from this checkout
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        with tempfile.TemporaryDirectory(prefix="ray-actors-bench-") as tmp:
            runs = [one_run(address, actors, args, Path(tmp) / f"actors-{actors}") for actors in (1, 2)]
    finally:
        ray.shutdown()
    one, two = runs
    print(json.dumps({
        "model": args.model, "limit": args.limit, "k": args.k, "cluster_cpus": args.cpus, "ray": ray.__version__,
        "load_average_before": load_before, "cores": os.cpu_count(),
        "runs": runs,
        "items_per_s_ratio_2_over_1": two["items_per_s"] / one["items_per_s"],
        "entries_per_s_ratio_2_over_1": two["entries_per_s"] / one["entries_per_s"],
    }, indent=2))


if __name__ == "__main__":
    main()
