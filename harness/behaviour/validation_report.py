"""The behaviour score's validation record on disk: ``reports/scorer-validation/validation.json`` and ``README.md``.

Computed once per frozen artefact (``python -m harness.behaviour validate``): the leave-one-source-out folds of
:func:`harness.behaviour.validation.leave_one_source_out`, the registered targets met or missed per fold, and the
frozen score on the fixture sets that no fit sees (``tests/data/behaviour/*.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.behaviour.corpus import CORPUS_PATH, corpus_sha256, read_corpus, read_texts
from harness.behaviour.validation import TARGETS, leave_one_source_out, score_fixture_set

__all__ = ["validation_markdown", "validation_record", "write_validation"]


def validation_record(fixtures: Path) -> dict[str, Any]:
    """The whole record (see the module docstring) for the committed corpus and artefact."""
    from harness.behaviour.classifier import ARTEFACT_VERSION, THRESHOLD, load_classifier
    from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING

    if load_classifier().corpus_sha256 != corpus_sha256(CORPUS_PATH):
        raise ValueError("the frozen classifier was not trained on the committed corpus; run "
                         "`python -m harness.behaviour train` first")
    return {
        "classifier_version": ARTEFACT_VERSION,
        "threshold": THRESHOLD,
        "decoding_of_model_texts": BEHAVIOUR_DECODING.describe(),
        "corpus_sha256": corpus_sha256(CORPUS_PATH),
        "targets": TARGETS,
        "leave_one_source_out": leave_one_source_out(read_corpus(CORPUS_PATH)),
        "fixture_sets": {str(path.relative_to(fixtures).with_suffix("")): score_fixture_set(read_texts(path))
                         for path in sorted(fixtures.rglob("*.jsonl"))},
    }


def _pct(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "–"
    low, high = rate["ci"]
    return f"{rate['rate']:.2f} [{low:.2f}, {high:.2f}] ({rate['k']}/{rate['n']})"


def _met(flag: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "undefined"}[flag]


def validation_markdown(record: dict[str, Any]) -> str:
    """The README of the record: one table of folds, one of fixture sets, with Wilson / bootstrap 95 % CIs."""
    t = record["targets"]
    lines = [
        "# Behaviour score validation",
        "",
        f"Classifier version {record['classifier_version']}, threshold {record['threshold']}, corpus sha256 "
        f"`{record['corpus_sha256'][:12]}`. Model texts decoded under: {record['decoding_of_model_texts']}.",
        "Every number below is measured on texts the scoring fit never saw (docs/METHODS.md §6).",
        "",
        f"Registered targets (before validation): recall ≥ {t['recall_min']} with false-positive rate ≤ {t['fpr_max']} "
        f"at the registered threshold, AUROC ≥ {t['auroc_min']}, false-positive rate ≤ {t['topic_matched_fpr_max']} on "
        "topic-matched non-recursive texts, on each held-out source.",
        "",
        "## Leave one source out",
        "",
        "| held-out source | n (rec / not) | AUROC [95 % CI] | recall | FPR, all negatives | FPR, disruption | "
        "FPR, topic-matched | recall at FPR ≤ 0.05 | borderline called recursive | targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source, fold in record["leave_one_source_out"].items():
        a = fold["auroc"]
        au = "–" if a["auroc"] is None else f"{a['auroc']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"
        r_at = "–" if fold["recall_at_fpr_0.05"] is None else f"{fold['recall_at_fpr_0.05']:.2f}"
        b = fold["borderline"]
        bl = f"{b['called_recursive']:.2f} of {b['n']}" if b["n"] else "none"
        met = ", ".join(f"{k} {_met(v)}" for k, v in fold["targets"].items())
        lines.append(f"| {source} | {fold['n_recursive']} / {fold['n_not_recursive']} | {au} | {_pct(fold['recall'])} | "
                     f"{_pct(fold['fpr_all_negatives'])} | {_pct(fold['fpr_disruption'])} | "
                     f"{_pct(fold['fpr_topic_matched'])} | {r_at} | {bl} | {met} |")
    lines += ["", "Per kind (condition, style or synthetic kind) in each held-out fold: share called recursive among "
              "texts labelled recursive (recall) and not recursive (FPR), mean registered score.", "",
              "| held-out source | kind | n rec / not | recall | FPR | mean score |", "|---|---|---|---|---|---|"]
    for source, fold in record["leave_one_source_out"].items():
        for kind, k in fold["by_kind"].items():
            rec = "–" if k["recall"] is None else f"{k['recall']:.2f}"
            fpr = "–" if k["fpr"] is None else f"{k['fpr']:.2f}"
            lines.append(f"| {source} | {kind} | {k['n_recursive']} / {k['n_not_recursive']} | {rec} | {fpr} | "
                         f"{k['mean_score']:.3f} |")
    lines += ["", "## Fixture sets no fit sees (frozen score)", "",
              "| set | label | called recursive | mean score |", "|---|---|---|---|"]
    for name, by_label in record["fixture_sets"].items():
        for label, entry in by_label.items():
            lines.append(f"| {name} | {label} | {_pct(entry['called_recursive'])} | {entry['mean_score']:.3f} |")
    return "\n".join(lines) + "\n"


READING_FILE = "reading.md"
"""A hand-written reading of the numbers kept beside them (what the score can and cannot carry, what informed what);
appended to the generated README when present."""


def write_validation(out_dir: Path, fixtures: Path) -> dict[str, Any]:
    """Compute the record and write ``validation.json`` and ``README.md`` under ``out_dir`` (the generated tables,
    then :data:`READING_FILE` when it exists); returns the record."""
    record = validation_record(fixtures)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "validation.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    reading = out_dir / READING_FILE
    text = validation_markdown(record) + (f"\n{reading.read_text(encoding='utf-8')}" if reading.is_file() else "")
    (out_dir / "README.md").write_text(text, encoding="utf-8")
    print(text)
    return record
