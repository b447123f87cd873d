"""samples.jsonl: every generated continuation of a run, one JSON object per line, kept out of claims.json.

A behavioural record's ``details["samples"]`` is ``{condition: [sample, ...]}`` (built by
:func:`harness.claim.steps.behaviour_details`: pair, recipient, donor, sample index, text, token count, EOS,
empty and degenerate flags, the registered score and every behaviour score field). :func:`split_samples` moves them
into rows ``{"claim", "model", "condition", **sample}`` for samples.jsonl and leaves claims.json small;
:func:`merge_samples` puts them back (a rebuild reads both files), so split ∘ merge is the identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SAMPLES_KEY = "samples"
"""The ``details`` key that holds the per-continuation samples."""


def split_samples(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(records without ``details["samples"]``, samples.jsonl rows in record, condition and sample order).

    The input records are not modified: a record with samples is copied (shallowly, with a new ``details``)."""
    out, rows = [], []
    for rec in records:
        details = rec.get("details") or {}
        samples = details.get(SAMPLES_KEY)
        if samples is None:
            out.append(rec)
            continue
        out.append({**rec, "details": {k: v for k, v in details.items() if k != SAMPLES_KEY}})
        for condition, items in samples.items():
            rows += [{"claim": rec["claim"], "model": rec["model"], "condition": condition, **item} for item in items]
    return out, rows


def merge_samples(records: Sequence[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with their samples.jsonl rows back under ``details["samples"]`` (the inverse of
    :func:`split_samples`); raises ValueError for a row whose (claim, model) has no record."""
    by_key: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        item = {k: v for k, v in row.items() if k not in ("claim", "model", "condition")}
        by_key.setdefault((row["claim"], row["model"]), {}).setdefault(row["condition"], []).append(item)
    out = []
    for rec in records:
        samples = by_key.pop((rec["claim"], rec["model"]), None)
        if samples is None:
            out.append(rec)
        else:
            out.append({**rec, "details": {**(rec.get("details") or {}), SAMPLES_KEY: samples}})
    if by_key:
        raise ValueError(f"samples.jsonl has rows for (claim, model) without a record: {sorted(by_key)[:5]}")
    return out


def write_samples(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """samples.jsonl: one strict-JSON object per line (non-ASCII kept), in the given order."""
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The rows of a samples.jsonl (empty when the file does not exist: runs written before it existed)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
