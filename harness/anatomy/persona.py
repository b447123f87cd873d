"""The persona-signature experiment (DESIGN §5) and its design checks.

Each item is a system prompt (one of several wordings of a persona) followed by a user prompt, as plain text with
no chat template: ``encode(system + "\\n\\n") + encode(user, no special tokens)``, so the user turn starts at the
same position under every persona and wording when the system prompts have equal token counts. Its feature is the
cached V at one layer averaged over the user-turn positions. Persona identity is read back by nearest centroid
(Euclidean) trained on other wordings and other user prompts (:func:`nearest_centroid_held_out`), and the same
pipeline runs on a random-weight copy of the model (:func:`random_weight_copy`) and on token lengths alone: a
random network's V still carries which tokens preceded, so only the margin over the copy is evidence of a learned
persona representation.

The design is checked before anything is decided (:func:`persona_design_problem`): two or more personas, each
with two or more wordings, two or more user prompts, and system segments of one token count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.anatomy.probes import prefill_rows, stored_measurement
from harness.engine import kvcache
from harness.engine.tokens import encode
from harness.models import LoadedModel
from harness.models.random_weights import random_weight_copy
from harness.prompts import Prompt
from harness.runtime.measurement_store import MeasurementStore
from harness.stats import permutation_test_paired, proportion_ci, t_interval

SYSTEM_SEPARATOR = "\n\n"
"""Text between a persona's system prompt and the user prompt (part of the system segment)."""


def persona_items(prompts: Sequence[Prompt], per_cell: int) -> list[Prompt]:
    """The first ``per_cell`` user prompts (in the order given) of every (persona, wording) cell, cells sorted."""
    cells: dict[tuple[str, str], list[Prompt]] = defaultdict(list)
    for p in prompts:
        cells[(p.persona or "", p.wording)].append(p)
    return [p for key in sorted(cells) for p in cells[key][:per_cell]]


def persona_design_problem(prompts: Sequence[Prompt], system_tokens: Sequence[int]) -> str | None:
    """Why the held-out-wording design cannot run on these items, or None: fewer than two personas or two user
    prompts, a persona with one wording, or system segments of different token counts (length alone could then
    identify the persona)."""
    wordings: dict[str, set[str]] = defaultdict(set)
    for p in prompts:
        wordings[p.persona or ""].add(p.wording)
    if len(wordings) < 2:
        return f"{len(wordings)} persona(s); identity needs two or more"
    if len({p.text for p in prompts}) < 2:
        return "one user prompt; training on other user prompts needs two or more"
    single = sorted(name for name, ws in wordings.items() if len(ws) < 2)
    if single:
        return (f"persona(s) {', '.join(single)} have one wording of the system prompt; testing on a held-out "
                "wording needs two or more (tag persona prompts wording:<name>)")
    if len(set(system_tokens)) != 1:
        return (f"system segments differ in token count under this tokenizer ({sorted(set(system_tokens))}), so "
                "length alone could identify the persona")
    return None


def persona_tokens(tokenizer: Any, system: str, user: str) -> tuple[list[int], int]:
    """Token ids of ``system + SYSTEM_SEPARATOR`` (with the tokenizer's special tokens) then ``user`` (without),
    and the number of system-segment tokens (the user turn starts there)."""
    head = encode(tokenizer, system + SYSTEM_SEPARATOR)
    tail = list(tokenizer(user, add_special_tokens=False)["input_ids"])
    if not tail:
        raise ValueError(f"user prompt {user[:40]!r} has no tokens")
    return head + tail, len(head)


def persona_features(
    lm: LoadedModel, prompts: Sequence[Prompt], layer: int, *, batch_size: int = 8
) -> tuple[np.ndarray, list[int], list[int]]:
    """Per prompt, the cached V at ``layer`` averaged over the user-turn positions (``[n, n_kv_heads·head_dim]``).

    Also returns each prompt's system-segment token count and the number of user-turn positions the layer
    no longer held (sliding-window eviction; those are left out of the mean).
    """
    if any(p.system is None for p in prompts):
        raise ValueError("persona_features needs prompts with a system prompt")
    rows = [persona_tokens(lm.tokenizer, p.system or "", p.text) for p in prompts]
    features, evicted = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        state = prefill_rows(lm, [ids for ids, _ in chunk])
        _, values = kvcache.layer_kv(state, layer)
        held_from, _ = kvcache.held_range(state, layer)
        for b, (ids, n_system) in enumerate(chunk):
            slots = [state.pads[b] + p - held_from for p in range(n_system, len(ids))]
            kept = [s for s in slots if s >= 0]
            evicted.append(len(slots) - len(kept))
            if not kept:
                raise ValueError(f"layer {layer} holds none of prompt {prompts[start + b].id!r}'s user-turn positions")
            v = values[b][:, kept, :].float()  # [n_kv, T, head_dim]
            features.append(v.permute(1, 0, 2).reshape(len(kept), -1).mean(dim=0).cpu().numpy())
    return np.stack(features).astype(np.float64), [n for _, n in rows], evicted


