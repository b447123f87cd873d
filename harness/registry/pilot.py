"""The pilot behind the planned n of the behavioural claims: per-pair SDs read from the committed pilot file.

A power calculation for a statistic averaged over pairs needs its per-pair SD. The pilot (issue 23) measured them
on the registered behaviour score, over pilot prompts disjoint from the claims' bank and the scorer corpus
(``prompts/pilot/``), decoded and scored exactly as the claims do, as the SD of each statistic's influence values at
the value its power plan assumes (:mod:`harness.transfer.pilot`, which wrote ``harness/registry/data/pilot.json``).
The registry takes the larger of the two embedded models' SDs. Where the shipped bank cannot supply the n a plan
needs, the claim is marked underpowered on this bank (:mod:`harness.registry.reachability`) and its verdict is
INCONCLUSIVE with the n it needs, apart from INCONCLUSIVE by data.

Earlier pilots (registry versions before issue 23) used the previous behaviour score on the bank itself, with SDs
read from CI widths; their values are in the version history, not here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["PILOT_FILE", "pilot_document", "pilot_run", "pilot_sd"]

PILOT_FILE = Path(__file__).parent / "data" / "pilot.json"
"""The committed pilot: run, prompts, method and ``sds`` ({key: {"sd", "by_model", "statistic", "theta"}})."""


@cache
def pilot_document() -> dict[str, Any]:
    """The committed pilot file, parsed (read once)."""
    return json.loads(PILOT_FILE.read_text(encoding="utf-8"))


def pilot_run() -> str:
    """The run the pilot SDs come from, in words."""
    return str(pilot_document()["run"])


def pilot_sd(key: str) -> float:
    """The pilot SD of ``key`` (a claim id, or ``reverse_contrast``), in its statistic's units: T or D units for
    transfer statistics, Spearman ρ for the donor-level blocks. KeyError without a pilot value."""
    entry = pilot_document()["sds"].get(key)
    if entry is None or entry.get("sd") is None:
        raise KeyError(f"no pilot SD for {key!r} in {PILOT_FILE}")
    return float(entry["sd"])
