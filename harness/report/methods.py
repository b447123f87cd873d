"""methods.md: a methods section generated from the claims registry and the run header, as paragraphs a paper can
cite: models (source, weights hash, dtype), prompt bank (groups, counts, hash, pairing rule), decoding regime and
behaviour score, every claim's estimator, decision rule, planned n with its power assumptions and multiplicity
family, and software versions. Definitions of the measurements: docs/METHODS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.foundation.behavioural_regime import MIN_NATURAL_GAP
from harness.registry.reachability import reachability_words
from harness.registry import BEHAVIOUR_DECODING, CLAIMS, MULTIPLICITY_FAMILIES, ClaimSpec, changes_of
from harness.report.numbers import fmt
from harness.report.summary import decoding_regimes, model_order, provenance_of, weights_hash

PAIRING_RULE = (
    "Behavioural claims patch between prompt pairs of one recursive prompt (the donor A) and one baseline prompt (the "
    "recipient B) with exactly equal content-token counts under the model's own tokenizer (no BOS or special tokens), "
    "so every position of the donor's cache aligns with the same position and RoPE phase of the recipient's. The "
    "bank's recorded pairs that are exactly equal under that tokenizer come first (id order), then the remaining "
    "recursive and baseline prompts are matched by exact token count (id order within each count); the pairs are "
    "interleaved by recursion level (L1, L2, …, L5, L1, …) and each claim takes the first planned-n of them, so a "
    "claim's n is the number of exact-length pairs it found, up to its planned n. The cross-baseline control's donor "
    "is the next baseline prompt of the same token count (id order, cyclic). The donor-level trend uses baseline "
    "recipients with a donor of every level at least as long as the recipient (the donor's first tokens).")


def models_paragraphs(records: Sequence[dict[str, Any]], run: dict[str, Any]) -> list[str]:
    """One sentence per model: name, family, source and location, weights hash, dtype, device, attention."""
    out = []
    for model in model_order(records):
        prov = provenance_of(run, model)
        if not prov:
            out.append(f"- `{model}`: no provenance recorded in this run (no record of it loaded the model).")
            continue
        where = ", ".join(f"{k} {prov[k]}" for k in ("location", "revision") if prov.get(k))
        sha = weights_hash(prov)
        out.append(
            f"- `{model}` ({prov.get('family') or 'family unrecorded'} family) was loaded from "
            f"{prov.get('source') or 'an unrecorded source'}" + (f" ({where})" if where else "")
            + (f", weights sha256 `{sha}`" if sha else ", weights hash unrecorded")
            + f", in {prov.get('dtype') or 'an unrecorded dtype'} on {prov.get('device') or 'an unrecorded device'}"
            + (f" with {prov['attn_implementation']} attention" if prov.get("attn_implementation") else "")
            + (", decoding on the fast path (SDPA attention and a static cache where a condition reads no attention "
               "weights; same tokens as the eager path, first-step logits within 1e-4 in float32)"
               if prov.get("decode_path") == "fast" else "") + "."
            + layout_sentence(prov))
    return out


def layout_sentence(prov: dict[str, Any]) -> str:
    """For a model whose layout was proven at load (an inferred layout, or a ``gguf:`` file's row): what was found
    and the invariants that proved it; empty otherwise."""
    proof = prov.get("layout_proof") or {}
    if not prov.get("layout"):
        return ""
    checks = "; ".join(proof.get("checks") or []) or "no checks recorded"
    return (f" Its layout is {prov['layout']}: {proof.get('found') or 'unrecorded'}, V as "
            f"{proof.get('value_layout') or 'unrecorded'} (checks passed on the load-time probe: {checks}).")


def bank_paragraph(records: Sequence[dict[str, Any]], run: dict[str, Any]) -> str:
    """The prompt bank: hash, groups and counts (when the header records them), recorded pairs, pairing rule."""
    sha = run.get("prompt_bank_sha256")
    bank = run.get("prompt_bank") or {}
    text = f"All prompts came from one prompt bank with content sha256 `{sha}` (a hash of every prompt and pair). "
    groups = bank.get("groups") or {}
    if groups:
        text += "It holds " + ", ".join(f"{n} {g}" for g, n in groups.items()) + " prompts"
        levels = bank.get("recursive_levels") or {}
        if levels:
            text += " (recursive by level: " + ", ".join(f"{lv} {n}" for lv, n in levels.items()) + ")"
        pairs = bank.get("recorded_pairs") or {}
        if pairs:
            text += "; recorded pairs: " + ", ".join(f"{n} {k}" for k, n in pairs.items())
        text += ". "
        if bank.get("note"):
            text += f"{bank['note']} "
    else:
        text += "This run's header does not record the bank's group counts (it predates them); the hash identifies it. "
    return text + PAIRING_RULE


def decoding_paragraph(records: Sequence[dict[str, Any]]) -> str:
    """The decoding regime and behaviour score of the behavioural claims."""
    behavioural = [s for s in CLAIMS.values() if s.decoding is not None and any(r["claim"] == s.id for r in records)]
    if not behavioural:
        return "No behavioural claim ran in this run."
    recorded = decoding_regimes(records)
    regimes = list(dict.fromkeys(s.decoding.describe() for s in behavioural if s.decoding))
    text = (f"The {len(behavioural)} behavioural claims of this run decoded every continuation with the registered "
            f"regime: {'; '.join(regimes)} (fixed before any patched continuation was generated; the same regime for "
            "every condition, so conditions differ only by the patch). ")
    if recorded and recorded != regimes:
        text += f"The records name {'; '.join(recorded)}. "
    scores = sorted({s.behaviour_score for s in behavioural if s.behaviour_score})
    return text + (f"Continuations (generated tokens only, never the prompt) were scored with `{', '.join(scores)}`: "
                   "P(recursive | text) from the frozen classifier (version 2, harness.behaviour.classifier) on the "
                   "offline MiniLM embeddings of the text and of its sentences, a self-observation lexicon and text "
                   "measures, trained on texts labelled by their content against a written rubric (two blind passes, "
                   "adjudicated; docs/METHODS.md §6) of which none is a claim's prompt or a continuation a claim "
                   "scores, validated leave-one-source-out in reports/scorer-validation/ (where the registered targets "
                   "it missed are named), set to 0 for empty and degenerate outputs (distinct-2 < 0.5 or a repeated "
                   "stretch over half the words); the embedding margin and lexicon scores are reported beside it and "
                   "never decide. A transfer ratio is defined only where the natural donor − recipient gap's CI "
                   f"lies beyond the registered minimum {MIN_NATURAL_GAP:g}."
                   f" The default regime of the registry is {BEHAVIOUR_DECODING.describe()}.")


def _power_words(spec: ClaimSpec) -> str:
    plan = spec.power
    if plan.coverage_n is not None:
        return f"Coverage: {plan.coverage_n} {spec.n_unit} ({plan.assumptions})."
    parts = "; ".join(f"{p.what}: n = {p.n} ({p.design}, standardized effect {fmt(p.effect)}, one-sided α "
                      f"{p.alpha:.3g}, power {p.power:.3g})" for p in plan.parts)
    reach = reachability_words(spec)
    return (f"Planned n = {spec.planned_n} {spec.n_unit}, the largest n over the rule's parts, each solved for its "
            f"power under the stated assumptions ({plan.assumptions}): {parts}."
            + (f" **{reach[0].upper() + reach[1:]}**: on it this claim is INCONCLUSIVE whatever the data." if reach else ""))


def _family_words(spec: ClaimSpec) -> str:
    if spec.family is None:
        return "Multiplicity: no p criterion; decided on the CI (or the value) alone, in no family."
    fam = MULTIPLICITY_FAMILIES[spec.family]
    return (f"Multiplicity: family '{fam.name}' (familywise α = {fam.familywise_alpha:g}, m = {len(fam.members)}), p criterion "
            f"at α/m = {fam.alpha_per_test:.3g}; {fam.method.capitalize()}-adjusted p reported beside it.")


def claim_paragraph(spec: ClaimSpec) -> str:
    """One claim: statement, estimator, decision rule, planned n and power, multiplicity, and why its version moved
    (:mod:`harness.registry.history`)."""
    tag = "headline claim" if spec.headline else ("engine check" if spec.is_engine_check else "claim")
    return (f"**{spec.title}** (`{spec.id}` v{spec.version}; {tag}, {spec.kind.value}). {spec.statement} "
            f"Estimate: {spec.effect.label} ({spec.effect.symbol}; {spec.effect.units}). Estimator: {spec.estimator} "
            f"Decision rule: {spec.decision_text()} {_power_words(spec)} {_family_words(spec)}"
            + (f" Note: {spec.notes}." if spec.notes else "")
            + "".join(f" Version {c.version} ({c.date}): {c.reason}." for c in changes_of(spec.id)))


def software_paragraph(run: dict[str, Any]) -> str:
    """Commit, seed, packages and platform."""
    git = run.get("git") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (run.get("packages") or {}).items() if v)
    return (f"Code: kvclaims at commit `{git.get('sha') or 'unrecorded'}`"
            + (" with uncommitted changes" if git.get("dirty") else "") + f"; run seed {run.get('seed')} (each claim's "
            "seed is derived from it, the claim id and the model name by sha256). Software: " + (packages or "unrecorded")
            + f"; platform {run.get('platform') or 'unrecorded'}. Command: `{run.get('command')}`.")


def methods_markdown(records: Sequence[dict[str, Any]], run: dict[str, Any]) -> str:
    """methods.md for this run (claims in registry order: those with a row in the run)."""
    present = {r["claim"] for r in records}
    specs = [s for s in CLAIMS.values() if s.id in present]
    claims = [s for s in specs if not s.is_engine_check]
    checks = [s for s in specs if s.is_engine_check]
    families = "; ".join(f"'{f.name}' (α = {f.familywise_alpha:g}, {f.method.capitalize()}): " + ", ".join(f.members)
                         for f in MULTIPLICITY_FAMILIES.values())
    no_p = [s.id for s in specs if s.family is None]
    out = [f"# Methods — run {run.get('run_id')}", "",
           ("Generated from the pre-registered claims registry (`harness/registry`) and this run's header; the "
           "measurements are defined in docs/METHODS.md of the repository at the commit below."), "",
           "## Models", "", *models_paragraphs(records, run), "",
           "## Prompt bank and pairs", "", bank_paragraph(records, run), "",
           "## Decoding and behaviour score", "", decoding_paragraph(records), "",
           "## Claims: estimators, decision rules, planned n", "",
           ("Every rule was fixed in the registry before data were seen; a claim's version changes with anything that "
           "can move its verdict. Verdicts: PASS when every criterion holds, FAIL when one is clearly violated, "
           "INCONCLUSIVE otherwise (a CI straddling its bound, an undefined estimate, or n below the planned n). "
           "Target power is 0.8 for every rule part."), ""]
    out += [line for s in claims for line in (claim_paragraph(s), "")]
    if checks:
        out += ["## Engine checks", "", ("Deterministic invariants of the cache engine, judged on the value without a "
                "CI; they are not claim verdicts."), ""]
        out += [line for s in checks for line in (claim_paragraph(s), "")]
    out += ["## Multiplicity", "",
            f"p criteria are decided at α/m within families fixed in the registry: {families}. Holm-adjusted p-values "
            "within each family and model are reported beside them (family members that did not run count as p = 1); "
            "Holm never exceeds Bonferroni, so a PASS holds under Holm too. Claims without a p criterion, decided on "
            "their CI or value alone and in no family: " + (", ".join(f"`{c}`" for c in no_p) or "none") + ".", "",
            "## Software", "", software_paragraph(run), ""]
    return "\n".join(out)
