"""Speed of the behavioural experiment layer (not a timed test): batched vs one-pair-at-a-time, and a cached re-run.

For one model and condition it times, in the same process and on the same pairs:

1. ``naive``: :func:`harness.transfer.run_condition` with ``batch_size=1`` (one prompt pair per forward);
2. ``batched``: the same with ``--batch-size`` (default 32);
3. ``cached``: the batched run again, read back from a fresh on-disk measurement store.

It also times a 1024×1024 fp32 matrix product in the same process (best of 5) as the machine's attainable FLOP
peak, counts the matrix-product FLOPs the batched run executes (a separate, untimed pass with a forward pre-hook
reading every forward's rows × tokens: 2 × rows × tokens × the decoder's linear weights, plus 2 × rows × kept logits
× the LM head; attention's own products, about 2 % at these lengths, are left out, so the count is a lower bound),
and reports the batched run's share of that peak and the tokens per second this workload would reach at 100 % of it.

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

import torch

from harness import transfer as tr
from harness.models import load_model
from harness.prompts import load_bank, pairing
from harness.registry import BEHAVIOUR_DECODING
from harness.runtime.measurement_store import MeasurementStore


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def sgemm_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Best of ``repeats`` timings of one ``size``×``size`` fp32 matrix product, in GFLOP/s (2·size³ per product)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b)[1] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def executed_matmul_gflop(model: torch.nn.Module, fn) -> float:  # type: ignore[no-untyped-def]
    """GFLOP of the linear layers' matrix products in every forward of ``model`` while ``fn()`` runs (see the module
    docstring; attention's products are not counted)."""
    head = model.get_output_embeddings()
    body = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    total = 0.0

    def count(_module, args, kwargs):  # type: ignore[no-untyped-def]
        nonlocal total
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows, tokens = ids.shape
        kept = kwargs.get("logits_to_keep") or tokens
        total += 2.0 * rows * (tokens * body + min(int(kept), tokens) * head.weight.numel())

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        fn()
    finally:
        handle.remove()
    return total / 1e9


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

    def run(batch_size: int, cache: MeasurementStore | None = None) -> tr.ConditionRun:
        return tr.run_condition(lm, pairs, condition, decoding=BEHAVIOUR_DECODING, run_seed=0, store=cache,
                                batch_size=batch_size, progress=False)

    naive, t_naive = _timed(lambda: run(1))
    with tempfile.TemporaryDirectory() as tmp:
        cache = MeasurementStore(Path(tmp), "readwrite")
        batched, t_batched = _timed(lambda: run(args.batch_size, cache))
        _, t_cached = _timed(lambda: run(args.batch_size, cache))
    gflop = executed_matmul_gflop(lm.model, lambda: run(args.batch_size))
    peak = sgemm_gflops()
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
        "sgemm_peak_gflops": round(peak, 1), "batched_matmul_gflop": round(gflop, 1),
        "batched_fraction_of_sgemm_peak": round(gflop / t_batched / peak, 3),
        "tokens_per_s_at_sgemm_peak": round(tokens / (gflop / peak), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
