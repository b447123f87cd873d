"""How CPU decoding degrades on a loaded machine, per thread policy (not a timed test).

The work: ``--steps`` decode steps of a SmolLM2-135M-shaped stack at batch 16 (``--layers`` layers of its
q/k/v/o and MLP projections plus its 49152-row LM head, random fp32 weights, the skinny matrix products that
dominate batched decoding). Each policy runs that work in a fresh child process (OpenMP settings only take
effect before torch starts) twice: on the machine as it is ("idle"), and while ``--busy`` background processes
spin on the CPU ("loaded"). It prints, per policy, the median wall seconds of ``--repeats`` runs of each and the
ratio loaded/idle (1.0 = no degradation), as JSON. Policies:

- ``default``: torch's own choice (one OpenMP thread per core, libgomp's spinning wait);
- ``passive``: the same threads with ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning);
- ``idle-cores``: threads from :func:`harness.runtime.cpu_threads.thread_count` with the cores measured idle at start.

"idle" is only as idle as the machine is: on a shared machine run it under the suite's heavy-job lock and
read the ratios, not the seconds.

    python benchmarks/bench_loaded_cpu.py --busy 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

POLICIES = ("default", "passive", "idle-cores")
HIDDEN, INTERMEDIATE, KV_WIDTH, VOCAB, BATCH = 576, 1536, 192, 49152, 16


def _child(policy: str, layers: int, steps: int) -> None:
    """Run the work once under ``policy`` and print one JSON line: wall seconds and threads used."""
    import torch

    if policy == "idle-cores":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from harness.runtime.cpu_threads import idle_cores, thread_count

        torch.set_num_threads(thread_count(os.cpu_count() or 1, 1, idle_cores()))
    gen = torch.Generator().manual_seed(0)
    shapes = [(HIDDEN, HIDDEN), (KV_WIDTH, HIDDEN), (KV_WIDTH, HIDDEN), (HIDDEN, HIDDEN),
              (INTERMEDIATE, HIDDEN), (INTERMEDIATE, HIDDEN), (HIDDEN, INTERMEDIATE)]
    weights = [[torch.randn(s, generator=gen) * 0.02 for s in shapes] for _ in range(layers)]
    head = torch.randn((VOCAB, HIDDEN), generator=gen) * 0.02
    x = torch.randn((BATCH, HIDDEN), generator=gen)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(steps):
            h = x
            for q, k, v, o, gate, up, down in weights:
                attn = torch.nn.functional.linear(h, q) + torch.nn.functional.linear(h, k).repeat(1, 3) \
                    + torch.nn.functional.linear(h, v).repeat(1, 3)
                h = h + torch.nn.functional.linear(attn, o)
                act = torch.nn.functional.silu(torch.nn.functional.linear(h, gate)) * torch.nn.functional.linear(h, up)
                h = torch.nn.functional.rms_norm(h + torch.nn.functional.linear(act, down), (HIDDEN,))
            torch.nn.functional.linear(h, head).argmax(dim=-1)
    print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))


def _run_child(policy: str, layers: int, steps: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, __file__, "--child", policy, "--layers", str(layers), "--steps", str(steps)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])



def _start_busy(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=2, help="background processes spinning during the loaded runs")
    parser.add_argument("--layers", type=int, default=8, help="SmolLM2-shaped layers in the work")
    parser.add_argument("--steps", type=int, default=20, help="decode steps in the work")
    parser.add_argument("--repeats", type=int, default=3, help="runs per policy and load (median reported)")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ", ".join(POLICIES))
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.layers, args.steps)
        return
    if args.busy < 1 or args.layers < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--busy, --layers, --steps and --repeats must be >= 1")
    policies = [p for p in args.policies.split(",") if p]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {list(POLICIES)}")
    results: dict[str, dict[str, float]] = {}
    for policy in policies:
        idle = [_run_child(policy, args.layers, args.steps) for _ in range(args.repeats)]
        busy = _start_busy(args.busy)
        try:
            time.sleep(1.0)  # let the spinners take their cores before the child samples the idle ones
            loaded = [_run_child(policy, args.layers, args.steps) for _ in range(args.repeats)]
        finally:
            _stop(busy)
        idle_s = statistics.median(r["seconds"] for r in idle)
        loaded_s = statistics.median(r["seconds"] for r in loaded)
        results[policy] = {
            "idle_s": round(idle_s, 3), "loaded_s": round(loaded_s, 3), "loaded_over_idle": round(loaded_s / idle_s, 2),
            "threads_idle": idle[0]["threads"], "threads_loaded": loaded[0]["threads"],
        }
    print(json.dumps({"cores": os.cpu_count(), "busy_processes": args.busy, "layers": args.layers, "steps": args.steps,
                      "repeats": args.repeats, "policies": results}, indent=2))


if __name__ == "__main__":
    main()
