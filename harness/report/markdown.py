"""claims.md: title, run summary, the claims × models verdict matrix (within the first 40 lines), the training
dynamics when the run holds a revision series, one section per claim, the engine checks apart, then notes and run
details. Examples live in examples.md
(:mod:`harness.report.examples`), continuations in samples.jsonl, the methods text in methods.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.registry import CLAIMS, MULTIPLICITY_FAMILIES
from harness.registry.effects import EFFECT_TYPES
from harness.report.annotate import engine_check_value, is_engine_check
from harness.report.numbers import MISSING, estimate_text, estimate_with_ci, fmt, fmt_ci
from harness.report.status import run_status, status_line
from harness.report.summary import claim_order, model_order, provenance_of, run_summary, weights_hash
from harness.report.sweeps import cross_model_depth, layer_sweep_table
from harness.report.tables import md_table
from harness.report.training_dynamics import training_dynamics_section
from harness.report.twin import matrix_note, twin_of, twin_table_md, verdict_mark

SYNTHETIC_BANNER = ("> **Synthetic data.** Every number below comes from fabricated inputs that exercise the report "
                    "plumbing. It is not a measurement of any model and not a scientific result.")
DECIDED = ("PASS", "FAIL", "INCONCLUSIVE")
"""Verdicts that come with an estimate."""


def effect_symbol(claim: str) -> str:
    """The estimate's symbol (``g``, ``T``, ``ρ`` …) from the registry, or ``estimate`` for an unknown claim."""
    spec = CLAIMS.get(claim)
    return spec.effect.symbol if spec else "estimate"


def matrix_cell(rec: dict[str, Any] | None) -> str:
    """One matrix cell: ``PASS 0.720 [0.610, 0.800]``; the verdict alone when there is no estimate; ``PASS†`` when
    the random-weight twin also PASSes (:mod:`harness.report.twin`)."""
    if rec is None:
        return "not run"
    verdict, reason = rec["verdict"], rec.get("inconclusive_reason")
    if verdict not in DECIDED:
        return verdict
    if reason == "undefined":
        return f"{verdict} {estimate_with_ci(rec)}"
    tag = verdict_mark(rec) + (f" (underpowered: needs n = {rec.get('planned_n')})" if reason == "underpowered" else "")
    if rec.get("estimate") is None:
        return verdict + tag
    return f"{verdict}{tag} {estimate_with_ci(rec)}"


def effect_heading(claim: str, recs: Sequence[dict[str, Any]]) -> str:
    """The matrix's effect column: the symbol and the CI level, e.g. ``T (90% CI)``."""
    level = next((r.get("ci_level") for r in recs if r.get("ci_level")), None)
    return effect_symbol(claim) + (f" ({level:.0%} CI)" if level else "")


def verdict_matrix(records: Sequence[dict[str, Any]]) -> list[str]:
    """Claims × models: each cell the verdict, the estimate and its CI (Markdown lines, no heading)."""
    models = model_order(records)
    by_key = {(r["claim"], r["model"]): r for r in records}
    rows = []
    for claim in claim_order(records):
        recs = [r for r in records if r["claim"] == claim]
        rows.append([claim, effect_heading(claim, recs), *(matrix_cell(by_key.get((claim, m))) for m in models)])
    return [md_table(["claim", "effect", *models], rows)]


def claims_markdown(records: Sequence[dict[str, Any]], run: dict[str, Any], figures: dict[str, list[str]],
                    run_figures: Sequence[str] = ()) -> str:
    """The paper-style report (see the module docstring); ``figures`` maps a claim to its figure file names,
    ``run_figures`` names the run figures (the training-dynamics figure goes into that section)."""
    out: list[str] = [f"# Claims report — {run.get('run_id')}", ""]
    if run.get("synthetic"):
        out += [SYNTHETIC_BANNER, ""]
    status = run.get("status") or {}
    if status and not status.get("complete"):
        out += [(f"> **{status.get('label')}: this report is incomplete.** {status_line(status)}. Rows marked NOT "
                 "RUN were selected but never ran; re-run the same command to complete the report."), ""]
    out += [run_summary(records, run), ""]
    claims = [r for r in records if not is_engine_check(r)]
    checks = [r for r in records if is_engine_check(r)]
    if claims:
        out += ["## Verdict matrix", "", *verdict_matrix(claims), "",
                ("Each cell: verdict, estimate [CI at the claim's registered level] of the statistic in the effect "
                f"column ({effect_legend(claims)}). Units and the expected direction are in each claim's section and "
                "in the effect_* columns of claims.csv. Engine checks are reported apart and not counted here."), ""]
        out += [note, ""] if (note := matrix_note(claims)) else []
        out += training_dynamics_section(records, [f for f in run_figures if f.startswith("training_dynamics")])
        out += ["## Claims", ""]
        for claim in claim_order(claims):
            out += claim_section(claim, [r for r in claims if r["claim"] == claim], figures.get(claim, []))
    if checks:
        out += engine_checks(checks)
    out += cross_model_depth(records)
    present = set(claim_order(records))
    not_run = [cid for cid in CLAIMS if cid not in present]
    if not_run:
        out += ["## Registered claims without a row in this run", "",
                "Not collected or deselected: " + ", ".join(f"`{c}`" for c in not_run) + ".", ""]
    out += notes() + run_details(run, records)
    return "\n".join(out)


