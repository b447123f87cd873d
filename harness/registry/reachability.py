"""Whether a claim's planned n is reachable on the shipped prompt bank (issue 23).

A claim whose plan needs more units than the shipped bank holds can only be INCONCLUSIVE on it, whatever the data:
its verdict then reads "underpowered" (:mod:`harness.claim.verdicts`), apart from INCONCLUSIVE by data. This module
states, per claim, the most units the shipped bank can give (:data:`SHIPPED_BANK_UNITS`, by ``n_unit``) and whether the
plan exceeds it; ``--list-claims`` and methods.md print it. The counts are the bank's (tests/unit/test_pilot_bank.py
and tests/unit/test_rules_both_ways.py recount them from ``prompts/``).
"""

from __future__ import annotations

from harness.registry.spec import ClaimSpec

__all__ = ["SHIPPED_BANK_UNITS", "reachability_words", "shipped_capacity", "underpowered_on_shipped_bank"]

SHIPPED_BANK_UNITS: dict[str, int] = {
    "prompt pairs": 84,  # recursive/baseline pairs of prompts/pairs.json (grounded/confabulation pairs: 20)
    "prompts per group": 84,  # recursive and baseline (long_control, repetitive, about_recursion: 36 each)
    "recursive prompts": 84,
    "baseline recipients": 84,
}
"""The most units of each kind the shipped bank holds (an upper bound: a claim's own constraints, such as another
prompt of the same token length, can give fewer)."""

_BY_CLAIM: dict[str, int] = {
    "confabulation_signature": 20,
    **{f"rv_survives_{name}": 36 for name in ("long_control", "repetition", "about_recursion")},
}


def shipped_capacity(spec: ClaimSpec) -> int | None:
    """The most ``spec.n_unit`` the shipped bank can give ``spec`` (None when the unit is not a bank count, e.g.
    persona cells, held-out texts or coverage prompts of an invariant)."""
    return _BY_CLAIM.get(spec.id, SHIPPED_BANK_UNITS.get(spec.n_unit))


def underpowered_on_shipped_bank(spec: ClaimSpec) -> bool:
    """True when ``spec``'s planned n exceeds what the shipped bank can give it."""
    capacity = shipped_capacity(spec)
    return capacity is not None and spec.planned_n > capacity


def reachability_words(spec: ClaimSpec) -> str:
    """``underpowered on the shipped bank (needs n = 2257, it holds 84 prompt pairs)`` or an empty string."""
    if not underpowered_on_shipped_bank(spec):
        return ""
    return (f"underpowered on the shipped bank (needs n = {spec.planned_n}, it holds {shipped_capacity(spec)} "
            f"{spec.n_unit})")
