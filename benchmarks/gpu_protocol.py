"""The GPU replication check as one command: decode speed on the eager and fast paths, then the claim set.

    python -m benchmarks.gpu_protocol [--model NAME] [--quick] [--out DIR]

Default model: ``random-mistral7b`` (Mistral-7B's exact shape, random weights, bf16, built on the GPU: no download)
on CUDA, ``toy-llama`` elsewhere. Two parts, each on every decode path (:mod:`harness.engine.decode_path`):

1. **Decode benchmark** (in this process): ``batch`` length-varied bank pairs, KV-patched over the model's patch
   layers, greedy, EOS ignored. Per path: warm-up runs (compilation included, reported as ``warmup_s``), then
   ``wall(T)`` and ``wall(1)``; one decode step takes ``(wall(T) − wall(1)) / (T − 1)`` (the prefill cancels),
   decode throughput is ``batch / step``. The HBM roofline of a step is reading every weight once:
   ``weight bytes ÷ step time ÷ bandwidth``, against the device's nominal bandwidth (table below, or
   ``--bandwidth-gbs``) and against a measured device-to-device copy. The fast path's ratio to eager is the speed-up.
2. **Claims** (one pytest process per path): ``pytest claims/ --model M --decode-path P --claims-cache off
   --verdicts-exit report`` (with ``--limit`` under ``--quick``); wall time per claim from pytest's JUnit XML, the
   verdict of each from the report's ``claims.json``.

Writes ``DIR/protocol.json`` (everything) and ``DIR/protocol.md`` (two tables), plus each path's report under
``DIR/claims-<path>/``. Budgets on one H100: the full protocol 8 minutes, ``--quick`` 3 minutes (fewer pairs, fewer
tokens, the claims on the fast path only). The random-weight model's verdicts say nothing about Mistral: this is a
measurement of the pipeline and its speed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_generation import requests_from_bank
from harness.engine.generation import GenerationRequest, generate
from harness.engine.patch_specs import KVPatchSpec
from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel, load_model

PATHS = ("eager", "fast")

NOMINAL_BANDWIDTH_GBS: tuple[tuple[str, float], ...] = (
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
)
"""Vendor-stated HBM bandwidth (GB/s) by a substring of ``torch.cuda.get_device_name()``; the first match wins."""


@dataclass(frozen=True)
class Settings:
    """What one protocol run measures: batch rows, new tokens per row, pairs per claim (None: the bank's), the
    decode paths whose claims run and the pytest ``-k`` filter of the claims (None: all)."""

    batch: int
    tokens: int
    claim_limit: int | None
    claim_paths: tuple[str, ...]
    claims_filter: str | None


FULL = Settings(batch=32, tokens=64, claim_limit=None, claim_paths=PATHS, claims_filter=None)
QUICK = Settings(batch=16, tokens=32, claim_limit=8, claim_paths=("fast",), claims_filter=None)


def nominal_bandwidth_gbs(device: torch.device) -> float | None:
    """The vendor's HBM bandwidth of ``device`` in GB/s (:data:`NOMINAL_BANDWIDTH_GBS`), None off CUDA or unknown."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((gbs for key, gbs in NOMINAL_BANDWIDTH_GBS if key in name), None)


def measured_bandwidth_gbs(device: torch.device, megabytes: int = 1024, repeats: int = 5) -> float:
    """Copy bandwidth in GB/s (bytes read + bytes written per second, best of ``repeats``) of a ``megabytes`` buffer
    on ``device``: the memory speed a decode step can actually reach."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        target.copy_(source)
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() / best / 1e9


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def weight_bytes(lm: LoadedModel) -> int:
    """Bytes of the model's parameters: what one decode step must read at least once."""
    return sum(p.numel() * p.element_size() for p in lm.model.parameters())


def _timed_generate(lm: LoadedModel, requests: list[GenerationRequest], tokens: int, patch: KVPatchSpec) -> tuple[float, list]:
    decoding = DecodingRegime(max_new_tokens=tokens, stop_at_eos=False)
    _synchronize(lm.input_device)
    start = time.perf_counter()
    records = generate(lm, requests, decoding=decoding, patch=patch, batch_size=len(requests))
    _synchronize(lm.input_device)
    return time.perf_counter() - start, records


def decode_benchmark(lm: LoadedModel, settings: Settings, bandwidth: dict[str, float | None]) -> dict[str, Any]:
    """Step time, throughput and roofline fraction of batched KV-patched decoding on each path (module docstring)."""
    base = requests_from_bank(lm, settings.batch)
    requests = (base * (-(-settings.batch // len(base))))[: settings.batch]
    requests = [GenerationRequest(f"{r.pair_id}#{i}", r.recipient_ids, r.donor_ids) for i, r in enumerate(requests)]
    patch = KVPatchSpec(lm.layers.patch_layers)
    weights = weight_bytes(lm)
    out: dict[str, Any] = {"batch": len(requests), "new_tokens": settings.tokens, "weight_bytes": weights,
                           "patch_layers": list(lm.layers.patch_layers), "paths": {}}
    tokens_by_path = {}
    for path in PATHS:
        model = lm.with_decode_path(path)
        start = time.perf_counter()
        for length in (settings.tokens, 1):  # warm-up: compile both shapes the timing uses
            _timed_generate(model, requests, length, patch)
        warmup = time.perf_counter() - start
        wall_full, records = _timed_generate(model, requests, settings.tokens, patch)
        wall_one, _ = _timed_generate(model, requests, 1, patch)
        step = max((wall_full - wall_one) / (settings.tokens - 1), 1e-9)
        tokens_by_path[path] = [r.generated_ids for r in records]
        out["paths"][path] = {
            "plan": records[0].decode_plan,
            "warmup_s": round(warmup, 3),
            "wall_s": round(wall_full, 4),
            "prefill_and_first_step_s": round(wall_one, 4),
            "ms_per_step": round(step * 1e3, 3),
            "decode_tokens_per_s": round(len(requests) / step, 1),
            "roofline_fraction_nominal": _fraction(weights, step, bandwidth["nominal_gbs"]),
            "roofline_fraction_measured": _fraction(weights, step, bandwidth["measured_gbs"]),
        }
    eager, fast = out["paths"]["eager"], out["paths"]["fast"]
    out["fast_over_eager_speedup"] = round(eager["ms_per_step"] / fast["ms_per_step"], 3)
    out["identical_continuations"] = sum(a == b for a, b in zip(tokens_by_path["eager"], tokens_by_path["fast"]))
    return out


def _fraction(weights: int, step_s: float, gbs: float | None) -> float | None:
    return None if gbs is None else round(weights / step_s / (gbs * 1e9), 4)


def run_claims(model: str, path: str, settings: Settings, out: Path, device: str) -> dict[str, Any]:
    """The claim set on one decode path in its own pytest process; wall time, per-claim times and verdicts."""
    report = out / f"claims-{path}"
    junit = report / "junit.xml"
    command = [sys.executable, "-m", "pytest", "claims/", f"--model={model}", f"--decode-path={path}",
               f"--device={device}", "--claims-cache=off", "--verdicts-exit=report", f"--report-dir={report}",
               f"--junitxml={junit}", "-p", "no:cacheprovider", "-q"]
    if settings.claim_limit is not None:
        command.append(f"--limit={settings.claim_limit}")
    if settings.claims_filter:
        command += ["-k", settings.claims_filter]
    start = time.perf_counter()
    finished = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (report / "pytest.log").parent.mkdir(parents=True, exist_ok=True)
    (report / "pytest.log").write_text(finished.stdout + finished.stderr)
    return {"command": " ".join(command), "exit_status": finished.returncode, "wall_s": round(wall, 2),
            "claims": _claim_rows(junit, report / "claims.json")}


def _claim_rows(junit: Path, claims_json: Path) -> list[dict[str, Any]]:
    """One row per test: name, seconds (JUnit), claim id and verdict (the report's records)."""
    verdicts = {}
    if claims_json.is_file():
        for record in json.loads(claims_json.read_text())["records"]:
            verdicts[record.get("test", "").split("::")[-1]] = (record["claim"], record["verdict"])
    rows = []
    if junit.is_file():
        for case in ElementTree.parse(junit).iter("testcase"):
            claim, verdict = verdicts.get(case.get("name", ""), (None, None))
            rows.append({"test": case.get("name"), "seconds": round(float(case.get("time", 0.0)), 3),
                         "claim": claim, "verdict": verdict})
    return rows


def markdown(result: dict[str, Any]) -> str:
    """The two tables of ``protocol.md``: decode speed per path, then wall time per claim per path."""
    from tabulate import tabulate

    bench = result["decode"]
    rows = [[path, v["plan"]["attention"], v["plan"]["static_cache"], v["plan"]["compiled"], v["ms_per_step"],
             v["decode_tokens_per_s"], v["roofline_fraction_nominal"], v["roofline_fraction_measured"]]
            for path, v in bench["paths"].items()]
    lines = [f"# GPU protocol: {result['model']} on {result['device_name']}", "",
             f"Batched KV-patched greedy decode, {bench['batch']} rows × {bench['new_tokens']} tokens, weights "
             f"{bench['weight_bytes'] / 1e9:.2f} GB; bandwidth nominal {result['bandwidth']['nominal_gbs']} GB/s, "
             f"measured copy {result['bandwidth']['measured_gbs']:.0f} GB/s. Fast over eager: "
             f"**{bench['fast_over_eager_speedup']}×**; identical continuations {bench['identical_continuations']}/"
             f"{bench['batch']}.", "",
             tabulate(rows, headers=["path", "attention", "static cache", "compiled", "ms / step", "tokens / s",
                                     "roofline (nominal)", "roofline (measured)"], tablefmt="github"), ""]
    claims = result["claims"]
    if claims:
        names = sorted({row["test"] for run in claims.values() for row in run["claims"]})
        per = {path: {row["test"]: row for row in run["claims"]} for path, run in claims.items()}
        table = [[name] + [f"{per[p][name]['seconds']:.1f} ({per[p][name]['verdict']})" if name in per[p] else "—"
                           for p in claims] for name in names]
        table.append(["**all (wall)**"] + [f"**{claims[p]['wall_s']:.0f}**" for p in claims])
        lines += ["## Claims: seconds (verdict) per path", "",
                  tabulate(table, headers=["test"] + list(claims), tablefmt="github"), ""]
    lines.append(f"Total protocol wall time: {result['wall_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registry name (default random-mistral7b on CUDA, toy-llama "
                                                      "elsewhere)")
    parser.add_argument("--quick", action="store_true", help="the 3-minute protocol (see module docstring)")
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-protocol"), help="output folder")
    parser.add_argument("--bandwidth-gbs", type=float, default=None, help="the device's HBM bandwidth (GB/s) when "
                                                                          "the built-in table does not know it")
    parser.add_argument("--limit", type=int, default=None, help="pairs per claim (overrides the mode's)")
    parser.add_argument("--batch", type=int, default=None, help="decode benchmark rows (overrides the mode's)")
    parser.add_argument("--tokens", type=int, default=None, help="decode benchmark new tokens, >= 2 (overrides the "
                                                                 "mode's)")
    parser.add_argument("-k", dest="claims_filter", default=None, help="pytest -k filter of the claims")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model_name = args.model or ("random-mistral7b" if cuda else "toy-llama")
    base = QUICK if args.quick else FULL
    settings = Settings(args.batch or base.batch, args.tokens or base.tokens,
                        args.limit if args.limit is not None else base.claim_limit, base.claim_paths, args.claims_filter)
    if settings.tokens < 2 or settings.batch < 1:
        parser.error("--tokens must be >= 2 (the step time is a difference of two runs) and --batch >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    bandwidth = {"nominal_gbs": args.bandwidth_gbs or nominal_bandwidth_gbs(device),
                 "measured_gbs": round(measured_bandwidth_gbs(device, 1024 if cuda else 256), 1)}
    print(f"[protocol] {model_name} on {device}: bandwidth {bandwidth}", flush=True)
    lm = load_model(model_name, device=device.type)
    decode = decode_benchmark(lm, settings, bandwidth)
    print(f"[protocol] decode: {json.dumps(decode['paths'])}", flush=True)
    del lm
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    claims = {}
    for path in settings.claim_paths:
        claims[path] = run_claims(model_name, path, settings, args.out, device.type)
        print(f"[protocol] claims on the {path} path: {claims[path]['wall_s']} s, exit {claims[path]['exit_status']}",
              flush=True)
    result = {"model": model_name, "device_name": torch.cuda.get_device_name(device) if cuda else "CPU",
              "mode": "quick" if args.quick else "full", "settings": settings.__dict__, "bandwidth": bandwidth,
              "torch": torch.__version__, "decode": decode, "claims": claims,
              "wall_s": round(time.perf_counter() - started, 1), "cpu_threads": torch.get_num_threads(),
              "pid": os.getpid()}
    (args.out / "protocol.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "protocol.md").write_text(markdown(result))
    print(f"[protocol] wrote {args.out / 'protocol.json'} and protocol.md in {result['wall_s']} s", flush=True)
    return 0 if all(run["exit_status"] == 0 for run in claims.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
