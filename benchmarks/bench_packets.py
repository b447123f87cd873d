"""Cache-packet speed and size per storage format (not a timed test): write and read latency, bytes per token.

For each model and the first ``--prompts`` baseline prompts of the bank, in one process: prefill all but the last
token (the cache a packet carries), then per storage format time

1. ``write``: :func:`harness.exchange.packets.packet.make_packet` + :func:`write_packet` (encode, hash, file);
2. ``read``: :func:`read_packet` (content-hash check, receiver checks) + :func:`packet_prefill` (a fresh cache);

and, as the in-process yardstick, ``prefill``: recomputing the same cache from the tokens. It prints, as JSON, the
median milliseconds of each, read / prefill (below 1: loading the packet beats recomputing the cache), and bytes per
token of the K/V tensors (int8 scales included) and of the whole file (header and rotary frequencies included).
Threads: run it alone, or with ``OMP_NUM_THREADS=1`` on a shared machine; timings on a loaded machine are noisy.

    python benchmarks/bench_packets.py --model smollm2-135m,gemma3-270m --prompts 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.engine import kvcache
from harness.engine.tokens import encode, pad_id
from harness.exchange.packets.codecs import STORAGE_FORMATS
from harness.exchange.packets.packet import make_packet, packet_prefill, read_packet, write_packet
from harness.models import LoadedModel, load_model
from harness.prompts import load_bank


def _ms(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000.0


def bench_model(lm: LoadedModel, texts: list[str], directory: Path) -> dict[str, Any]:
    """Median write / read / prefill milliseconds and bytes per token per storage format for one model."""
    rows = [encode(lm.tokenizer, t)[:-1] for t in texts]
    prefill = lambda ids: kvcache.prefill(lm.model, [ids], pad_id=pad_id(lm.tokenizer))  # noqa: E731
    prefill(rows[0])  # warm-up
    timings: dict[str, dict[str, list[float]]] = {f: {"write": [], "read": [], "kv": [], "file": []}
                                                  for f in STORAGE_FORMATS}
    prefill_ms = []
    for i, ids in enumerate(rows):
        state, took = _ms(lambda: prefill(ids))
        prefill_ms.append(took)
        for storage in STORAGE_FORMATS:
            path = directory / f"{lm.name}.{i}.{storage}.safetensors"
            (packet, size), write_ms = _ms(lambda: (p := make_packet(lm, state, storage=storage),
                                                    write_packet(p, path)))
            _, read_ms = _ms(lambda: packet_prefill(lm, read_packet(path, lm)))
            for key, value in (("write", write_ms), ("read", read_ms), ("kv", packet.kv_bytes / len(ids)),
                               ("file", size / len(ids))):
                timings[storage][key].append(value)
    median_prefill = statistics.median(prefill_ms)
    return {
        "model": lm.name, "prompts": len(rows), "mean_cached_tokens": statistics.mean(len(r) for r in rows),
        "prefill_ms": round(median_prefill, 2),
        "formats": {f: {"write_ms": round(statistics.median(t["write"]), 2),
                        "read_ms": round(statistics.median(t["read"]), 2),
                        "read_over_prefill": round(statistics.median(t["read"]) / median_prefill, 3),
                        "kv_bytes_per_token": round(statistics.mean(t["kv"]), 1),
                        "file_bytes_per_token": round(statistics.mean(t["file"]), 1)}
                    for f, t in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy-llama", help="comma-separated model names")
    parser.add_argument("--prompts", type=int, default=16, help="baseline prompts per model")
    args = parser.parse_args()
    texts = [p.text for p in load_bank().group("baseline")[: args.prompts]]
    results = []
    with tempfile.TemporaryDirectory(prefix="kvclaims-bench-packets-") as tmp:
        for name in args.model.split(","):
            results.append(bench_model(load_model(name, device="cpu"), texts, Path(tmp)))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
