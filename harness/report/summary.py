"""The run in words, shared by claims.md, claims.tex and methods.md: models, prompt bank, decoding regime, commit,
status and verdict counts (claims apart from engine checks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.registry import CLAIMS
from harness.report.annotate import VERDICTS, is_engine_check
from harness.report.status import run_status, status_line
from harness.report.twin import summary_sentence


def model_order(records: Sequence[dict[str, Any]]) -> list[str]:
    """Models in record order (the run's ``--model`` order)."""
    return list(dict.fromkeys(r["model"] for r in records))


def claim_order(records: Sequence[dict[str, Any]]) -> list[str]:
    """Claims in record order (registry order)."""
    return list(dict.fromkeys(r["claim"] for r in records))


def provenance_of(run: dict[str, Any], model: str) -> dict[str, Any]:
    """The model's provenance from the run header (the first when a model was loaded more than one way)."""
    prov = (run.get("models") or {}).get(model) or {}
    return (prov[0] if prov else {}) if isinstance(prov, list) else prov


def weights_hash(prov: dict[str, Any]) -> str | None:
    """The weights' content hash a provenance names (``sha256`` or ``gguf_sha256``), if any."""
    return prov.get("sha256") or prov.get("gguf_sha256")


def model_phrase(model: str, prov: dict[str, Any]) -> str:
    """``smollm2-135m (llama, float32, cpu)`` from a provenance."""
    facts = [str(prov[k]) for k in ("family", "dtype", "device") if prov.get(k)]
    return f"`{model}`" + (f" ({', '.join(facts)})" if facts else "")


def decoding_regimes(records: Sequence[dict[str, Any]]) -> list[str]:
    """The distinct decoding regimes the behavioural records name, in record order."""
    return list(dict.fromkeys(d for r in records if (d := (r.get("details") or {}).get("decoding"))))


NAMED_CLAIMS_AT_MOST = 3
"""A regime used by at most this many claims names them in the run summary; a regime of more claims gives a count."""


def decoding_phrase(records: Sequence[dict[str, Any]]) -> str:
    """The decoding regimes of the run's records, each with the claims that used it: ``greedy, 48 new tokens (23
    claims)`` or ``greedy, 32 new tokens (partial_layer_fidelity)``; regimes in record order, joined by ``; ``. A run
    with a single regime gets the regime alone; a run without one gets the empty string."""
    users: dict[str, list[str]] = {}
    for r in records:
        if d := (r.get("details") or {}).get("decoding"):
            claims = users.setdefault(d, [])
            if r["claim"] not in claims:
                claims.append(r["claim"])
    if len(users) == 1:
        return next(iter(users))
    return "; ".join(f"{d} ({', '.join(c) if len(c) <= NAMED_CLAIMS_AT_MOST else f'{len(c)} claims'})"
                     for d, c in users.items())


def verdict_counts(records: Sequence[dict[str, Any]]) -> str:
    """``24 PASS, 18 FAIL, 14 INCONCLUSIVE`` over the given records (verdicts that occur, in report order)."""
    counts = Counter(r["verdict"] for r in records)
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts.get(v)]
    return ", ".join(parts) if parts else "no rows"


def bank_phrase(run: dict[str, Any]) -> str:
    """The prompt bank in a few words: hash prefix and, when the header has them, group counts."""
    sha = run.get("prompt_bank_sha256")
    bank = run.get("prompt_bank") or {}
    text = f"prompt bank sha256 `{str(sha)[:12]}…`" if isinstance(sha, str) else f"prompt bank {sha or 'unrecorded'}"
    groups = bank.get("groups") or {}
    if groups:
        text += " (" + ", ".join(f"{n} {g}" for g, n in groups.items()) + ")"
    return text


def run_summary(records: Sequence[dict[str, Any]], run: dict[str, Any], bold: bool = True) -> str:
    """One paragraph: what ran (models, bank, decoding, commit), how it ended, and the verdicts (an incomplete
    run's status label in Markdown bold unless ``bold`` is False)."""
    git = run.get("git") or {}
    commit = f"commit `{git.get('short')}`" + (" with uncommitted changes" if git.get("dirty") else "") \
        if git.get("short") else "no git commit"
    models = model_order(records)
    claims = [r for r in records if not is_engine_check(r)]
    checks = [r for r in records if is_engine_check(r)]
    status = run_status(run, records)
    n_claims = len({r["claim"] for r in claims})
    text = (f"Run `{run.get('run_id')}` ({run.get('date_utc') or 'date unrecorded'}, {commit}) evaluated "
            f"{n_claims} of {sum(not s.is_engine_check for s in CLAIMS.values())} registered claims on "
            f"{len(models)} model{'s' if len(models) != 1 else ''}: "
            + ", ".join(model_phrase(m, provenance_of(run, m)) for m in models)
            + f"; {bank_phrase(run)}")
    if decoding := decoding_phrase(records):
        text += f"; behavioural claims decoded {decoding}"
    text += "."
    if status:
        text += f" Status: {status_line(status, bold=bold)}."
    text += f" Claim verdicts (claim × model): {verdict_counts(claims)}."
    text += summary_sentence(claims)
    if checks:
        ok = sum(r["verdict"] == "PASS" for r in checks)
        text += f" Engine checks: {ok} of {len(checks)} hold."
    return text
