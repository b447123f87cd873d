"""Why each claim's version moved: the registry's change log, one entry per version above 1.

A claim's ``version`` (:class:`~harness.registry.spec.ClaimSpec`) must equal 1 + the number of its entries here
(checked when the registry is built), so a change that can move a verdict cannot be made without its reason.
Each entry is (version, date, reason); the report prints them in methods.md, a reader can see in claims.json which
version produced a verdict.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["VERSION_HISTORY", "VersionChange", "changes_of"]


class VersionChange(NamedTuple):
    """One version step of a claim: the version it introduced, the date (ISO, UTC) and the reason in words."""

    version: int
    date: str
    reason: str


LENGTH_COVARIATE = ("recursion level is confounded with prompt length in the bank (L1–L3 prompts 26–28 words, "
                    "L4–L5 39–42): the estimate becomes the partial Spearman ρ(level, outcome | prompt length in "
                    "tokens), the plain ρ is reported beside it (issue 11, item 6)")

VERSION_HISTORY: dict[str, tuple[VersionChange, ...]] = {
    "level_rv_trend": (VersionChange(2, "2026-12-05", LENGTH_COVARIATE),),
    "level_behaviour_trend": (VersionChange(2, "2026-12-05", LENGTH_COVARIATE),),
    "geometry_transfers": (VersionChange(2, "2026-12-05", (
        "v1 compared R_V of three different generated texts, dropped pairs by condition (a pair left when any of "
        "its three continuations had < 16 tokens) and always tested R_V(B⊕A) < R_V(B), which FAILed a model whose "
        "natural gap is positive; v2 teacher-forces B's natural continuation through all three caches (same "
        "tokens), keeps pairs by B's continuation alone, and tests in the direction of the natural gap "
        "(issue 11, item 2)")),),
}
"""Every version change by claim id, oldest first."""


def changes_of(claim_id: str) -> tuple[VersionChange, ...]:
    """The version changes of one claim (empty for a claim still at version 1)."""
    return VERSION_HISTORY.get(claim_id, ())
