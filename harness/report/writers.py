"""Writers for claims.md, claims.csv and claims.json (records are :meth:`Row.record` dicts)."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.registry import CLAIMS, MULTIPLICITY_FAMILIES
from harness.report.status import status_line
from harness.results import Verdict

CSV_COLUMNS = ("claim", "version", "model", "verdict", "estimate", "ci_low", "ci_high", "ci_level", "n",
               "planned_n", "p_value", "p_adjusted", "alpha_test", "family", "rule", "explanation", "test")
EXAMPLES_PER_CONDITION = 3
EXAMPLE_CHARS = 400
SYNTHETIC_BANNER = ("> **Synthetic data.** Every number below comes from fabricated inputs that exercise the report "
                    "plumbing. It is not a measurement of any model and not a scientific result.")


def fmt(x: Any, p: bool = False) -> str:
    """A number for a table: 3 significant digits, p-values in scientific notation when small, '–' if absent."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return str(x)
    if p and x < 1e-3:
        return f"{x:.1e}"
    return f"{x:.3g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table with escaped cells."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(rec: dict[str, Any]) -> str:
    if rec.get("ci_low") is None and rec.get("ci_high") is None:
        return "–"
    return f"[{fmt(rec.get('ci_low'))}, {fmt(rec.get('ci_high'))}]"


def _n(rec: dict[str, Any]) -> str:
    return f"{fmt(rec.get('n'))} ({fmt(rec.get('planned_n'))})"


def _short_expl(rec: dict[str, Any]) -> str:
    text = rec.get("explanation") or ""
    prefix = f"{rec['verdict']}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _verdict_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict in (Verdict.PASS.value, Verdict.FAIL.value) else verdict


def _header_lines(run: dict[str, Any]) -> list[str]:
    git = run.get("git") or {}
    sha = git.get("short") or "no git"
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    status = run.get("status") or {}
    lines = [f"- Run status: {status_line(status)}"] if status else []
    lines += [
        f"- Date (UTC): {run.get('date_utc')}; commit `{sha}`{dirty}; seed: {run.get('seed')}",
        f"- Command: `{run.get('command')}`",
        f"- Prompt bank sha256: `{run.get('prompt_bank_sha256')}`; device: {run.get('device')}",
    ]
    for model, prov in (run.get("models") or {}).items():
        lines.append(f"- Model `{model}`: {json.dumps(prov, sort_keys=True)}")
    return lines