def measure_persona_features(
    lm: LoadedModel, prompts: Sequence[Prompt], layer: int, *, store: MeasurementStore | None = None,
    random_weights_seed: int | None = None,
) -> dict[str, Any]:
    """:func:`persona_features` as builtins: ``{"features": [[...]], "system_tokens": [...], "user_tokens": [...],
    "evicted": [...]}``; with ``random_weights_seed``, measured on :func:`random_weight_copy` of ``lm`` (built only
    when the measurement is not cached yet)."""

    def compute() -> dict[str, Any]:
        model = lm if random_weights_seed is None else random_weight_copy(lm, random_weights_seed)
        feats, system_tokens, evicted = persona_features(model, prompts, layer)
        user_tokens = [len(lm.tokenizer(p.text, add_special_tokens=False)["input_ids"]) for p in prompts]
        return {"features": feats.tolist(), "system_tokens": system_tokens, "user_tokens": user_tokens,
                "evicted": evicted}

    params = {"layer": layer, "separator": SYSTEM_SEPARATOR, "random_weights_seed": random_weights_seed}
    return stored_measurement(lm, "anatomy_persona", prompts, params, store, compute, __name__)


def nearest_centroid_held_out(
    features: np.ndarray, labels: Sequence[str], factors: Sequence[Sequence[str]]
) -> list[str]:
    """Held-out nearest-centroid predictions (Euclidean), one per row, in row order.

    Each row carries a tuple of factor values (e.g. ``(wording, user)``). For each distinct tuple, its rows are
    predicted from class centroids computed only on the rows that share **no** factor value with it (no row of
    the same wording, none of the same user); a row gets the class of the nearest centroid (ties: the first
    class in sorted order). With one factor this is leave-one-group-out.

    Raises:
        ValueError: shapes disagree, or some class has no training row for some held-out tuple.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels) or len(labels) != len(factors):
        raise ValueError(f"need features [n, d] with n labels and n factor tuples, got {x.shape}, {len(labels)}, "
                         f"{len(factors)}")
    keys = [tuple(f) for f in factors]
    if len({len(k) for k in keys}) > 1 or not keys or not keys[0]:
        raise ValueError("every row needs the same, non-zero number of factor values")
    classes = sorted(set(labels))
    label_arr = np.asarray(labels)
    columns = [np.asarray([k[i] for k in keys]) for i in range(len(keys[0]))]
    predictions: list[str] = [""] * len(labels)
    for key in sorted(set(keys)):
        held_out = np.all([col == value for col, value in zip(columns, key)], axis=0)
        disjoint = np.all([col != value for col, value in zip(columns, key)], axis=0)
        centroids = []
        for c in classes:
            train = disjoint & (label_arr == c)
            if not train.any():
                raise ValueError(
                    f"class {c!r} has no row that shares no factor with {key!r}; its centroid is undefined"
                )
            centroids.append(x[train].mean(axis=0))
        distances = np.linalg.norm(x[held_out][:, None, :] - np.stack(centroids)[None, :, :], axis=-1)
        for row, choice in zip(np.flatnonzero(held_out), distances.argmin(axis=1)):
            predictions[row] = classes[int(choice)]
    return predictions


@dataclass(frozen=True)
class PersonaSignature:
    """Held-out persona identification by the trained model, random-weight copies of it and token lengths alone.

    Every item (persona × wording × user prompt) is predicted once, from centroids of items of *other* wordings
    and *other* user prompts (:func:`nearest_centroid_held_out` with factors ``(wording, user)``), so the
    system-prompt tokens of a test item never occur in its training set. ``predicted`` comes from the trained
    model's features, ``random_predicted`` (one tuple per copy) from the same pipeline on random-weight copies,
    ``length_predicted`` from the token-length features (system-segment and user token counts) alone.
    """

    labels: tuple[str, ...]
    wordings: tuple[str, ...]
    predicted: tuple[str, ...]
    random_predicted: tuple[tuple[str, ...], ...]
    length_predicted: tuple[str, ...]

    @property
    def n(self) -> int:
        """Items predicted."""
        return len(self.labels)

    @property
    def chance(self) -> float:
        """1 / number of personas."""
        return 1.0 / len(set(self.labels))

    @property
    def cells(self) -> list[tuple[str, str]]:
        """The (persona, wording) cells, sorted: the units the decision resamples (their items share one system
        prompt, so their predictions are not independent)."""
        return sorted(set(zip(self.labels, self.wordings)))

    def accuracy(self, predicted: Sequence[str]) -> float:
        """Fraction of items whose persona ``predicted`` names."""
        return float(np.mean([a == b for a, b in zip(predicted, self.labels)]))

    def cell_accuracy(self, predicted: Sequence[str]) -> np.ndarray:
        """Accuracy of ``predicted`` within each of :attr:`cells`, in that order (fraction of the cell's items)."""
        hits = np.array([a == b for a, b in zip(predicted, self.labels)], dtype=np.float64)
        keys = list(zip(self.labels, self.wordings))
        return np.array([hits[[k == cell for k in keys]].mean() for cell in self.cells])


def center_by(features: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """``features`` minus the mean row of its group (label-free: e.g. one user prompt's mean over every persona
    and wording, which removes what the user text alone puts into the features)."""
    x = np.asarray(features, dtype=np.float64)
    keys = np.asarray(groups)
    out = x.copy()
    for key in set(groups):
        rows = keys == key
        out[rows] -= x[rows].mean(axis=0)
    return out


def persona_signature(
    features: np.ndarray, random_features: Sequence[np.ndarray], length_features: np.ndarray, labels: Sequence[str],
    wordings: Sequence[str], users: Sequence[str],
) -> PersonaSignature:
    """The held-out predictions of :class:`PersonaSignature` on the same items (rows in the same order).

    Every feature set is first centred per user prompt (:func:`center_by`): in a balanced design each user
    prompt occurs under every persona and wording, so its mean carries no persona, while its offset from the
    other user prompts would otherwise move all items of a held-out user towards one centroid."""
    factors = list(zip(wordings, users))

    def predict(x: np.ndarray) -> tuple[str, ...]:
        return tuple(nearest_centroid_held_out(center_by(x, users), labels, factors))

    return PersonaSignature(
        tuple(labels), tuple(wordings), predict(features), tuple(predict(f) for f in random_features),
        predict(length_features),
    )


@dataclass(frozen=True)
class PersonaDecision:
    """The numbers the persona_signature rule judges (accuracies are fractions of items, in [0, 1]).

    Per (persona, wording) cell c: a_c = the model's accuracy, r_c = the mean accuracy of the random-weight
    copies, d_c = a_c − r_c. ``estimate`` = mean of d_c over cells (= the item-level accuracy difference when
    cells have equal sizes); ``ci`` its Student t interval over cells; ``p_value`` the intersection–union p of
    the two one-sided claims the rule needs, each an exact sign-flip permutation test over cells (Monte Carlo
    beyond 2^13 cells): a_c above chance 1/k, and a_c above r_c. The larger p keeps the level without
    correction.
    """

    estimate: float
    ci: tuple[float, float]
    p_value: float
    details: dict[str, Any]


def persona_decision(signature: PersonaSignature, ci_level: float, *, rng: int = 0) -> PersonaDecision:
    """The rule's inputs and the report's details from ``signature``: chance, the model's item accuracy with a
    Wilson CI (for reading only: the items of a cell share one system prompt and are not independent), each
    copy's accuracy, the length-only baseline, per-cell accuracies and both p-values. ``rng`` seeds the
    permutation test when it is not exact."""
    if len(signature.cells) < 2 or not signature.random_predicted:
        raise ValueError("persona_decision needs two or more (persona, wording) cells and one or more random copies")
    real = signature.cell_accuracy(signature.predicted)
    rand = np.stack([signature.cell_accuracy(p) for p in signature.random_predicted]).mean(axis=0)
    chance = np.full_like(real, signature.chance)
    above_chance = permutation_test_paired(real, chance, alternative="greater", rng=rng).p_value
    above_random = permutation_test_paired(real, rand, alternative="greater", rng=rng).p_value
    n, hits = signature.n, round(signature.accuracy(signature.predicted) * signature.n)
    details = {
        "chance": signature.chance,
        "cells": len(signature.cells),
        "accuracy": signature.accuracy(signature.predicted),
        "accuracy_wilson_ci_items": list(proportion_ci(hits, n, ci_level)),
        "random_weights_copies": len(signature.random_predicted),
        "random_weights_accuracy": [signature.accuracy(p) for p in signature.random_predicted],
        "length_only_accuracy": signature.accuracy(signature.length_predicted),
        "p_above_chance": above_chance, "p_above_random_weights": above_random,
        "cell_accuracy": {f"{c[0]}/{c[1]}": float(a) for c, a in zip(signature.cells, real)},
        "random_weights_cell_accuracy": {f"{c[0]}/{c[1]}": float(a) for c, a in zip(signature.cells, rand)},
        "confusion": {f"{a}->{b}": sum(x == a and y == b for x, y in zip(signature.labels, signature.predicted))
                      for a in sorted(set(signature.labels)) for b in sorted(set(signature.labels))},
    }
    return PersonaDecision(float((real - rand).mean()), t_interval(real - rand, ci_level),
                           max(above_chance, above_random), details)
