"""Work is never lost: a run killed mid-condition keeps every finished batch, and the re-run computes only the rest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from harness.foundation.decoding import DecodingRegime
from harness.models import LoadedModel
from harness.prompts import pairing
from harness.runtime.measurement_store import MeasurementStore
from harness.transfer import KV_MAIN, runner

REPO = Path(__file__).resolve().parents[2]
SHORT = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=4)
N_PAIRS, BATCH, KILL_AT = 8, 2, 3  # the third batch is in flight when the process is killed

KILLED_RUN = textwrap.dedent(f"""
    import os, signal, sys
    from harness.foundation.decoding import DecodingRegime
    from harness.runtime.measurement_store import MeasurementStore
    from harness.models import load_model
    from harness.prompts import load_bank, pairing
    from harness.transfer import KV_MAIN, runner

    lm = load_model("toy-llama", device="cpu")
    pairs = pairing.select_pairs(lm, load_bank(), {N_PAIRS})
    real, calls = runner.generate, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == {KILL_AT}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: what a crash or an OOM kill does
        return real(*args, **kwargs)

    runner.generate = dying
    runner.run_condition(lm, pairs, KV_MAIN, decoding=DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=4),
                         run_seed=0, store=MeasurementStore(__import__("pathlib").Path(sys.argv[1]), "readwrite"),
                         batch_size={BATCH}, progress=False)
""")


def test_a_killed_run_keeps_finished_batches_and_the_rerun_computes_only_the_rest(toy_llama: LoadedModel, bank,
                                                                                   tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "measurements"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(root)], cwd=REPO, capture_output=True, text=True,
                            timeout=600, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    stored = list((root / "transfer_outcome").glob("*.json"))
    assert len(stored) == (KILL_AT - 1) * BATCH  # every pair of the two finished batches, nothing of the third

    pairs = pairing.select_pairs(toy_llama, bank, N_PAIRS)
    generated: list[str] = []
    real = runner.generate

    def counting(lm, requests, **kwargs):
        generated.extend(r.pair_id for r in requests)
        return real(lm, requests, **kwargs)

    monkeypatch.setattr(runner, "generate", counting)
    resumed = runner.run_condition(toy_llama, pairs, KV_MAIN, decoding=SHORT, run_seed=0,
                                   store=MeasurementStore(root, "readwrite"), batch_size=BATCH, progress=False)
    first_done = {p.id for p in pairs[: (KILL_AT - 1) * BATCH]}
    assert set(generated) == {p.id for p in pairs} - first_done  # the batch in flight and the ones never started
    assert len(generated) == N_PAIRS - (KILL_AT - 1) * BATCH

    generated.clear()
    fresh = runner.run_condition(toy_llama, pairs, KV_MAIN, decoding=SHORT, run_seed=0,
                                 store=MeasurementStore(tmp_path / "clean", "readwrite"), batch_size=BATCH,
                                 progress=False)
    assert [o.samples[0].generated_ids for o in resumed.outcomes] == [o.samples[0].generated_ids for o in fresh.outcomes]


def test_an_out_of_memory_batch_is_halved_and_gives_the_same_continuations(toy_llama: LoadedModel, bank,
                                                                            tmp_path: Path, monkeypatch) -> None:
    """A batch of 8 that 'does not fit' (more than 2 rows raise torch.OutOfMemoryError) is halved to 4, then 2; the
    continuations equal those of a run with batches of 2, and the halvings are recorded."""
    import torch

    pairs = pairing.select_pairs(toy_llama, bank, 8)
    reference = runner.run_condition(toy_llama, pairs, KV_MAIN, decoding=SHORT, run_seed=0,
                                     store=MeasurementStore(tmp_path / "a", "readwrite"), batch_size=2, progress=False)
    real = runner.generate

    def small_memory(lm, requests, **kwargs):
        if len(requests) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(lm, requests, **kwargs)

    monkeypatch.setattr(runner, "generate", small_memory)
    monkeypatch.setattr(runner, "BACKOFFS", [])
    halved = runner.run_condition(toy_llama, pairs, KV_MAIN, decoding=SHORT, run_seed=0,
                                  store=MeasurementStore(tmp_path / "b", "readwrite"), batch_size=8, progress=False)
    assert [o.samples[0].generated_ids for o in halved.outcomes] == [o.samples[0].generated_ids for o in reference.outcomes]
    assert runner.BACKOFFS[:3] == [{"model": toy_llama.name, "condition": KV_MAIN.name, "from": 8, "to": 4},
                                   {"model": toy_llama.name, "condition": KV_MAIN.name, "from": 4, "to": 2},
                                   {"model": toy_llama.name, "condition": KV_MAIN.name, "from": 4, "to": 2}]


def test_other_errors_are_not_retried(toy_llama: LoadedModel, bank, tmp_path: Path, monkeypatch) -> None:
    import pytest

    def broken(lm, requests, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(runner, "generate", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        runner.run_condition(toy_llama, pairing.select_pairs(toy_llama, bank, 2), KV_MAIN, decoding=SHORT, run_seed=0,
                             store=MeasurementStore(tmp_path / "c", "readwrite"), batch_size=2, progress=False)


def test_work_units_are_fixed_by_the_option_alone() -> None:
    """``auto`` is one size on every device (a unit's composition is in its keys, so it must not follow free memory)."""
    sampled = DecodingRegime.sampling(samples_per_pair=4, max_new_tokens=4, temperature=1.0)
    assert runner.unit_pairs("auto", SHORT) == runner.AUTO_BATCH_SIZE
    assert runner.unit_pairs("auto", sampled) == runner.AUTO_BATCH_SIZE // 4
    assert runner.unit_pairs(2, sampled) == 1