def claims_markdown(records: Sequence[dict[str, Any]], run: dict[str, Any], figures: dict[str, list[str]]) -> str:
    """The paper-style report: claim sections (claim once, a row per model), matrix, examples, notes."""
    out: list[str] = [f"# Claims report — {run.get('run_id')}", ""]
    if run.get("synthetic"):
        out += [SYNTHETIC_BANNER, ""]
    status = run.get("status") or {}
    if status and not status.get("complete"):
        out += [(f"> **{status.get('label')}: this report is incomplete.** {status_line(status)}. Rows marked NOT "
                 "RUN were selected but never ran; re-run the same command to complete the report."), ""]
    out += _header_lines(run) + [""]
    counts = Counter(r["verdict"] for r in records)
    out += ["Summary: " + ", ".join(f"{counts.get(v.value, 0)} {v.value}" for v in Verdict) + ".", ""]

    claims = list(dict.fromkeys(r["claim"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    out += ["## Claims", ""]
    for claim in claims:
        out += _claim_section(claim, [r for r in records if r["claim"] == claim], figures.get(claim, []))

    out += _cross_model_depth(records)

    out += ["## Verdict matrix", ""]
    by_key = {(r["claim"], r["model"]): r["verdict"] for r in records}
    out += [md_table(["claim", *models], [[c, *(by_key.get((c, m), "not run") for m in models)] for c in claims]), ""]

    examples = [r for r in records if (r.get("details") or {}).get("examples")]
    if examples:
        out += ["## Examples", "", "Generated continuations (generated tokens only) per condition, "
                f"first {EXAMPLES_PER_CONDITION} per condition.", ""]
        for rec in examples:
            out += _examples(rec)

    not_run = [cid for cid in CLAIMS if cid not in set(claims)]
    if not_run:
        out += ["## Registered claims without a row in this run", "",
                "Not collected or deselected: " + ", ".join(f"`{c}`" for c in not_run) + ".", ""]

    out += ["## Notes", "",
            "- Verdicts: PASS = every condition of the pre-registered rule holds; FAIL = some condition clearly "
            "does not; INCONCLUSIVE = a CI straddles its threshold, the estimate is undefined, or n is below the "
            "planned n. SKIPPED and ERROR rows say why in their explanation.",
            "- p conditions are decided at α/m (Bonferroni over the registry family, fixed before the data). "
            "'p adj.' is the Holm-adjusted p within the same family per model, counting family members that did "
            "not run as p = 1; Holm never exceeds Bonferroni, so a PASS holds under Holm too.",
            "- Families: " + "; ".join(f"{f.name} (α = {f.alpha:g}, m = {len(f.members)})"
                                        for f in MULTIPLICITY_FAMILIES.values()) + ".",
            "- n (planned): units per claim are named in each rule; planned n comes from the registry's power "
            "calculation.", ""]
    out += ["## Package versions", "", md_table(["package", "version"], sorted(
        (k, v or "not installed") for k, v in (run.get("packages") or {}).items())), ""]
    return "\n".join(out)


def _claim_section(claim: str, recs: Sequence[dict[str, Any]], figure_files: Sequence[str]) -> list[str]:
    spec = CLAIMS.get(claim)
    version = recs[0].get("version")
    if spec is None:
        out = [f"### `{claim}` v{version}", "", f"**Rule.** {recs[0].get('rule')}", ""]
    else:
        tag = " (headline)" if spec.headline else ""
        out = [f"### `{claim}` v{version} — {spec.title}{tag}", "",
               f"**Statement.** {spec.statement}", "",
               f"**Rule.** {spec.decision_text()}", "",
               f"**Estimator.** {spec.estimator}", ""]
        if spec.decoding is not None:
            out += [f"**Decoding.** {spec.decoding.describe()}; behaviour score: `{spec.behaviour_score}`.", ""]
    level = next((r.get("ci_level") for r in recs if r.get("ci_level")), None)
    ci_head = f"{level:.0%} CI" if level else "CI"
    rows = [[r["model"], fmt(r.get("estimate")), _ci(r), _n(r), fmt(r.get("p_value"), p=True),
             fmt(r.get("p_adjusted"), p=True), _verdict_cell(r["verdict"]), _short_expl(r)] for r in recs]
    out += [md_table(["model", "estimate", ci_head, "n (planned)", "p", "p adj.", "verdict", "explanation"], rows), ""]
    out += _layer_sweep_tables(recs)
    out += [f"![{name}]({name})" for name in figure_files]
    if figure_files:
        out.append("")
    return out


def _sweep(rec: dict[str, Any]) -> dict[str, Any] | None:
    sweep = (rec.get("details") or {}).get("layer_sweep")
    return sweep if sweep and sweep.get("layers") else None


def strongest_layer_index(claim: str, sweep: dict[str, Any]) -> int | None:
    """Index into ``sweep["layers"]`` of the strongest effect in the claim's direction: the most negative
    estimate below 0 for a claim whose rule is '<' (e.g. R_V contraction), the largest above 0 for '>', else the
    largest |estimate|. None when no finite estimate lies on the claim's side of 0."""
    values = [(i, float(v)) for i, v in enumerate(sweep.get("estimate") or []) if v is not None and math.isfinite(v)]
    spec = CLAIMS.get(claim)
    op = spec.comparator if spec is not None else None
    if op in ("<", "<="):
        below = [iv for iv in values if iv[1] < 0]
        return min(below, key=lambda iv: iv[1])[0] if below else None
    if op in (">", ">="):
        above = [iv for iv in values if iv[1] > 0]
        return max(above, key=lambda iv: iv[1])[0] if above else None
    return max(values, key=lambda iv: abs(iv[1]))[0] if values else None


def _at(sweep: dict[str, Any], key: str, i: int) -> Any:
    values = sweep.get(key) or []
    return values[i] if i < len(values) else None


def _layer_sweep_tables(recs: Sequence[dict[str, Any]]) -> list[str]:
    """The layer sweep as a table: one row per (model, late layer); the verdict's layer and the strongest marked."""
    rows = []
    label = None
    for rec in recs:
        sweep = _sweep(rec)
        if sweep is None:
            continue
        label = label or sweep.get("effect_label")
        best = strongest_layer_index(rec["claim"], sweep)
        for i, layer in enumerate(sweep["layers"]):
            marks = [m for m, on in (("pre-registered (verdict)", layer == sweep.get("fixed_layer")),
                                     ("strongest", i == best)) if on]
            ci = _ci({"ci_low": _at(sweep, "ci_low", i), "ci_high": _at(sweep, "ci_high", i)})
            rows.append([rec["model"], layer, fmt(_at(sweep, "depth_fraction", i)), fmt(_at(sweep, "estimate", i)), ci,
                         ", ".join(marks)])
    if not rows:
        return []
    return [f"**Layer sweep** ({label or 'effect size'}; late layer swept, depth = layer / number of layers). "
            "Reported beside the verdict, which uses the pre-registered layer only.", "",
            md_table(["model", "late layer", "depth", "estimate", "CI", "note"], rows), ""]


def _cross_model_depth(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per claim with a layer sweep and per model: where the strongest layer sits, as a fraction of depth."""
    rows = []
    for rec in records:
        sweep = _sweep(rec)
        if sweep is None:
            continue
        best = strongest_layer_index(rec["claim"], sweep)
        fixed = sweep.get("fixed_layer")
        fixed_i = sweep["layers"].index(fixed) if fixed in sweep["layers"] else None
        rows.append([
            rec["claim"], rec["model"], fmt(sweep.get("n_layers")), fmt(sweep.get("early_layer")),
            "–" if fixed_i is None else f"{fixed} ({fmt(_at(sweep, 'depth_fraction', fixed_i))})",
            "–" if fixed_i is None else fmt(_at(sweep, "estimate", fixed_i)),
            "–" if best is None else f"{sweep['layers'][best]} ({fmt(_at(sweep, 'depth_fraction', best))})",
            "–" if best is None else f"{fmt(_at(sweep, 'estimate', best))} "
                                     f"{_ci({'ci_low': _at(sweep, 'ci_low', best), 'ci_high': _at(sweep, 'ci_high', best)})}",
        ])
    if not rows:
        return []
    return ["## Cross-model: depth of the strongest layer", "",
            "Per model, the late layer with the strongest effect in the claim's direction (layer sweep, early layer "
            "fixed) and its depth fraction (layer / number of layers), beside the pre-registered layer; '–' when no "
            "layer shows the effect in the claim's direction. The strongest layer is chosen after seeing the data: it "
            "describes where the effect peaks, it is not a test.", "",
            md_table(["claim", "model", "layers", "early layer", "pre-registered late layer (depth)", "estimate there",
                      "strongest layer (depth)", "estimate there [CI]"], rows), ""]


def _examples(rec: dict[str, Any]) -> list[str]:
    out = [f"### `{rec['claim']}` × `{rec['model']}`", ""]
    for condition, texts in rec["details"]["examples"].items():
        out.append(f"**{condition}**")
        out.append("")
        for text in list(texts)[:EXAMPLES_PER_CONDITION]:
            clipped = str(text).replace("```", "'''")
            if len(clipped) > EXAMPLE_CHARS:
                clipped = clipped[: EXAMPLE_CHARS - 1] + "…"
            out += ["```text", clipped, "```"]
        out.append("")
    return out


def write_csv(records: Sequence[dict[str, Any]], path: Path) -> None:
    """claims.csv: one row per claim × model with :data:`CSV_COLUMNS`."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in CSV_COLUMNS})


def write_json(records: Sequence[dict[str, Any]], run: dict[str, Any], path: Path) -> None:
    """claims.json: ``{"run": <header>, "records": [...]}`` (strict JSON, no NaN)."""
    payload = {"run": run, "records": list(records)}
    path.write_text(json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")


def terminal_table(records: Sequence[dict[str, Any]]) -> list[str]:
    """Compact claims × models verdict lines for the terminal summary."""
    claims = list(dict.fromkeys(r["claim"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    by_key = {(r["claim"], r["model"]): r["verdict"] for r in records}
    widths = [max([len("claim"), *map(len, claims)])] + [max(len(m), len("INCONCLUSIVE")) for m in models]
    lines = ["  ".join(h.ljust(w) for h, w in zip(["claim", *models], widths)).rstrip()]
    for c in claims:
        cells = [c, *(by_key.get((c, m), "-") for m in models)]
        lines.append("  ".join(x.ljust(w) for x, w in zip(cells, widths)).rstrip())
    return lines
