"""Speed of the behavioural experiment layer (not a timed test): batched vs one-pair-at-a-time, and a cached re-run.

For one model and condition it times, in the same process and on the same pairs:

1. ``naive``: :func:`harness.transfer.run_condition` with ``batch_size=1`` (one prompt pair per forward);
2. ``batched``: the same with ``--batch-size`` (default 32);
3. ``cached``: the batched run again, read back from a fresh on-disk measurement cache.

Both timed runs generate and score the same continuations (tokens per second are wall-clock, scoring included) (greedy, so they agree except at numerical near-ties,
which the script counts). It prints generated tokens per second for each, the batched/naive speed-up and the
cached/batched ratio, as JSON. Threads: run it alone, or with ``OMP_NUM_THREADS=1`` on a shared machine.

    python benchmarks/bench_transfer.py --model smollm2-135m --pairs 32 --condition kv_main
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import transfer as tr
from harness.prompts import pairing
from harness.measurement_cache import MeasurementCache
from harness.models import load_model
from harness.prompts import load_bank
from harness.registry import BEHAVIOUR_DECODING


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy-llama")
    parser.add_argument("--pairs", type=int, default=16, help="number of prompt pairs")
    parser.add_argument("--condition", default="kv_main", choices=sorted(tr.CATALOGUE))
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    lm = load_model(args.model, device="cpu")
    condition = tr.CATALOGUE[args.condition]
    roles = [r for r in (condition.recipient, condition.donor) if r is not None]
    pairs = pairing.select_pairs(lm, load_bank(), args.pairs, roles=roles)
    tr.run_condition(lm, pairs[:1], condition, decoding=BEHAVIOUR_DECODING, run_seed=0, progress=False)  # warm-up

    def run(batch_size: int, cache: MeasurementCache | None = None) -> tr.ConditionRun:
        return tr.run_condition(lm, pairs, condition, decoding=BEHAVIOUR_DECODING, run_seed=0, cache=cache,
                                batch_size=batch_size, progress=False)

    naive, t_naive = _timed(lambda: run(1))
    with tempfile.TemporaryDirectory() as tmp:
        cache = MeasurementCache(Path(tmp), "readwrite")
        batched, t_batched = _timed(lambda: run(args.batch_size, cache))
        _, t_cached = _timed(lambda: run(args.batch_size, cache))
    tokens = sum(len(s.generated_ids) for o in batched.outcomes for s in o.samples)
    naive_tokens = sum(len(s.generated_ids) for o in naive.outcomes for s in o.samples)
    differing = sum(a.samples[0].generated_ids != b.samples[0].generated_ids for a, b in zip(naive.outcomes, batched.outcomes))
    print(json.dumps({
        "model": lm.name, "condition": condition.name, "pairs": len(pairs), "batch_size": args.batch_size,
        "decoding": BEHAVIOUR_DECODING.describe(),
        "naive_s": round(t_naive, 2), "batched_s": round(t_batched, 2), "cached_s": round(t_cached, 3),
        "naive_tokens_per_s": round(naive_tokens / t_naive, 1), "batched_tokens_per_s": round(tokens / t_batched, 1),
        "speedup_batched_over_naive": round(t_naive / t_batched, 2), "cached_over_batched": round(t_cached / t_batched, 4),
        "pairs_with_different_tokens_naive_vs_batched": differing,
    }, indent=2))


if __name__ == "__main__":
    main()
