"""Disruption size (first-step KL of a patch, harness.transfer.disruption) on the tiny random-weight Llama."""

from __future__ import annotations

import numpy as np
import pytest

from harness import transfer as tr
from harness.prompts import pairing
from harness.runtime.measurement_store import MeasurementStore
from harness.transfer.disruption import next_token_kl


@pytest.fixture(scope="module")
def pairs(toy_llama, bank) -> list[pairing.TransferPair]:
    return pairing.select_pairs(toy_llama, bank, 3, roles=(pairing.PairRole.RECURSIVE, pairing.PairRole.BASELINE,
                                                           pairing.PairRole.OTHER_BASELINE))


def test_natural_condition_against_itself_is_zero(toy_llama, pairs):
    kl = tr.first_step_kl(toy_llama, pairs, tr.NATURAL_BASELINE, run_seed=0)
    assert kl.shape == (len(pairs),) and kl.dtype == np.float64
    assert np.all(kl == 0.0)


def test_kl_is_non_negative_and_a_random_patch_moves_the_distribution(toy_llama, pairs):
    main = tr.first_step_kl(toy_llama, pairs, tr.KV_MAIN, run_seed=0)
    random = tr.first_step_kl(toy_llama, pairs, tr.RANDOM_NORM_MATCHED, run_seed=0)
    cross = tr.first_step_kl(toy_llama, pairs, tr.CROSS_BASELINE, run_seed=0)
    for kl in (main, random, cross):
        assert np.all(np.isfinite(kl)) and np.all(kl >= 0.0)
    assert np.all(random > 0.0)


def test_values_are_cached_per_pair_and_read_back(toy_llama, pairs, tmp_path, monkeypatch):
    cache = MeasurementStore(tmp_path / "m", "readwrite")
    first = tr.first_step_kl(toy_llama, pairs, tr.RANDOM_NORM_MATCHED, run_seed=0, store=cache)
    assert len(list((tmp_path / "m").rglob("*.json"))) >= len(pairs)

    def no_model(*args, **kwargs):
        raise AssertionError("a cached value was recomputed")

    monkeypatch.setattr(tr.disruption, "_first_logits", no_model)
    again = tr.first_step_kl(toy_llama, pairs, tr.RANDOM_NORM_MATCHED, run_seed=0, store=cache)
    assert np.array_equal(first, again)


def test_kl_summary_gives_mean_median_and_quartiles_in_nats():
    s = tr.kl_summary([0.0, 1.0, 2.0, 3.0, 4.0])
    assert s == {"mean": 2.0, "median": 2.0, "q25": 1.0, "q75": 3.0, "n": 5, "units": "nats"}
    assert tr.kl_summary([]) == {"n": 0, "units": "nats"}


def test_next_token_kl_has_the_same_bits_on_any_number_of_threads():
    """A serial run and a one-CPU Ray actor must store the same first-step KL (issue 25): torch's sum over one long
    vocabulary row split the row among its threads, and the last bits moved with the thread count."""
    import torch

    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(49_152, generator=generator) * 3
    rows = torch.stack([reference + torch.randn(49_152, generator=generator) * 0.1 for _ in range(3)])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [next_token_kl(reference, row).item() for row in rows], next_token_kl(rows, rows.flip(0))
        torch.set_num_threads(4)
        four = [next_token_kl(reference, row).item() for row in rows], next_token_kl(rows, rows.flip(0))
    finally:
        torch.set_num_threads(threads)
    assert one[0] == four[0] and np.array_equal(one[1], four[1])
    assert all(value > 0 for value in one[0])
