"""Typed outcomes of a condition run: continuations with their behaviour scores, per pair and per condition."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.behaviour import BEHAVIOUR_SCORE, BehaviourScore
from harness.transfer.conditions import Condition

__all__ = ["ConditionRun", "Continuation", "PairOutcome"]


@dataclass(frozen=True)
class Continuation:
    """One generated continuation and its behaviour scores (:class:`~harness.behaviour.BehaviourScore`).

    ``v`` maps a captured layer to float32 ``[steps, n_kv_heads·head_dim]`` V of each fed token (step 0 is
    the recipient's last prompt token); ``entropy`` maps a layer to ``[steps, n_heads]`` attention entropy
    in nats. Both are empty unless a capture was requested. Equality (``==``) ignores these two arrays;
    compare them with ``np.array_equal``.
    """

    sample_index: int
    text: str
    generated_ids: tuple[int, ...]
    stopped_at_eos: bool
    min_top2_gap: float
    score: BehaviourScore
    v: dict[int, np.ndarray] = field(default_factory=dict, compare=False)
    entropy: dict[int, np.ndarray] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PairOutcome:
    """A condition's result on one pair: its continuations (one per sample) and what the patch did.

    ``not_applicable``: KV patches only, ``{layer: positions}`` a sliding-window layer no longer held.
    ``intervention_counts``: activation patches only, activation elements changed per phase.
    """

    pair_id: str
    condition: str
    recipient_id: str
    donor_id: str | None
    first_position: int
    samples: tuple[Continuation, ...]
    not_applicable: dict[int, tuple[int, ...]] = field(default_factory=dict)
    intervention_counts: dict[str, int] | None = None

    def score(self, measure: str = BEHAVIOUR_SCORE) -> float:
        """Mean over samples of one :class:`~harness.behaviour.BehaviourScore` field (default: the registered score)."""
        return float(np.mean([getattr(s.score, measure) for s in self.samples]))

    @property
    def degenerate_share(self) -> float:
        """Share of this pair's continuations the degeneration gate marked degenerate."""
        return float(np.mean([s.score.degenerate for s in self.samples]))


@dataclass(frozen=True)
class ConditionRun:
    """All pairs' outcomes for one condition on one model, in pair order."""

    condition: Condition
    model: str
    outcomes: tuple[PairOutcome, ...]

    @property
    def pair_ids(self) -> tuple[str, ...]:
        return tuple(o.pair_id for o in self.outcomes)

    def scores(self, measure: str = BEHAVIOUR_SCORE) -> np.ndarray:
        """Per-pair behaviour score (mean over samples), float64 ``[pairs]``."""
        return np.asarray([o.score(measure) for o in self.outcomes], dtype=np.float64)

    @property
    def degenerate_share(self) -> float:
        """Share of all continuations of this condition marked degenerate (NaN with no outcomes)."""
        flags = [s.score.degenerate for o in self.outcomes for s in o.samples]
        return float(np.mean(flags)) if flags else math.nan

    @property
    def empty_share(self) -> float:
        """Share of all continuations with no words (e.g. the model emitted EOS at once; scored 0, not degenerate)."""
        flags = [s.score.n_words == 0 for o in self.outcomes for s in o.samples]
        return float(np.mean(flags)) if flags else math.nan

    @property
    def n_continuations(self) -> int:
        return sum(len(o.samples) for o in self.outcomes)

    def examples(self, k: int = 3) -> list[str]:
        """The first ``k`` continuations (sample 0 of the first pairs), for the report's Examples section."""
        return [o.samples[0].text for o in self.outcomes[:k]]

    def summary(self, measure: str = BEHAVIOUR_SCORE) -> dict[str, Any]:
        """Builtin summary for claim details: mean scores (gated, raw embedding, raw lexicon), degenerate and empty
        shares, mean distinct-2, counts, and how many pairs had sliding-window positions it could not patch."""
        return {
            "mean_score": float(np.mean(self.scores(measure))) if self.outcomes else None,
            "mean_embedding_raw": float(np.mean(self.scores("embedding_raw"))) if self.outcomes else None,
            "mean_lexicon_raw": float(np.mean(self.scores("lexicon_raw"))) if self.outcomes else None,
            "degenerate_share": self.degenerate_share,
            "empty_share": self.empty_share,
            "mean_distinct_2": float(np.mean(self.scores("distinct_2"))) if self.outcomes else None,
            "n_pairs": len(self.outcomes),
            "n_continuations": self.n_continuations,
            "not_applicable_pairs": sum(1 for o in self.outcomes if o.not_applicable),
        }
