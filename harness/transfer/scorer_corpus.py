"""The model-generated texts of the behaviour score's corpus (:mod:`harness.behaviour.corpus`)::

    python -m harness.transfer.scorer_corpus [--models M ...] [--out FILE]

Continuations of each embedded model for the corpus prompts (``prompts/scorer-corpus/``, a bank disjoint from the
claims' bank), paired recursive/baseline by nearest token length, under the registered behavioural regime and the
claims' default run seed, in the conditions whose outputs the claims score: natural recursive and baseline, the main
KV patch, α = 0.5, the late-layer V patch, norm-matched random K/V and a cross-baseline donor. Each text gets an
opaque id (:func:`harness.behaviour.annotation.opaque_id`) for the blind annotation sheet; its provenance stays in
the file written here. It lives with the behavioural experiments because it runs them; labelling, assembling and
training read the file and need no model (``python -m harness.behaviour``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from harness.behaviour.annotation import opaque_id
from harness.behaviour.corpus import MODEL_TEXTS_PATH
from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING
from harness.models import load_model
from harness.prompts import load_bank
from harness.prompts.loading import DEFAULT_BANK_DIR
from harness.prompts.pairing import nearest_length_pairs
from harness.runtime.measurement_store import MeasurementStore

__all__ = ["CORPUS_BANK_DIR", "corpus_conditions", "generate_model_texts", "main"]

CORPUS_BANK_DIR = DEFAULT_BANK_DIR / "scorer-corpus"
"""The corpus prompts (never read by a claim: the claims' bank is the top level of ``prompts/``)."""


def corpus_conditions() -> tuple:
    """The conditions whose continuations enter the corpus (see the module docstring)."""
    from harness.transfer import (
        CROSS_BASELINE,
        KV_MAIN,
        NATURAL_BASELINE,
        NATURAL_RECURSIVE,
        RANDOM_NORM_MATCHED,
        V_PATCH_LATE,
        kv_alpha,
    )

    return (NATURAL_RECURSIVE, NATURAL_BASELINE, KV_MAIN, kv_alpha(0.5), V_PATCH_LATE, RANDOM_NORM_MATCHED,
            CROSS_BASELINE)


def generate_model_texts(model: str, *, bank_dir: Path = CORPUS_BANK_DIR, run_seed: int = 0,
                         store: MeasurementStore | None = None) -> list[dict[str, str]]:
    """The corpus texts of one model: ``{"id", "model", "condition", "pair_id", "recipient_id", "donor_id",
    "text"}`` per continuation (see the module docstring)."""
    from harness.transfer import run_condition

    lm = load_model(model, device="cpu")
    pairs = nearest_length_pairs(lm, load_bank(bank_dir))
    rows: list[dict[str, str]] = []
    for condition in corpus_conditions():
        run = run_condition(lm, pairs, condition, decoding=BEHAVIOUR_DECODING, run_seed=run_seed,
                            store=store or MeasurementStore(mode="off"))
        for outcome in run.outcomes:
            for sample in outcome.samples:
                key = f"{model}/{condition.name}/{outcome.pair_id}/{sample.sample_index}"
                rows.append({"id": opaque_id(key), "model": model, "condition": condition.name,
                             "pair_id": outcome.pair_id, "recipient_id": outcome.recipient_id,
                             "donor_id": outcome.donor_id, "text": sample.text})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.transfer.scorer_corpus",
                                     description="generate the behaviour score's corpus texts on the embedded models")
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--out", type=Path, default=MODEL_TEXTS_PATH)
    args = parser.parse_args(argv)
    rows = [row for model in args.models for row in generate_model_texts(model)]
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} texts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
