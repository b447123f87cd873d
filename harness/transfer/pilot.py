"""The pilot behind the planned n of the behavioural claims: per-pair SDs measured on the registered score.

A power calculation for a statistic averaged over pairs needs its per-pair SD. The transfer claims' statistics are
ratios of means, T = mean(num) / mean(gap) with num_i = s(patched)_i − s(recipient)_i and gap_i = s(donor)_i −
s(recipient)_i, and differences of two such ratios, D = T(u) − T(v). What the width of their bootstrap CI reflects
is the SD of the influence values

    ψ_i = (num_i − θ · gap_i) / mean(gap)      (T units; for D, num_i = s(u)_i − s(v)_i)

at the true value θ (Var(θ̂) ≈ Var(ψ) / n, the delta method). The pilot evaluates ψ at the value each power plan
assumes (θ of :data:`PILOT_STATISTICS`), over pilot prompts disjoint from the claims' bank and the scorer corpus
(``prompts/pilot/``), decoded and scored exactly as the claims do. It reads a claim run's ``samples.jsonl`` (one row
per continuation with its registered score, written by the report) and writes the committed pilot file that
:mod:`harness.registry.pilot` reads::

    python -m harness.transfer.pilot reports/<pilot-run> --out harness/registry/data/pilot.json

For the α dose-response it is the largest SD of the four adjacent steps (each at θ = 0.25, T rising linearly from
0 to 1); for the donor-level trend the SD over baseline recipients (blocks) of the within-block Spearman ρ(level,
score). The registry takes the larger of the models' SDs, rounded up to two decimals.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

__all__ = ["PILOT_STATISTICS", "PilotStatistic", "influence_sd", "main", "pilot_file", "pilot_sds", "read_samples"]

RECIPIENT, DONOR = "natural_baseline", "natural_recursive"


@dataclass(frozen=True)
class PilotStatistic:
    """What the pilot measures for one registry key: the claim whose records hold the continuations, the
    conditions u and v of num = s(u) − s(v) (v = the natural recipient for a ratio T), the natural recipient and
    donor conditions that define the gap, and θ, the value the power plan assumes (T or D units)."""

    claim: str
    upper: str
    lower: str
    theta: float
    recipient: str = RECIPIENT
    donor: str = DONOR
    words: str = ""


PILOT_STATISTICS: dict[str, PilotStatistic] = {
    "v_patch_null": PilotStatistic("v_patch_null", "v_patch_late", RECIPIENT, 0.0, words="T of the late V patch"),
    "kv_transfer": PilotStatistic("kv_transfer", "kv_main", RECIPIENT, 1.0, words="T of the second-half KV patch"),
    "single_layer_fails": PilotStatistic("single_layer_fails", "kv_single_late", RECIPIENT, 0.0,
                                         words="T of the late-layer KV patch"),
    "control_random_null": PilotStatistic("control_random_null", "control_random", RECIPIENT, 0.0,
                                          words="T of norm-matched random K/V"),
    "control_cross_baseline_null": PilotStatistic("control_cross_baseline_null", "control_cross_baseline",
                                                  RECIPIENT, 0.0, words="T of the cross-baseline donor"),
    "self_ref_token_patch": PilotStatistic("self_ref_token_patch", "kv_self_ref_tokens", RECIPIENT, 0.8,
                                           words="T of the self-referential-position patch"),
    "reverse_patch_necessity": PilotStatistic("reverse_patch_necessity", "reverse", DONOR, 0.9, recipient=DONOR,
                                              donor=RECIPIENT, words="T_rev of the baseline donor into A"),
    "reverse_contrast": PilotStatistic("reverse_patch_necessity", "reverse_recursive_donor", "reverse", 0.6,
                                       recipient=DONOR, donor=RECIPIENT,
                                       words="contrast C = T_rev(B) − T_rev(A') in reverse-gap units"),
    "kv_transfer_specific": PilotStatistic("kv_transfer_specific", "kv_main", "control_cross_baseline", 1.0,
                                           words="T_spec = T(A) − T(cross-baseline C)"),
    "kv_order_ablation": PilotStatistic("kv_order_ablation", "kv_main", "order_ablation", 0.0,
                                        words="D = T(main) − T(order-ablated)"),
    "token_quarter_localisation": PilotStatistic("token_quarter_localisation", "kv_tokens_last_quarter",
                                                 "kv_tokens_first_quarter", 0.3, words="D = T(last) − T(first)"),
    "peak_zone_vs_half": PilotStatistic("peak_zone_vs_half", "kv_main", "kv_peak_zone", 0.4,
                                        words="D = T(second half) − T(peak zone)"),
    "layer_quarter_localisation": PilotStatistic("layer_quarter_localisation", "late", "early", 0.5,
                                                 words="D = T(better late quarter) − T(better early quarter), the "
                                                       "quarters chosen by the pilot's means"),
}
"""The registry keys the pilot measures as influence SDs (T or D units), besides ``alpha_monotone`` (steps) and
``donor_level_transfer_trend`` (per-block ρ)."""

ALPHA_CONDITIONS = (RECIPIENT, "kv_alpha_0.25", "kv_alpha_0.5", "kv_alpha_0.75", "kv_main")
"""The α ladder 0, .25, .5, .75, 1 (α = 0 is the recipient's own cache)."""
ALPHA_STEP = 0.25
"""The step the α plan assumes (T from 0 to 1 linearly)."""

Samples = dict[tuple[str, str, str], dict[str, float]]
"""(claim, model, condition) → {pair id: registered score} (first sample of each pair; the donor-level claim's rows
are keyed by their baseline recipient, the block, since each recipient meets one donor per level)."""


def read_samples(path: Path) -> Samples:
    """The registered scores in a run's ``samples.jsonl``, by (claim, model, condition) and pair."""
    out: Samples = defaultdict(dict)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("sample", 0) != 0 or row.get("score") is None:
                continue
            key = row["recipient"] if row["claim"] == "donor_level_transfer_trend" else row["pair"]
            out[(row["claim"], row["model"], row["condition"])][key] = float(row["score"])
    return out


def influence_sd(upper: np.ndarray, lower: np.ndarray, recipient: np.ndarray, donor: np.ndarray,
                 theta: float) -> float:
    """SD (ddof 1) of ψ_i = ((upper_i − lower_i) − θ · gap_i) / mean(gap), gap_i = donor_i − recipient_i (module
    docstring); NaN with fewer than 3 pairs or a zero mean gap."""
    gap = donor - recipient
    if upper.size < 3 or gap.mean() == 0.0:
        return math.nan
    return float(np.std((upper - lower - theta * gap) / gap.mean(), ddof=1))


def _arrays(samples: Samples, claim: str, model: str, conditions: Iterable[str]) -> dict[str, np.ndarray]:
    names = list(dict.fromkeys(conditions))
    runs = [samples.get((claim, model, c), {}) for c in names]
    pairs = sorted(set.intersection(*(set(r) for r in runs))) if runs else []
    return {c: np.array([r[p] for p in pairs]) for c, r in zip(names, runs)}


def _layer_quarter_conditions(samples: Samples, model: str) -> tuple[str, str]:
    claim = "layer_quarter_localisation"
    means = {q: np.mean(list(samples.get((claim, model, f"kv_layer_quarter_{q}"), {0: math.nan}).values()))
             for q in (1, 2, 3, 4)}
    late = max((3, 4), key=lambda q: means[q] if np.isfinite(means[q]) else -math.inf)
    early = max((1, 2), key=lambda q: means[q] if np.isfinite(means[q]) else -math.inf)
    return f"kv_layer_quarter_{late}", f"kv_layer_quarter_{early}"


def _statistic_sd(samples: Samples, model: str, stat: PilotStatistic) -> dict[str, Any]:
    upper, lower = stat.upper, stat.lower
    if stat.claim == "layer_quarter_localisation":
        upper, lower = _layer_quarter_conditions(samples, model)
    a = _arrays(samples, stat.claim, model, (upper, lower, stat.recipient, stat.donor))
    n = int(a[upper].size)
    sd = influence_sd(a[upper], a[lower], a[stat.recipient], a[stat.donor], stat.theta) if n else math.nan
    gap = float((a[stat.donor] - a[stat.recipient]).mean()) if n else math.nan
    return {"sd": sd, "n": n, "mean_gap": gap, "conditions": [upper, lower]}


def _alpha_sd(samples: Samples, model: str) -> dict[str, Any]:
    a = _arrays(samples, "alpha_monotone", model, (*ALPHA_CONDITIONS, DONOR))
    steps = [influence_sd(a[hi], a[lo], a[RECIPIENT], a[DONOR], ALPHA_STEP)
             for lo, hi in zip(ALPHA_CONDITIONS, ALPHA_CONDITIONS[1:])]
    finite = [s for s in steps if np.isfinite(s)]
    return {"sd": max(finite) if finite else math.nan, "n": int(a[RECIPIENT].size), "step_sds": steps,
            "mean_gap": float((a[DONOR] - a[RECIPIENT]).mean()) if a[RECIPIENT].size else math.nan}


def _donor_level_sd(samples: Samples, model: str) -> dict[str, Any]:
    blocks: dict[str, dict[int, float]] = defaultdict(dict)
    for level in range(1, 6):
        for recipient, score in samples.get(("donor_level_transfer_trend", model, f"donor_L{level}"), {}).items():
            blocks[recipient][level] = score
    rhos = []
    for scores in blocks.values():
        if len(scores) == 5 and np.ptp(list(scores.values())) > 0:
            rhos.append(float(sps.spearmanr(list(scores), list(scores.values())).statistic))
    return {"sd": float(np.std(rhos, ddof=1)) if len(rhos) >= 3 else math.nan, "n": len(rhos),
            "mean_rho": float(np.mean(rhos)) if rhos else math.nan}


def pilot_sds(samples: Samples) -> dict[str, dict[str, Any]]:
    """``{registry key: {"by_model": {model: {"sd", "n", …}}, "sd": the larger SD rounded up to 0.01, "theta",
    "statistic"}}`` for every key the pilot measures, from ``samples`` (:func:`read_samples`)."""
    models = sorted({m for _, m, _ in samples})
    measured: dict[str, tuple[str, float | None, Any]] = {
        key: (stat.words, stat.theta, lambda m, s=stat: _statistic_sd(samples, m, s))
        for key, stat in PILOT_STATISTICS.items()
    }
    measured["alpha_monotone"] = ("largest adjacent-step SD of T(α_k+1) − T(α_k)", ALPHA_STEP,
                                  lambda m: _alpha_sd(samples, m))
    measured["donor_level_transfer_trend"] = ("per-block Spearman ρ(level, score)", None,
                                              lambda m: _donor_level_sd(samples, m))
    out: dict[str, dict[str, Any]] = {}
    for key, (words, theta, measure) in measured.items():
        by_model = {m: measure(m) for m in models}
        finite = [v["sd"] for v in by_model.values() if np.isfinite(v["sd"])]
        out[key] = {"statistic": words, "theta": theta, "by_model": by_model,
                    "sd": math.ceil(max(finite) * 100.0) / 100.0 if finite else None}
    return out


def pilot_file(samples: Samples, *, run: str) -> dict[str, Any]:
    """The committed pilot document: where it comes from, the method in words and :func:`pilot_sds`."""
    return {
        "run": run,
        "prompts": "prompts/pilot (30 recursive L1–L5 + 30 baseline, disjoint from prompts/ and prompts/scorer-corpus)",
        "method": "per-pair SD of influence values ψ_i = ((s(u)_i − s(v)_i) − θ·gap_i) / mean(gap) at the value θ "
                  "the power plan assumes (harness.transfer.pilot); larger of the models, rounded up to 0.01",
        "sds": _json_safe(pilot_sds(samples)),
    }


def _json_safe(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.transfer.pilot RUN_DIR --out FILE``: write the pilot file from a run's samples."""
    parser = argparse.ArgumentParser(prog="python -m harness.transfer.pilot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a claims report directory holding samples.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="the pilot JSON to write")
    parser.add_argument("--run", default=None, help="words naming the run (default: the run id in claims.json)")
    args = parser.parse_args(argv)
    samples_path = args.run_dir / "samples.jsonl"
    if not samples_path.is_file():
        print(f"pilot: {samples_path} does not exist (run the claims with --report-dir first)", file=sys.stderr)
        return 2
    run = args.run
    if run is None:
        claims = args.run_dir / "claims.json"
        run = json.loads(claims.read_text())["run"].get("run_id", str(args.run_dir)) if claims.is_file() else str(args.run_dir)
    doc = pilot_file(read_samples(samples_path), run=run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, entry in doc["sds"].items():
        per = ", ".join(f"{m} {v['sd']:.2f} (n {v['n']})" if v["sd"] is not None else f"{m} – (n {v['n']})"
                        for m, v in entry["by_model"].items())
        print(f"{key:30s} sd {entry['sd']}  [{per}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
