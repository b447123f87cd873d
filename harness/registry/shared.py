"""Pieces shared by the claim tables: the behavioural decoding regime and score, recurring estimator text."""

from __future__ import annotations

from typing import Any

from harness.behaviour import BEHAVIOUR_SCORE
from harness.decoding import DecodingRegime

__all__ = ["BEHAVIOUR_DECODING", "BEHAVIOURAL", "RECBASE", "RV_WORDS", "T_WORDS"]

BEHAVIOUR_DECODING = DecodingRegime.greedy_with_penalty(1.2, max_new_tokens=48)
"""Registered before any patched continuation was generated (2026-11-22). Why greedy with a repetition penalty
rather than seeded sampling at T = 0.7 with k = 4: (1) plain greedy loops on the small CPU-tier models (about
half of 48-token continuations have distinct-2 < 0.5, DESIGN §4.6), and a penalty of 1.2 (the CTRL paper's
value, Keskar et al. 2019) breaks such loops; (2) it is deterministic, so every condition of a pair is compared
without sampling noise and one continuation per pair suffices, where sampling needs k ≥ 4; (3) the suite's
~850 continuations per model then fit the CPU budget (issue 6: both embedded models in under 40 minutes on
two cores), which k = 4 sampling (~3,400 per model) does not."""

BEHAVIOURAL: dict[str, Any] = dict(decoding=BEHAVIOUR_DECODING, behaviour_score=BEHAVIOUR_SCORE)
"""The ClaimSpec fields every behavioural claim shares: its decoding regime and deciding score."""

RV_WORDS = ("R_V = PR(V at the model's late layer) / PR(V at its early layer) over the last W = 16 content tokens "
            "of each prompt, eigenvalue PR, uncentered (DESIGN §4.1–4.2)")
"""How R_V is computed, for estimator text."""
T_WORDS = "transfer T (DESIGN §4.8) of the degeneration-gated embedding score"
"""What the transfer T is, for estimator text."""
RECBASE = ("recursive", "baseline")
"""The prompt groups most claims require."""
