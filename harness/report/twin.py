"""How the random-weight twin (``--null-twin``, :mod:`harness.claim.null_twin`) reads in the report.

A record whose test ran on the model's random-weight twin carries ``details["null_twin"]``. In the verdict matrix a
PASS whose twin also PASSes reads ``PASS†`` and the note under the matrix says what the dagger means; each claim
section lists its twins (model, twin verdict, twin estimate [CI], n); the run summary counts the PASS cells whose twin
also PASSes; claims.csv and claims.json get :data:`TWIN_FIELDS` (empty when no twin ran). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report.numbers import estimate_with_ci, fmt
from harness.report.tables import md_table, tex_table

DETAILS_KEY = "null_twin"
"""The twin's entry in a record's details (:data:`harness.claim.null_twin.DETAILS_KEY`)."""
TWIN_FIELDS = ("twin_verdict", "twin_estimate", "twin_ci_low", "twin_ci_high")
"""Top-level record fields (claims.csv columns) taken from the twin's entry: its verdict (or ``SKIPPED: …`` /
``ERROR: …``), its estimate and CI in the claim's estimator units; None (empty) when no twin ran."""
DAGGER = "†"
"""The mark of a PASS whose random-weight twin also PASSes."""
DAGGER_NOTE = (f"{DAGGER} the same claim also PASSes on a random-weight copy of the model (--null-twin): not specific "
               "to training.")


def twin_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The twin entry of a record, or None when no twin ran for it."""
    entry = (rec.get("details") or {}).get(DETAILS_KEY)
    return entry if isinstance(entry, dict) else None


def add_twin_fields(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with :data:`TWIN_FIELDS` set from each twin entry (None without one; in place, the list
    returned)."""
    for rec in records:
        entry = twin_of(rec) or {}
        for name in TWIN_FIELDS:
            rec[name] = entry.get(name.removeprefix("twin_"))
    return list(records)


def also_passes(rec: dict[str, Any]) -> bool:
    """True for a PASS whose twin also PASSes (the claim holds on random weights too)."""
    entry = twin_of(rec)
    return rec.get("verdict") == "PASS" and entry is not None and bool(entry.get("also_passes"))


def verdict_mark(rec: dict[str, Any]) -> str:
    """What follows the verdict in a matrix cell: :data:`DAGGER` for :func:`also_passes`, else nothing."""
    return DAGGER if also_passes(rec) else ""


def matrix_note(records: Sequence[dict[str, Any]]) -> str:
    """The matrix's dagger note (:data:`DAGGER_NOTE`) when some cell carries the dagger, else the empty string."""
    return DAGGER_NOTE if any(also_passes(r) for r in records) else ""


def summary_sentence(records: Sequence[dict[str, Any]]) -> str:
    """`` Random-weight twin (--null-twin passing): 3 of 12 PASS cells also PASS on random weights.`` (with a leading
    space, for the run summary) when some record has a twin, else the empty string. The PASS cells counted are those
    with a twin; under ``all`` the number of cells whose twin ran follows."""
    twinned = [r for r in records if twin_of(r) is not None]
    if not twinned:
        return ""
    modes = ", ".join(dict.fromkeys(str(twin_of(r).get("mode")) for r in twinned))  # type: ignore[union-attr]
    passing = [r for r in twinned if r.get("verdict") == "PASS"]
    cells = f"{len(passing)} PASS cell" + ("s also PASS" if len(passing) != 1 else " also PASSes")
    text = (f" Random-weight twin (--null-twin {modes}): {sum(also_passes(r) for r in passing)} of {cells} on random "
            "weights")
    if len(twinned) != len(passing):
        text += f" (twins ran for {len(twinned)} cells)"
    return text + "."


def _twin_cell(entry: dict[str, Any]) -> str:
    return estimate_with_ci({k: entry.get(k) for k in ("estimate", "ci_low", "ci_high")})


def _rows(recs: Sequence[dict[str, Any]], with_claim: bool) -> list[list[str]]:
    rows = []
    for rec in recs:
        entry = twin_of(rec)
        if entry is None:
            continue
        explanation = str(entry.get("explanation") or "")
        verdict = str(entry.get("verdict"))
        rows.append([*([rec["claim"]] if with_claim else []), rec["model"], rec["verdict"], verdict,
                     _twin_cell(entry), fmt(entry.get("n")), explanation.removeprefix(f"{verdict}: ")])
    return rows


TWIN_HEADERS = ("model", "verdict", "twin verdict", "twin estimate [CI]", "twin n", "twin explanation")


def twin_table_md(recs: Sequence[dict[str, Any]]) -> list[str]:
    """A claim section's "Random-weight twin" table (Markdown lines, a row per model with a twin); empty when no
    record of ``recs`` has one."""
    rows = _rows(recs, with_claim=False)
    if not rows:
        return []
    return ["Random-weight twin (--null-twin): the same test on a random-weight copy of each model (same architecture, "
            "tokenizer, prompts, seeds and rule):", "", md_table(TWIN_HEADERS, rows), ""]


def twin_table_tex(records: Sequence[dict[str, Any]]) -> list[str]:
    """One booktabs table of every twin of the run (a row per claim × model with a twin), or no lines without one."""
    rows = _rows(records, with_claim=True)
    if not rows:
        return []
    note = ("Each claim re-run on a random-weight copy of the model (--null-twin; same architecture, tokenizer, "
            "prompts, seeds and rule). " + matrix_note(records))
    return [tex_table(["claim", *TWIN_HEADERS[:-1]], [row[:-1] for row in rows], align="lllllr",
                      caption="Random-weight twin", label="tab:null-twin", note=note.strip()), ""]
