"""Batched vs one-prompt-at-a-time generation, in the same process (DESIGN §8).

Runs the same greedy requests (unpatched, and with a KV patch over the model's patch layers) through
``harness.engine.generation.generate`` once with ``batch_size=1`` (the naive loop) and once batched, checks
that the tokens agree, and prints wall-clock seconds and the speed-up ratio naive / batched.

    python -m benchmarks.bench_generation --model smollm2-135m --prompts 16 --tokens 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from harness.engine.generation import GenerationRequest, generate
from harness.engine.patch_specs import KVPatchSpec
from harness.engine.tokens import encode
from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel, load_model
from harness.prompts import load_bank


def requests_from_bank(lm: LoadedModel, n: int) -> list[GenerationRequest]:
    """Up to n length-matched (baseline recipient, recursive donor) requests, both cut to their common length."""
    bank = load_bank()
    out = []
    for base, rec in zip(bank.group("baseline"), bank.group("recursive")):
        a, b = encode(lm.tokenizer, base.text), encode(lm.tokenizer, rec.text)
        k = min(len(a), len(b))
        out.append(GenerationRequest(base.id, a[:k], b[:k]))
    return out[:n]


def timed(fn: Callable[[], list]) -> tuple[float, list]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    lm = load_model(args.model)
    requests = requests_from_bank(lm, args.prompts)
    decoding = DecodingRegime.greedy(args.tokens)
    generate(lm, requests[:1], decoding=DecodingRegime.greedy(2))  # warm-up
    print(f"model={args.model} prompts={len(requests)} new_tokens={args.tokens} batch_size={args.batch_size}")
    for label, patch in (("natural", None), ("kv_patch", KVPatchSpec(lm.layers.patch_layers))):
        naive_s, naive = timed(lambda: generate(lm, requests, decoding=decoding, patch=patch, batch_size=1))
        batched_s, batched = timed(lambda: generate(lm, requests, decoding=decoding, patch=patch, batch_size=args.batch_size))
        same = sum(a.generated_ids == b.generated_ids for a, b in zip(naive, batched))
        print(
            f"{label:9s} naive {naive_s:7.2f} s  batched {batched_s:7.2f} s  "
            f"ratio naive/batched {naive_s / batched_s:5.2f}x  identical continuations {same}/{len(requests)}"
        )


if __name__ == "__main__":
    main()
