"""Shard assignment (harness.runtime.shards): stable across processes, one owner per item, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.runtime.shards import Shard, ShardSyntaxError, owner, parse_shard, work_item


def test_the_owner_is_the_sha256_of_the_item_not_pythons_salted_hash() -> None:
    code = "from harness.runtime.shards import owner; print([owner(f'c{i}@m', 7) for i in range(50)])"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([owner(f"c{i}@m", 7) for i in range(50)])
    # a pinned value: sha256("kv_transfer@toy-llama") mod 3
    assert owner(work_item("kv_transfer", "toy-llama"), 3) == 2


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_every_item_has_exactly_one_owner(item: str, count: int) -> None:
    owners = [i for i in range(count) if Shard(i, count).owns(item)]
    assert owners == [owner(item, count)]


def test_items_spread_over_the_shards() -> None:
    counts = [0] * 4
    for i in range(400):
        counts[owner(work_item(f"claim{i}", "m"), 4)] += 1
    assert min(counts) > 60  # about 100 each


@pytest.mark.parametrize("text", ["", "1", "3/3", "-1/3", "a/b", "1/0", "0/-2", "1 / 2 / 3"])
def test_malformed_shards_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(ShardSyntaxError) as info:
        parse_shard(text)
    assert "\n" not in str(info.value) and "--shard" in str(info.value)


def test_a_shard_reads_back_as_written() -> None:
    assert parse_shard(" 2/5 ") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
