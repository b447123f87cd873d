"""The pilot's per-pair SDs (harness.transfer.pilot): influence values of a ratio of means at the plan's value, read
from a run's samples.jsonl, and the committed pilot file the registry reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.registry.pilot import pilot_document, pilot_sd
from harness.stats import bootstrap_ci
from harness.transfer.pilot import PILOT_STATISTICS, influence_sd, main, pilot_sds, read_samples


def test_influence_sd_predicts_the_bootstrap_width_of_a_ratio_of_means() -> None:
    """Var(T̂) ≈ SD(ψ)² / n: the SD the plan uses matches the spread the bootstrap CI of T sees (within 15 %)."""
    rng = np.random.default_rng(0)
    n = 400
    b = rng.uniform(0.0, 0.3, n)
    a = b + 0.2 + rng.normal(0.0, 0.3, n)
    patched = b + 0.2 + rng.normal(0.0, 0.3, n)  # true T = 1
    sd = influence_sd(patched, b, b, a, 1.0)
    ci = bootstrap_ci(lambda p, r, d: float(np.mean(p - r) / np.mean(d - r)), patched, b, a, paired=True,
                      level=0.95, method="percentile", n_resamples=2000, rng=1)
    implied = (ci.high - ci.low) / (2 * 1.96) * np.sqrt(n)
    assert implied == pytest.approx(sd, rel=0.15)
    assert np.isnan(influence_sd(patched[:2], b[:2], b[:2], a[:2], 1.0))


def _write_samples(path: Path) -> None:
    rows = []
    rng = np.random.default_rng(2)
    for model in ("m1", "m2"):
        for i in range(12):
            pair = f"r{i}~b{i}"
            base, rec = float(rng.uniform(0, 0.2)), float(rng.uniform(0.5, 0.9))
            for cond, score in (("natural_baseline", base), ("natural_recursive", rec),
                                ("kv_main", rec - 0.05), ("v_patch_late", base + 0.01)):
                for claim in ("kv_transfer", "v_patch_null"):
                    rows.append({"claim": claim, "model": model, "condition": cond, "pair": pair,
                                 "recipient": f"b{i}", "sample": 0, "score": score})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_pilot_sds_from_samples_and_the_cli(tmp_path: Path) -> None:
    _write_samples(tmp_path / "samples.jsonl")
    sds = pilot_sds(read_samples(tmp_path / "samples.jsonl"))
    assert set(PILOT_STATISTICS) <= set(sds)
    kv = sds["kv_transfer"]
    assert kv["by_model"]["m1"]["n"] == 12 and kv["sd"] >= max(v["sd"] for v in kv["by_model"].values())
    assert sds["kv_order_ablation"]["sd"] is None  # no record: no SD, never a made-up one
    out = tmp_path / "pilot.json"
    assert main([str(tmp_path), "--out", str(out), "--run", "synthetic"]) == 0
    assert json.loads(out.read_text())["sds"]["v_patch_null"]["sd"] == sds["v_patch_null"]["sd"]
    assert main([str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_the_committed_pilot_names_its_prompts_and_gives_every_sd_the_registry_reads() -> None:
    doc = pilot_document()
    assert "prompts/pilot" in doc["prompts"]
    for key in (*PILOT_STATISTICS, "alpha_monotone", "donor_level_transfer_trend"):
        assert pilot_sd(key) > 0, key
