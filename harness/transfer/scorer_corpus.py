"""The model-generated part of the behaviour classifier's corpus (:mod:`harness.behaviour.corpus`).

It lives with the behavioural experiments because it runs them (the engine, the registered decoding regime and the
condition catalogue); the corpus module itself only defines items, the split and the file format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.behaviour.corpus import CorpusItem, split_of
from harness.measurement_cache import MeasurementCache
from harness.models import load_model
from harness.prompts import load_bank
from harness.prompts.pairing import make_pair, transfer_pairs
from harness.registry.claims import BEHAVIOUR_DECODING

__all__ = ["generate_model_items"]


def generate_model_items(model: str, *, run_seed: int = 0, cache: Any = None) -> list[CorpusItem]:
    """The generated items of one model (see the module docstring), decoded under the registered behavioural
    regime with the claims' default run seed, through ``cache`` (a :class:`~harness.measurement_cache.MeasurementCache`,
    so the claims can reuse these continuations)."""
    from harness.transfer import CROSS_BASELINE, NATURAL_BASELINE, NATURAL_RECURSIVE, RANDOM_NORM_MATCHED, run_condition

    lm = load_model(model, device="cpu")
    bank = load_bank()
    cache = cache or MeasurementCache()
    pairs = transfer_pairs(lm, bank)
    with_other = [p for p in pairs if p.other_baseline is not None]
    anchor = bank.group("recursive")[0]
    offtopic = [make_pair(lm, anchor, p, pair_id=f"offtopic:{p.id}", unmatched=True)
                for group in ("grounding", "long_control") if group in bank.groups for p in bank.group(group)]

    def texts(pairs_: Sequence[Any], condition: Any) -> list[tuple[str, str]]:
        run = run_condition(lm, pairs_, condition, decoding=BEHAVIOUR_DECODING, run_seed=run_seed, cache=cache)
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
