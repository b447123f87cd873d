"""The registered behavioural regime: how behavioural claims decode (:data:`BEHAVIOUR_DECODING`) and which score
decides them (:data:`BEHAVIOUR_SCORE`). One room that the registry (:mod:`harness.registry.claims`), the
behaviour score's validation (:mod:`harness.behaviour.validation`), the scorer corpus
(:mod:`harness.transfer.scorer_corpus`) and the transfer estimates read, so no measurement imports the registry
to learn it."""

from __future__ import annotations

from harness.foundation.decoding import DecodingRegime

__all__ = ["BEHAVIOUR_DECODING", "BEHAVIOUR_SCORE", "MIN_NATURAL_GAP"]

BEHAVIOUR_DECODING = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=48, min_new_tokens=16)
"""Registered before any patched continuation was generated (2026-11-22); EOS suppression on the first 16 steps added
2026-12-05 (issue 10), before any continuation under it existed: SmolLM2-Instruct fed raw text emitted EOS first in
31 % of natural baselines and 60–70 % of α ∈ {.25, .5, .75} runs, so empty texts counted as outcomes and the α curve
was a step at α = 1. Remedy chosen over the chat template because a template changes the prompt tokens every
R_V / patch position refers to, and would apply to instruct models only; 16 tokens (a third of the budget, about a
dozen words) give the scorer a sentence to judge while leaving the model's own EOS free afterwards. The empty share
per condition stays in every record (empty can still arise from other special tokens). Why greedy with a repetition penalty
rather than seeded sampling at T = 0.7 with k = 4: (1) plain greedy loops on the small CPU-tier models (about
half of 48-token continuations have distinct-2 < 0.5, docs/METHODS.md §5), and a penalty of 1.2 (the CTRL paper's
value, Keskar et al. 2019) breaks such loops; (2) it is deterministic, so every condition of a pair is compared
without sampling noise and one continuation per pair suffices, where sampling needs k ≥ 4; (3) the suite's
~850 continuations per model then fit the CPU budget (issue 6: both embedded models in under 40 minutes on
two cores), which k = 4 sampling (~3,400 per model) does not."""

BEHAVIOUR_SCORE = "classifier_gated"
"""The :class:`harness.behaviour.BehaviourScore` field that decides behavioural claims: the degeneration-gated P(recursive | text) of
the frozen classifier (issue 10; it replaced the gated embedding margin, which word salad and random-KV gibberish
reached). The other scores are reported beside it but never decide."""

MIN_NATURAL_GAP = 0.10
"""Registered 2026-12-07 (issue 22), before any claim ran on the content-labelled score: a transfer T of the
registered score is defined only when the CI of the natural donor − recipient gap (at the claim's CI level) lies wholly beyond 0.10
(score units: P(recursive) points) on one side of 0. A tenth of the score's range is the smallest gap at which
"the donor's own continuations are recursive and the recipient's are not" can be said of the model at all; below
it T would be a ratio over a noise-sized denominator, and every transfer claim on the model is INCONCLUSIVE with that
reason (DESIGN §4.7)."""