def _multiplicity_words(claim: str) -> str:
    spec = CLAIMS[claim]
    if spec.family is None:
        return "no p criterion: decided on the CI (or the value) alone, outside every multiplicity family."
    fam = MULTIPLICITY_FAMILIES[spec.family]
    return (f"family '{fam.name}' (familywise α = {fam.familywise_alpha:g}, m = {len(fam.members)}; the p criterion is decided "
            f"at α/m = {fam.alpha_per_test:.3g}; 'p adj.' is {fam.method.capitalize()}-adjusted within the family, "
            "per model).")


def claim_section(claim: str, recs: Sequence[dict[str, Any]], figure_files: Sequence[str]) -> list[str]:
    """One claim: statement, effect, rule, estimator, decoding, multiplicity, a row per model, sweep, figures."""
    spec = CLAIMS.get(claim)
    version = recs[0].get("version")
    if spec is None:
        out = [f"### `{claim}` v{version}", "", f"**Rule.** {recs[0].get('rule')}", ""]
    else:
        tag = " (headline)" if spec.headline else ""
        e = spec.effect
        out = [f"### `{claim}` v{version} — {spec.title}{tag}", "",
               f"**Statement.** {spec.statement}", "",
               (f"**Effect.** {e.label if e.symbol in e.label else f'{e.label} ({e.symbol})'}, in {e.units}; the "
               f"rule expects {spec.expected} "
               f"(direction: {spec.effect_direction})."), "",
               f"**Rule.** {spec.decision_text()}", "",
               f"**Estimator.** {spec.estimator}", ""]
        if spec.decoding is not None:
            out += [f"**Decoding.** {spec.decoding.describe()}; behaviour score: `{spec.behaviour_score}`.", ""]
        out += [f"**Multiplicity.** {_multiplicity_words(claim)}", ""]
        if version is not None and version != spec.version:
            out += [(f"> Recorded under version {version}; the registry now holds version {spec.version}, whose "
                    "texts are shown above."), ""]
    level = next((r.get("ci_level") for r in recs if r.get("ci_level")), None)
    ci_head = f"{level:.0%} CI" if level else "CI"
    rows = [[r["model"], estimate_text(r), fmt_ci(r.get("ci_low"), r.get("ci_high")),
             f"{fmt(r.get('n'))} ({fmt(r.get('planned_n'))})", fmt(r.get("p_value")), fmt(r.get("p_adjusted")),
             _verdict_cell(r["verdict"]), _short_explanation(r)] for r in recs]
    out += [md_table(["model", f"estimate ({effect_symbol(claim)})", ci_head, "n (planned)", "p", "p adj.", "verdict",
                      "explanation"], rows), ""]
    out += twin_table_md(recs)
    out += contrast_table(recs)
    out += layer_sweep_table(recs)
    out += [f"![{name}]({name})" for name in figure_files]
    if figure_files:
        out.append("")
    return out


def engine_checks(records: Sequence[dict[str, Any]]) -> list[str]:
    """The deterministic engine invariants: one table, a row per check × model (not claim verdicts)."""
    twinned = any(twin_of(r) is not None for r in records)
    rows = []
    for r in records:
        spec = CLAIMS[r["claim"]]
        twin = twin_of(r)
        rows.append([f"`{r['claim']}`", spec.title, r["model"], fmt(engine_check_value(r)), spec.effect.units,
                     spec.expected, fmt(r.get("n")), _verdict_cell(r["verdict"]),
                     *([f"{twin.get('verdict')} {fmt(twin.get('estimate'))}" if twin else MISSING] if twinned else [])])
    return ["## Engine checks", "",
            ("Deterministic invariants of the KV-cache engine (no sampling error, so no CI or p): each must hold for the "
            "claims above to mean anything. They are reported here and not counted among the claim verdicts; n is the "
            "number of prompts checked." + (" The random-weight twin (--null-twin) must hold them too: they are about "
                                            "the engine, not about training." if twinned else "")), "",
            md_table(["check", "what", "model", "value", "units", "tolerance", "n", "verdict",
                      *(["twin verdict, value"] if twinned else [])], rows), ""]


