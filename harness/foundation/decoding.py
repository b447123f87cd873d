"""The decoding regime (DESIGN §4.6): one frozen value used by the claims registry, the decode loop
(:mod:`harness.engine.generation`), the continuation cache key and the run records.

- greedy: argmax of the (repetition-penalised) scores, one continuation per (pair, condition);
- sampling: softmax(scores / ``temperature``), ``samples_per_pair`` continuations per (pair, condition), each
  (pair, sample index) seeded from the run seed and shared by all conditions (the bootstrap resamples pairs,
  not samples).

``repetition_penalty`` 1.0 means off (CTRL-style: seen tokens' positive scores divided, negative multiplied).
``min_new_tokens`` k > 0 suppresses the model's EOS tokens (score −inf) on the first k decode steps, as transformers'
``min_new_tokens`` does, so no continuation is shorter than k tokens (the empty-continuation remedy of the
behavioural claims, see :data:`harness.foundation.behavioural_regime.BEHAVIOUR_DECODING`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["DecodingMode", "DecodingRegime"]


class DecodingMode(str, Enum):
    """How the next token is chosen from the scores."""

    GREEDY = "greedy"
    SAMPLING = "sampling"


@dataclass(frozen=True)
class DecodingRegime:
    """A decoding regime, a registered parameter of every behavioural claim.

    Attributes:
        mode: greedy or seeded sampling.
        max_new_tokens: the most tokens generated per continuation (EOS included when ``stop_at_eos``).
        temperature: softmax temperature, sampling only (greedy needs the neutral 1.0).
        repetition_penalty: divisor (multiplier for negative scores) of already-seen tokens' scores; 1.0 = off.
        samples_per_pair: continuations per (pair, condition); greedy regimes are deterministic, so 1 suffices.
        stop_at_eos: end a row at the model's EOS token.
        min_new_tokens: decode steps (from the first) on which EOS cannot be chosen; 0 = off.
    """

    mode: DecodingMode = DecodingMode.GREEDY
    max_new_tokens: int = 48
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    samples_per_pair: int = 1
    stop_at_eos: bool = True
    min_new_tokens: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.mode, DecodingMode):
            raise ValueError(f"mode must be a DecodingMode, got {self.mode!r}")
        for name in ("max_new_tokens", "samples_per_pair"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{name} must be a positive int, got {count!r}")
        if isinstance(self.min_new_tokens, bool) or not isinstance(self.min_new_tokens, int) \
                or not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be an int in [0, max_new_tokens={self.max_new_tokens}], "
                             f"got {self.min_new_tokens!r}")
        for name in ("temperature", "repetition_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.mode is DecodingMode.GREEDY and self.temperature != 1.0:
            raise ValueError("temperature applies to sampling only; greedy decoding needs temperature=1.0")

    @classmethod
    def greedy(cls, max_new_tokens: int = 48) -> DecodingRegime:
        """Plain greedy decoding."""
        return cls(DecodingMode.GREEDY, max_new_tokens)

    @classmethod
    def greedy_with_penalty(cls, repetition_penalty: float, max_new_tokens: int = 48,
                            min_new_tokens: int = 0) -> DecodingRegime:
        """Greedy decoding with a repetition penalty (and EOS suppressed on the first ``min_new_tokens`` steps)."""
        return cls(DecodingMode.GREEDY, max_new_tokens, repetition_penalty=repetition_penalty,
                   min_new_tokens=min_new_tokens)

    @classmethod
    def sampling(cls, temperature: float = 0.7, max_new_tokens: int = 48,
                    samples_per_pair: int = 1) -> DecodingRegime:
        """Seeded sampling at ``temperature`` with ``samples_per_pair`` continuations per (pair, condition)."""
        return cls(DecodingMode.SAMPLING, max_new_tokens, temperature=temperature, samples_per_pair=samples_per_pair)

    def describe(self) -> str:
        """One line for reports."""
        if self.mode is DecodingMode.GREEDY:
            text = f"greedy, {self.max_new_tokens} new tokens"
        else:
            text = (f"seeded sampling T = {self.temperature}, k = {self.samples_per_pair} per pair and condition, "
                    f"{self.max_new_tokens} new tokens")
        if self.repetition_penalty != 1.0:
            text += f", repetition penalty {self.repetition_penalty}"
        if self.min_new_tokens:
            text += f", EOS suppressed for the first {self.min_new_tokens} tokens"
        return text
