"""Shards of one run: which machine computes which claim test, by a stable hash.

A run of the suite is a set of *work items*, one per claim test and model (``"<claim id>@<model>"``, e.g.
``"kv_transfer@mistral7b"``). ``--shard i/N`` runs the items whose :func:`owner` is ``i`` (0 ≤ i < N) into its own
measurement store and decides no verdict; the stores are merged (``python -m harness.store merge``) and one reduce
(``--claims-cache read``) decides every claim from the merged store without loading a model.

The owner is the sha256 of the item's name modulo N, never Python's ``hash`` (salted per process): the same item
falls in the same shard on every machine, in every run, under every Python. A claim test is the item, not a single
batch of it, because a claim's later measurements can depend on its earlier ones (a replay teacher-forces the tokens a
condition generated), so a shard that owned only some of a claim's batches could not go on without the others'
results; the batches themselves are fixed work units of the measurement store
(:meth:`harness.runtime.measurement_store.MeasurementStore.get_or_compute_units`), so two shards that compute the
same unit (the natural conditions most behavioural claims share) store the same bytes and the merge keeps one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["SHARD_RECORD_KIND", "Shard", "ShardSyntaxError", "owner", "parse_shard", "work_item"]

SHARD_RECORD_KIND = "shard_record"
"""Measurement-store kind of the record a shard writes when it finishes: its index, count and the items it ran."""


class ShardSyntaxError(ValueError):
    """A ``--shard`` value that is not ``i/N`` with 0 ≤ i < N."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based: a SLURM array ``--array=0-31`` passes ``$SLURM_ARRAY_TASK_ID/32``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, item: str) -> bool:
        """Whether work item ``item`` (:func:`work_item`) is this shard's."""
        return owner(item, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"i/N"`` → :class:`Shard`; raises :class:`ShardSyntaxError` (one line) for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ShardSyntaxError(f"--shard {text!r}: expected i/N, e.g. 0/3 (shards are numbered from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ShardSyntaxError(f"--shard {text!r}: need 0 ≤ i < N (shards are numbered 0 … N−1)")
    return Shard(index, count)


def work_item(claim_id: str, model: str) -> str:
    """The name of one work item: a claim test on one model."""
    return f"{claim_id}@{model}"


def owner(item: str, count: int) -> int:
    """The shard (0 … count−1) that owns work item ``item``: sha256 of its UTF-8 name, as an integer, modulo
    ``count``."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return int(hashlib.sha256(item.encode("utf-8")).hexdigest(), 16) % count
