"""``python -m harness.behaviour``: score texts with the registered scorer, and rebuild / validate the classifier.

- ``score FILE`` (``-`` for stdin): JSON lines with a ``text`` field, or plain text one per line. Prints one JSON
  line per input: ``score`` (the registered degeneration-gated P(recursive)), ``recursive`` (the registered decision,
  score ≥ 0.5), ``classifier_p`` (ungated), the degeneration measures and an ``id`` when the input line had one.
  Offline; runs on a fresh install with the ``embedded`` extra.
- ``corpus``: generate the labelled corpus on the embedded models (minutes per model) and write it.
- ``train``: fit the classifier on the corpus's train split and write the frozen artefact.
- ``validate --model M``: the held-out validation record of one model (``reports/scorer-validation/M.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "read_texts"]


class InputError(ValueError):
    """A malformed input file for ``score``."""


def read_texts(lines: Sequence[str], source: str) -> list[tuple[Any, str]]:
    """``[(id or None, text)]`` from JSON lines with a ``text`` field, or from plain text lines (blank lines skipped).

    The file is JSON lines when its first non-blank line starts with ``{``; then every non-blank line must be a
    JSON object with a string ``text`` (InputError naming the line otherwise)."""
    body = [(n, line.rstrip("\n")) for n, line in enumerate(lines, 1) if line.strip()]
    if not body:
        raise InputError(f"{source}: no text to score")
    if not body[0][1].lstrip().startswith("{"):
        return [(None, text) for _, text in body]
    out = []
    for n, line in body:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError(f"{source}, line {n}: a JSON line needs a string field 'text'")
        out.append((row.get("id"), row["text"]))
    return out


def _score(args: argparse.Namespace) -> int:
    from harness.behaviour import score_continuations

    path = args.file
    try:
        lines = sys.stdin.readlines() if path == "-" else Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    rows = read_texts(lines, "stdin" if path == "-" else path)
    for (row_id, text), s in zip(rows, score_continuations([t for _, t in rows])):
        out: dict[str, Any] = {} if row_id is None else {"id": row_id}
        out |= {"score": s.classifier_gated, "recursive": s.recursive, "classifier_p": s.classifier_p,
                "degenerate": s.degenerate, "empty": s.n_words == 0, "distinct_2": round(s.distinct_2, 6),
                "repeat_share": round(s.repeat_share, 6), "n_words": s.n_words}
        print(json.dumps(out, ensure_ascii=False))
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from harness.behaviour.corpus import CorpusItem, split_of, write_corpus
    from harness.behaviour.negatives import synthetic_items
    from harness.seeds import derive_seed
    from harness.transfer.scorer_corpus import generate_model_items

    items: list[CorpusItem] = []
    for model in args.models:
        prepared = Path(args.items_dir) / f"{model}.jsonl" if args.items_dir else None
        if prepared is not None and prepared.is_file():
            generated = [CorpusItem(**json.loads(line)) for line in prepared.read_text().splitlines() if line.strip()]
        else:
            generated = generate_model_items(model)
        items += generated
        for split in ("train", "heldout"):
            sources = [(i.unit, i.text) for i in generated if i.source == "natural_recursive" and i.split == split]
            made = synthetic_items(sources, derive_seed(0, "negatives", model, split))
            for index, (kind, unit, text) in enumerate(made):
                assert split_of(unit) == split
                items.append(CorpusItem(f"{model}/{kind}/{unit}/{index}", text, 0, kind, model, unit, split))
    sha = write_corpus(items, Path(args.out))
    print(f"wrote {len(items)} items to {args.out} (sha256 {sha})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from harness.behaviour.classifier import ARTEFACT_PATH, train_classifier
    from harness.behaviour.corpus import CORPUS_PATH, corpus_sha256, read_corpus

    artefact = train_classifier(read_corpus(CORPUS_PATH), corpus_sha=corpus_sha256(CORPUS_PATH))
    ARTEFACT_PATH.write_text(json.dumps(artefact, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ARTEFACT_PATH} (trained on {artefact['training']['n_items']} items)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from harness.behaviour.corpus import CORPUS_PATH, read_corpus
    from harness.behaviour.validation import validate_model

    record = validate_model(read_corpus(CORPUS_PATH), args.model)
    out = Path(args.out) / f"{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k] for k in ("auroc_recursive_vs_baseline", "false_positive_rate_disruption",
                                               "true_positive_rate")}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.behaviour", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score texts with the registered scorer (one JSON line per input)")
    score.add_argument("file", help="JSON lines with a 'text' field, or plain text one per line; '-' for stdin")
    corpus = sub.add_parser("corpus", help="generate the classifier's labelled corpus on the embedded models")
    corpus.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    corpus.add_argument("--items-dir", help="read each model's generated items from DIR/<model>.jsonl when present")
    from harness.behaviour.corpus import CORPUS_PATH

    corpus.add_argument("--out", default=str(CORPUS_PATH))
    sub.add_parser("train", help="fit the classifier on the corpus's train split and write the artefact")
    validate = sub.add_parser("validate", help="held-out validation of the registered score on one model")
    validate.add_argument("--model", required=True)
    validate.add_argument("--out", default="reports/scorer-validation")
    args = parser.parse_args(argv)
    handlers = {"score": _score, "corpus": _corpus, "train": _train, "validate": _validate}
    try:
        return handlers[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
