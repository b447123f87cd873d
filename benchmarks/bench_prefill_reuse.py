"""Speed of prefill reuse across conditions (not a timed test): the same sequence of conditions with the store off and
on, in one process, on the same pairs.

A claims run decodes several conditions over the same prompt pairs; with :mod:`harness.engine.prefill_reuse` the second and
later prefills of the same token rows are served from the store. This script runs ``--conditions`` in order with
``KVCLAIMS_PREFILL_REUSE_MB=0`` (reference) and then with the default budget, each on a fresh in-memory measurement
cache (nothing read back from disk), checks that every continuation's tokens are identical, and prints wall-clock
seconds, generated tokens per second, the on/off speed ratio and the store's hits and misses as JSON.

    python benchmarks/bench_prefill_reuse.py --model smollm2-135m --pairs 32
"""

from __future__ import annotations

import argparse
import json
import os
import time

from harness import transfer as tr
from harness.engine.prefill_reuse import BUDGET_ENV, DEFAULT_CPU_BUDGET_MB, reuse_stats
from harness.models import load_model
from harness.prompts import load_bank, pairing
from harness.registry import BEHAVIOUR_DECODING
from harness.runtime.measurement_store import MeasurementStore

DEFAULT_CONDITIONS = ("natural_recursive", "natural_baseline", "kv_main", "kv_single_late", "control_random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy-llama")
    parser.add_argument("--pairs", type=int, default=32, help="number of prompt pairs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--conditions", nargs="+", default=list(DEFAULT_CONDITIONS), choices=sorted(tr.CATALOGUE))
    args = parser.parse_args()

    lm = load_model(args.model, device="cpu")
    conditions = [tr.CATALOGUE[c] for c in args.conditions]
    roles = sorted({r for c in conditions for r in (c.recipient, c.donor) if r is not None})
    pairs = pairing.select_pairs(lm, load_bank(), args.pairs, roles=roles)

    def run_all(budget_mb: int) -> tuple[list[tr.ConditionRun], float]:
        os.environ[BUDGET_ENV] = str(budget_mb)
        start = time.perf_counter()
        runs = [tr.run_condition(lm, pairs, c, decoding=BEHAVIOUR_DECODING, run_seed=0, progress=False,
                                 store=MeasurementStore(mode="off"), batch_size=args.batch_size) for c in conditions]
        return runs, time.perf_counter() - start

    run_all(0)  # warm-up: kernels, allocator, page cache
    reference, t_off = run_all(0)
    before = reuse_stats(lm.model)
    reused, t_on = run_all(DEFAULT_CPU_BUDGET_MB)
    after = reuse_stats(lm.model)
    tokens = sum(len(s.generated_ids) for run in reused for o in run.outcomes for s in o.samples)
    differing = sum(a.samples[0].generated_ids != b.samples[0].generated_ids
                    for x, y in zip(reference, reused) for a, b in zip(x.outcomes, y.outcomes))
    print(json.dumps({
        "model": lm.name, "pairs": len(pairs), "batch_size": args.batch_size, "conditions": args.conditions,
        "decoding": BEHAVIOUR_DECODING.describe(),
        "reuse_off_s": round(t_off, 2), "reuse_on_s": round(t_on, 2),
        "tokens_per_s_off": round(tokens / t_off, 1), "tokens_per_s_on": round(tokens / t_on, 1),
        "speedup_on_over_off": round(t_off / t_on, 3),
        "prefills_served": after.hits - before.hits, "prefills_computed": after.misses - before.misses,
        "stored_mb": round(after.stored_bytes / 2**20, 1),
        "continuations_with_different_tokens": differing,
    }, indent=2))


if __name__ == "__main__":
    main()
