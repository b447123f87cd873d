"""examples.md: example continuations per claim × model × condition, non-empty ones only, with the count of empty
continuations (the model emitted EOS at once) per condition.

Each shown continuation is headed by its pair, token count and registered score, and followed by the recipient's
(and for a patch the donor's) prompt, clipped, when the record carries ``details["prompts"]``, so a reader can audit a
high score at a glance. From ``details["samples"]`` (every continuation, with its pair, token count and score) when a record has them,
else from the older ``details["examples"]`` (the first three continuations of each condition) with the empty count
taken from ``details["conditions"][condition]`` (``empty_share`` × ``n_continuations``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report.numbers import fmt

EXAMPLES_PER_CONDITION = 3
"""Non-empty continuations shown per condition."""
EXAMPLE_CHARS = 400
"""Longer continuations are clipped to this many characters."""
PROMPT_CHARS = 200
"""Longer prompts are clipped to this many characters."""


def condition_words(spec: dict[str, Any] | None) -> str:
    """A condition's spec (``details["conditions"][name]["condition"]``) in words, e.g. ``baseline recipient,
    recursive donor, kv patch, α = 1``; empty when there is no spec."""
    if not spec:
        return ""
    parts = [f"{spec.get('recipient')} recipient"]
    if spec.get("donor"):
        parts.append(f"{spec['donor']} donor")
    if spec.get("intervention") not in (None, "none"):
        parts.append(f"{spec['intervention']} patch")
        layers = (spec.get("layers") or {}).get("kind")
        if layers:
            parts.append(f"layers: {layers.replace('_', ' ')}")
        span = (spec.get("span") or {}).get("kind")
        if span and span != "all":
            parts.append(f"positions: {span.replace('_', ' ')}")
        if spec.get("alpha") is not None and spec.get("alpha") != 1.0:
            parts.append(f"α = {fmt(spec['alpha'])}")
        if spec.get("control"):
            parts.append(f"control: {spec['control']}")
    return ", ".join(parts)


def _clip(text: str) -> str:
    clipped = text.replace("```", "'''")
    return clipped if len(clipped) <= EXAMPLE_CHARS else clipped[: EXAMPLE_CHARS - 1] + "…"


def _block(text: str, label: str | None, prompt_lines: Sequence[str] = ()) -> list[str]:
    head = [f"*{label}*", ""] if label else []
    tail = [*prompt_lines, ""] if prompt_lines else []
    return [*head, "```text", _clip(text.strip()), "```", "", *tail]


def _prompt_lines(sample: dict[str, Any], prompts: dict[str, str]) -> list[str]:
    """``> recipient prompt `id`: text`` (and the donor's) for the prompts the record names."""
    out = []
    for role in ("recipient", "donor"):
        pid = sample.get(role)
        if pid and pid in prompts:
            text = " ".join(str(prompts[pid]).split())
            text = text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1] + "…"
            out.append(f"> {role} prompt `{pid}`: {text}" + ("  " if role == "recipient" and sample.get("donor") else ""))
    return out


def _from_samples(samples: list[dict[str, Any]], prompts: dict[str, str]) -> tuple[list[list[str]], int, int]:
    shown = [s for s in samples if not s.get("empty") and str(s.get("text", "")).strip()][:EXAMPLES_PER_CONDITION]
    blocks = [_block(str(s["text"]), f"pair {s.get('pair')}, {s.get('n_tokens')} tokens, score {fmt(s.get('score'))}"
                     + (", degenerate" if s.get("degenerate") else ""), _prompt_lines(s, prompts)) for s in shown]
    empty = sum(1 for s in samples if s.get("empty"))
    return blocks, empty, len(samples)


def _from_examples(texts: list[str], summary: dict[str, Any]) -> tuple[list[list[str]], int | None, int | None]:
    shown = [t for t in texts if str(t).strip()][:EXAMPLES_PER_CONDITION]
    total = summary.get("n_continuations")
    share = summary.get("empty_share")
    empty = round(share * total) if isinstance(total, int) and isinstance(share, int | float) else None
    return [_block(str(t), None) for t in shown], empty, total


def record_examples(rec: dict[str, Any]) -> list[str]:
    """The Markdown lines of one record (empty when it has neither samples nor examples)."""
    details = rec.get("details") or {}
    samples, examples = details.get("samples") or {}, details.get("examples") or {}
    conditions = details.get("conditions") or {}
    names = list(samples) or list(examples)
    if not names:
        return []
    out = [f"## `{rec['claim']}` × `{rec['model']}`", ""]
    for name in names:
        summary = conditions.get(name) or {}
        if name in samples:
            blocks, empty, total = _from_samples(samples[name], details.get("prompts") or {})
        else:
            blocks, empty, total = _from_examples(list(examples.get(name) or []), summary)
        words = condition_words(summary.get("condition"))
        count = (f"{empty} of {total} continuations empty" if empty is not None and total is not None
                 else "empty count not recorded")
        shown = f"showing {len(blocks)} non-empty" if blocks else "no non-empty continuation among those recorded"
        out += [f"### {name}" + (f" ({words})" if words else ""), "", f"{count}; {shown}.", ""]
        for block in blocks:
            out += block
    return out


def examples_markdown(records: Sequence[dict[str, Any]], run: dict[str, Any]) -> str:
    """examples.md for all records that carry continuations (a note when none does)."""
    out = [f"# Example continuations — {run.get('run_id')}", "",
           (f"Generated tokens only (never the prompt), the first {EXAMPLES_PER_CONDITION} non-empty continuations per "
           "condition in pair order, clipped at "
           f"{EXAMPLE_CHARS} characters, each with its registered score and the prompt(s) it came from; empty continuations (the model emitted EOS at once) are counted, not shown. "
           "Every continuation with its scores is in samples.jsonl."), ""]
    body = [line for rec in records for line in record_examples(rec)]
    return "\n".join(out + (body or ["No record of this run carries continuations.", ""]))
