"""The behavioural experiment layer: named conditions, cached batched runs, transfer T (DESIGN §4.3–4.8).

Modules: :mod:`~harness.transfer.conditions` (conditions as data and the catalogue), :mod:`~harness.transfer.outcomes` (typed results), :mod:`~harness.transfer.runner`
(generation, cache, scoring), :mod:`~harness.transfer.estimate` (T and step CIs),
:mod:`~harness.transfer.disruption` (first-step KL of a patch: its disruption size). Import from here; pairs and
their order come from :mod:`harness.prompts.pairing`.

Vocabulary
----------
- A :class:`~harness.prompts.pairing.TransferPair` is a recursive prompt A and a baseline prompt B with exactly equal token counts
  under the model's tokenizer (BOS included, so positions align one to one), optionally with a second
  baseline B' of the same length (the cross-baseline donor) and a second recursive prompt A' of A's length
  (the reverse patch's same-length recursive donor).
- A :class:`Condition` is model-independent data: which prompt of the pair is the recipient, which the
  donor, and what is patched (KV over a :class:`LayerSet` and token :class:`~harness.engine.patch_specs.Span`, with
  α, components and a control; or a ``v_proj`` / residual activation patch). :meth:`Condition.patch_for`
  resolves it against a model into the exact :class:`~harness.engine.patch_specs.KVPatchSpec` /
  :class:`~harness.engine.patch_specs.ActivationPatchSpec` that runs. The catalogue below names the suite's
  conditions; :func:`kv_condition` and :func:`activation_condition` build new ones (layer ranges, token
  spans, the peak zone, explicit positions per pair).
- :func:`run_condition` generates one continuation per (pair, sample) with :func:`harness.engine.generation.generate`
  in work units (runs of ``--batch-size`` continuations counted from the request's first pair, each generated as
  one batch per patch spec), scores it with :func:`harness.behaviour.score_continuations` (generated tokens only) and
  returns typed :class:`PairOutcome` s. Each pair's outcome is cached on disk through
  :class:`~harness.runtime.measurement_store.MeasurementStore`, keyed by the model identity, the pair id (it seeds
  the order-ablation and random controls), the recipient and donor texts, the resolved patch spec, the decoding
  regime, the capture spec (by default V at the early and late layers, :func:`standard_capture`), a
  fingerprint of the engine source read at import and the unit it was computed in; so claims that ask a condition
  for the same run of pairs compute it once per model, and re-runs are free. The cache holds continuations, not
  scores: each run scores the texts with the current scorers (each distinct text once per process), so a scorer
  change never needs regeneration. Greedy continuations depend on batch composition only at numerical near-ties
  (top-2 logit gap < 1e-4, see ``tests/parity/test_generation.py``) and their captured V only to rounding; the unit
  in the key makes even that impossible: an outcome is the same bytes whichever claim, shard or order computed it
  (docs/SCALE_OUT.md).
- :func:`estimate_transfer` computes T = (mean score(B⊕A) − mean score(B)) / (mean score(A) − mean score(B)), paired
  by pair, with a bootstrap CI over pairs (:func:`harness.stats.transfer_ci`); T is undefined when the CI
  of the natural gap includes 0, and the result says why.

Pair order (fixed before any data were generated): the bank's recorded recursive/baseline pairs that are
exactly equal in length under the model's tokenizer, then live exact-length matches of the remaining
prompts (:func:`harness.prompts.pairing.equal_length_pairs` with ``rematch=True``); within that list the pairs are
interleaved by the recursive prompt's level (L1, L2, …, L5, L1, …, each level in pair-id order), so every
prefix of the list covers all levels evenly. A claim uses the first ``planned_n`` pairs (capped by ``--n``)
that have every prompt its conditions need.
"""

from harness.transfer.conditions import (
    ALPHAS, CATALOGUE, CROSS_BASELINE, KV_MAIN, KV_SINGLE_LATE, NATURAL_BASELINE, NATURAL_RECURSIVE, ORDER_ABLATION,
    RANDOM_NORM_MATCHED, REVERSE, REVERSE_RANDOM, REVERSE_RECURSIVE_DONOR, V_PATCH_LATE, Condition, Intervention,
    LayerSet, activation_condition, kv_alpha, kv_condition,
)
from harness.transfer.disruption import first_step_kl, kl_summary
from harness.transfer.estimate import TransferResult, prompt_clusters, estimate_transfer, transfer_difference, transfer_step_cis
from harness.transfer.outcomes import ConditionRun, Continuation, PairOutcome
from harness.transfer.runner import NOT_IN_ENGINE_KEY, engine_fingerprint, run_condition, standard_capture

__all__ = [
    "ALPHAS", "CATALOGUE", "CROSS_BASELINE", "NOT_IN_ENGINE_KEY", "KV_MAIN", "KV_SINGLE_LATE", "NATURAL_BASELINE",
    "NATURAL_RECURSIVE", "ORDER_ABLATION", "RANDOM_NORM_MATCHED", "REVERSE", "REVERSE_RANDOM",
    "REVERSE_RECURSIVE_DONOR", "V_PATCH_LATE", "Condition", "ConditionRun",
    "Continuation", "Intervention", "LayerSet", "PairOutcome", "TransferResult",
    "activation_condition", "engine_fingerprint", "first_step_kl", "kl_summary", "kv_alpha", "kv_condition", "prompt_clusters",
    "estimate_transfer", "run_condition", "standard_capture", "transfer_difference", "transfer_step_cis",
]