def notes() -> list[str]:
    """What the verdicts, p columns and n mean (Markdown lines with their heading)."""
    return ["## Notes", "",
            ("- Verdicts: PASS = every condition of the pre-registered rule holds; FAIL = some condition clearly "
            "does not; INCONCLUSIVE = a CI straddles its threshold, the estimate is undefined, or n is below the "
            "planned n. SKIPPED and ERROR rows say why in their explanation."),
            ("- p conditions are decided at α/m (Bonferroni over the registry family, fixed before the data). "
            "'p adj.' is the Holm-adjusted p within the same family per model, counting family members that did "
            "not run as p = 1; Holm never exceeds Bonferroni, so a PASS holds under Holm too."),
            "- Families: " + "; ".join(f"{f.name} (α = {f.familywise_alpha:g}, m = {len(f.members)})"
                                        for f in MULTIPLICITY_FAMILIES.values()) + ".",
            ("- Numbers: 3 significant digits; magnitudes below 0.001 (p-values included) in scientific notation; "
            "claims.csv and claims.json hold full precision. Definitions: docs/METHODS.md; the generated methods text "
            "of this run: methods.md; example continuations: examples.md; every continuation: samples.jsonl."), ""]


def run_details(run: dict[str, Any], records: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Run facts (status, date, command, seed, device, bank, models) and package versions, as Markdown lines
    (``records``: the run's, for the status words of :func:`harness.report.status.run_status`)."""
    git = run.get("git") or {}
    status = run_status(run, records)
    lines = ["## Run details", ""]
    lines += [f"- Run status: {status_line(status)}"] if status else []
    lines += [(f"- Date (UTC): {run.get('date_utc')}; commit `{git.get('sha') or 'no git'}`"
              f"{' (uncommitted changes)' if git.get('dirty') else ''}; seed: {run.get('seed')}"),
              f"- Command: `{run.get('command')}`",
              f"- Prompt bank sha256: `{run.get('prompt_bank_sha256')}`; device: {run.get('device')}", ""]
    models = run.get("models") or {}
    if models:
        rows = []
        for name in models:
            prov = provenance_of(run, name)
            family = (prov.get("family") or MISSING) + (f" ({prov['layout']})" if prov.get("layout") else "")
            rows.append([name, family, prov.get("source") or MISSING,
                         prov.get("location") or prov.get("revision") or MISSING,
                         f"`{weights_hash(prov)}`" if weights_hash(prov) else MISSING,
                         prov.get("dtype") or MISSING, prov.get("device") or MISSING,
                         (prov.get("attn_implementation") or MISSING)
                         + ("; fast decode path" if prov.get("decode_path") == "fast" else "")])
        lines += [md_table(["model", "family", "source", "location / revision", "weights sha256", "dtype", "device",
                            "attention"], rows), ""]
    packages = sorted((k, v or "not installed") for k, v in (run.get("packages") or {}).items())
    if packages:
        lines += ["## Package versions", "", md_table(["package", "version"], packages), ""]
    return lines


def contrast_table(recs: Sequence[dict[str, Any]]) -> list[str]:
    """The contrasts a ``contrasts_above`` rule judged (``details["contrast_cis"]``, with estimates from
    ``details["contrasts"]`` when present): one row per (model, contrast). Empty when no record has contrasts."""
    rows = []
    for rec in recs:
        details = rec.get("details") or {}
        described = details.get("contrasts") or {}
        for name, (low, high) in (details.get("contrast_cis") or {}).items():
            level = (described.get(name) or {}).get("ci_level") or rec.get("ci_level")
            rows.append([rec["model"], f"`{name}`", (described.get(name) or {}).get("condition") or MISSING,
                         fmt((described.get(name) or {}).get("estimate")), fmt_ci(low, high),
                         f"{level:.0%}" if level else MISSING])
    if not rows:
        return []
    return ["Contrasts (each must lie above the rule's bound):", "",
            md_table(["model", "contrast", "condition", "estimate", "CI", "level"], rows), ""]


def _short_explanation(rec: dict[str, Any]) -> str:
    text = rec.get("explanation") or ""
    prefix = f"{rec['verdict']}: "
    return text.removeprefix(prefix)


def _verdict_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict in ("PASS", "FAIL") else verdict


def effect_legend(records: Sequence[dict[str, Any]]) -> str:
    """``symbol: label`` for each effect type among ``records``, in first-seen order (the matrix's legend)."""
    names = dict.fromkeys(r.get("effect_type") for r in records if r.get("effect_type") in EFFECT_TYPES)
    return "; ".join(f"{EFFECT_TYPES[n].symbol}: {EFFECT_TYPES[n].label}" for n in names)
