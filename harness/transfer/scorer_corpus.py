"""The model-generated part of the behaviour classifier's corpus (:mod:`harness.behaviour.corpus`), and the command
that writes the whole corpus::

    python -m harness.transfer.scorer_corpus [--models M ...] [--items-dir DIR] [--out FILE]

It lives with the behavioural experiments because it runs them (the engine, the registered decoding regime and the
condition catalogue); the corpus module itself only defines items, the split and the file format.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.behaviour.corpus import CORPUS_PATH, CorpusItem, split_of, write_corpus
from harness.behaviour.negatives import synthetic_items
from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING
from harness.foundation.seeds import derive_seed
from harness.models import load_model
from harness.prompts import load_bank
from harness.prompts.pairing import make_pair, transfer_pairs
from harness.runtime.measurement_store import MeasurementStore

__all__ = ["build_corpus", "generate_model_items", "main"]


def generate_model_items(model: str, *, run_seed: int = 0, store: Any = None) -> list[CorpusItem]:
    """The generated items of one model (see the module docstring), decoded under the registered behavioural
    regime with the claims' default run seed, through ``cache`` (a :class:`~harness.runtime.measurement_store.MeasurementStore`,
    so the claims can reuse these continuations)."""
    from harness.transfer import CROSS_BASELINE, NATURAL_BASELINE, NATURAL_RECURSIVE, RANDOM_NORM_MATCHED, run_condition

    lm = load_model(model, device="cpu")
    bank = load_bank()
    store = store or MeasurementStore()
    pairs = transfer_pairs(lm, bank)
    with_other = [p for p in pairs if p.other_baseline is not None]
    anchor = bank.group("recursive")[0]
    offtopic = [make_pair(lm, anchor, p, pair_id=f"offtopic:{p.id}", unmatched=True)
                for group in ("grounding", "long_control") if group in bank.groups for p in bank.group(group)]

    def texts(pairs_: Sequence[Any], condition: Any) -> list[tuple[str, str]]:
        run = run_condition(lm, pairs_, condition, decoding=BEHAVIOUR_DECODING, run_seed=run_seed, store=store)
        return [(o.recipient_id, s.text) for o in run.outcomes for s in o.samples]

    items: list[CorpusItem] = []
    for source, label, runs in (
        ("natural_recursive", 1, texts(pairs, NATURAL_RECURSIVE)),
        ("natural_baseline", 0, texts(pairs, NATURAL_BASELINE)),
        ("cross_baseline_patch", 0, texts(with_other, CROSS_BASELINE)),
        ("random_kv_patch", 0, texts(pairs, RANDOM_NORM_MATCHED)),
        ("offtopic_natural", 0, texts(offtopic, NATURAL_BASELINE)),
    ):
        seen: set[str] = set()
        for unit, text in runs:
            if unit in seen:  # a prompt in two pairs: its natural continuation once
                continue
            seen.add(unit)
            items.append(CorpusItem(f"{model}/{source}/{unit}", text, label, source, model, unit, split_of(unit)))
    return items


def build_corpus(models: Sequence[str], items_dir: Path | None, out: Path) -> int:
    """Write the classifier's corpus to ``out``: each model's generated items (read from ``items_dir/<model>.jsonl``
    when that file exists, else generated) and the synthetic negatives made from its natural recursive texts, per
    split. Returns the exit status (0)."""
    items: list[CorpusItem] = []
    for model in models:
        prepared = items_dir / f"{model}.jsonl" if items_dir else None
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
    sha = write_corpus(items, out)
    print(f"wrote {len(items)} items to {out} (sha256 {sha})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.transfer.scorer_corpus",
                                     description="generate the behaviour classifier's labelled corpus on the embedded models")
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--items-dir", type=Path, help="read each model's generated items from DIR/<model>.jsonl when present")
    parser.add_argument("--out", type=Path, default=CORPUS_PATH)
    args = parser.parse_args(argv)
    return build_corpus(args.models, args.items_dir, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
