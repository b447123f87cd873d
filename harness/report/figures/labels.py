"""Human-readable names for experimental conditions and prompt groups, as figures show them.

Records name conditions by their internal ids (``kv_main``, ``natural_baseline``: the names of
:data:`harness.transfer.conditions.CATALOGUE` and of the claim modules' own conditions). A figure shows
:func:`condition_label` instead, which says what was run: which prompt was decoded, what was patched into its
cache, from which prompt, over which layers or positions. Donor and recipient follow the suite's pairs: the
recursive prompt A is the donor and the baseline prompt B the recipient, except where a label says otherwise.
"""

from __future__ import annotations

import re

from harness.registry import CLAIMS

CONDITION_LABELS: dict[str, str] = {
    "natural_baseline": "baseline, unpatched (recipient)",
    "natural_recursive": "recursive, unpatched (donor)",
    "kv_main": "KV patch recursive→baseline, 2nd half of layers",
    "kv_single_late": "KV patch recursive→baseline, late layer only",
    "v_patch_late": "V patch recursive→baseline, late layer",
    "reverse": "reverse KV patch baseline→recursive",
    "order_ablation": "order ablation: donor KV, positions permuted",
    "control_random": "control: random KV, norm-matched",
    "control_cross_baseline": "control: KV of another baseline→baseline",
    "reverse_recursive_donor": "reverse contrast: KV of another recursive→recursive",
    "reverse_random": "reverse contrast: random KV (baseline norms)→recursive",
    "kv_tokens_first_quarter": "KV patch recursive→baseline, first 25% of positions",
    "kv_tokens_last_quarter": "KV patch recursive→baseline, last 25% of positions",
    "kv_peak_zone": "KV patch recursive→baseline, late layer ± 2",
    "kv_self_ref_tokens": "KV patch recursive→baseline, self-referential tokens only",
}
"""Condition id → label, for the catalogue and the conditions the claim modules define."""

SHORT_CONDITION_LABELS: dict[str, str] = {
    "natural_baseline": "baseline\nunpatched",
    "natural_recursive": "recursive\nunpatched",
    "kv_main": "KV patch\nrecursive→baseline",
}
"""Two-line labels for the tick marks of narrow panels (the conditions of a paired R_V panel)."""

GROUP_LABELS: dict[str, str] = {
    "recursive": "recursive",
    "baseline": "baseline",
    "long_control": "long control",
    "repetitive": "repetitive",
    "about_recursion": "about recursion",
}
"""Prompt-bank group id → label."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^kv_alpha_(?P<x>[0-9.]+)$"), "KV patch recursive→baseline, α = {x}"),
    (re.compile(r"^kv_layer_quarter_(?P<x>[1-4])$"), "KV patch recursive→baseline, layer quarter Q{x}"),
    (re.compile(r"^donor_L(?P<x>[1-5])$"), "KV patch from a level-L{x} recursive donor"),
    (re.compile(r"^L(?P<x>[1-5])$"), "level L{x}"),
)


def condition_label(name: str, short: bool = False) -> str:
    """The label of a condition or prompt group id (``short``: a two-line tick label where one exists).

    An id this module does not know keeps its words with underscores as spaces, so no internal id with
    underscores reaches a figure; a suffix such as ``" (step 0)"`` is kept after the label of its head.
    """
    head, sep, tail = name.partition(" (")
    if sep and head in {**CONDITION_LABELS, **GROUP_LABELS}:
        return f"{condition_label(head, short)} ({tail}"
    if short and name in SHORT_CONDITION_LABELS:
        return SHORT_CONDITION_LABELS[name]
    if name in CONDITION_LABELS:
        return CONDITION_LABELS[name]
    if name in GROUP_LABELS:
        return GROUP_LABELS[name]
    for pattern, template in _PATTERNS:
        match = pattern.match(name)
        if match:
            return template.format(**match.groupdict())
    return name.replace("_", " ")


def two_line(label: str) -> str:
    """``"Q1 (layers 0–6)"`` → ``"Q1\\n(layers 0–6)"``: a bracketed tail on its own line, for tick labels."""
    head, sep, tail = label.partition(" (")
    return f"{head}\n({tail}" if sep else label


def claim_title(claim: str) -> str:
    """A claim's title in words as figure titles show it (the registry's title; never the claim id)."""
    spec = CLAIMS.get(claim)
    return spec.title if spec is not None else claim.replace("_", " ")


_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![\w$])R_V(?![\w$])"), r"$R_V$"),
    (re.compile(r"(?<![\w$])ρ_partial(?![\w$])"), r"$\rho_\mathrm{partial}$"),
)


def typeset_symbols(text: str) -> str:
    """``text`` with the report's subscripted symbols (R_V, ρ_partial) as matplotlib mathtext, so no figure shows
    a literal underscore; text that already holds mathtext (``$``) is left alone."""
    if "$" in text:
        return text
    for pattern, math in _SYMBOLS:
        text = pattern.sub(lambda _m, m=math: m, text)
    return text
