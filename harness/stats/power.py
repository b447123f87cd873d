"""Sample-size planning (statsmodels power) for the pre-registered claims.

A claim's decision has up to two parts, each with its own power requirement:

- a **CI-bound** part ("the whole 95 % CI lies below −1.0"): the bound of a two-sided (1 − a) interval
  beats the threshold exactly when a one-sided test against the threshold at level a/2 rejects, so the
  planned n is the n for that one-sided test with effect (assumed true value − threshold) / SD;
- a **p-value** part ("p < α_test"): the n for a one-sided test of the assumed effect at α_test.

``inflation`` multiplies n for estimators whose sampling variance exceeds that of a mean (e.g. Hedges g:
Var(g) ≈ (1/n₁ + 1/n₂) + g²/(2(n₁ + n₂)), which for equal groups is (1 + g²/8) times the mean-difference
variance). The planned n is the larger of the parts, rounded up. Units: n is per group for two-sample
designs and the number of units (pairs, prompts, blocks) otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
from statsmodels.stats.proportion import proportion_effectsize

Design = Literal["two-sample-t", "one-sample-t", "one-proportion-z", "correlation-fisher-z"]

# Var(atanh ρ̂_Spearman) ≈ 1.06 / (n − 3) (Fieller, Hartley & Pearson 1957).
SPEARMAN_FISHER_VAR = 1.06


@dataclass(frozen=True)
class PowerPart:
    """One power requirement: ``n`` units give ``power`` to reject at one-sided ``alpha`` for ``effect``.

    ``effect`` is standardized: SD units for t designs, Cohen's h for proportions, and the difference of
    Fisher z = atanh(ρ) values for correlations (whose n is the normal-approximation n + 3, with the
    Spearman variance 1.06 / (n − 3)).
    The arguments are checked on construction; ``n`` is solved on first access and cached (solving is
    slow enough that the registry must not do it for every claim at import).
    """

    what: str
    design: Design
    effect: float
    alpha: float
    power: float
    inflation: float = 1.0

    def __post_init__(self) -> None:
        _check(self.design, self.effect, self.alpha, self.power, self.inflation)

    @cached_property
    def n(self) -> int:
        """Planned n in the design's units (per group for two-sample designs), from :func:`solve_n`."""
        return solve_n(self.design, self.effect, self.alpha, self.power, self.inflation)


_DESIGNS = ("two-sample-t", "one-sample-t", "one-proportion-z", "correlation-fisher-z")


def _check(design: Design, effect: float, alpha: float, power: float, inflation: float) -> None:
    if not effect > 0:
        raise ValueError(f"solve_n: standardized effect must be positive, got {effect}")
    if not (0 < alpha < 0.5 and 0 < power < 1):
        raise ValueError(f"solve_n: need 0 < alpha < 0.5 and 0 < power < 1, got alpha={alpha}, power={power}")
    if inflation < 1:
        raise ValueError(f"solve_n: inflation must be ≥ 1, got {inflation}")
    if design not in _DESIGNS:
        raise ValueError(f"solve_n: unknown design {design!r}")


def solve_n(design: Design, effect: float, alpha: float, power: float, inflation: float = 1.0) -> int:
    """Smallest n (per group for two-sample) with the requested one-sided power, times ``inflation``, rounded up."""
    _check(design, effect, alpha, power, inflation)
    if design == "two-sample-t":
        n = TTestIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, alternative="larger")
    elif design == "one-sample-t":
        n = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=power, alternative="larger")
    elif design == "one-proportion-z":
        n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=0, alternative="larger")
    elif design == "correlation-fisher-z":
        z_sd = math.sqrt(SPEARMAN_FISHER_VAR)
        n = NormalIndPower().solve_power(
            effect_size=effect / z_sd, alpha=alpha, power=power, ratio=0, alternative="larger"
        ) + 3.0
    else:
        raise ValueError(f"solve_n: unknown design {design!r}")
    return int(math.ceil(float(n) * inflation - 1e-9))


def part(what: str, design: Design, effect: float, alpha: float, power: float, inflation: float = 1.0) -> PowerPart:
    """Build a :class:`PowerPart` (its n is solved on first access)."""
    return PowerPart(what, design, effect, alpha, power, inflation)


def fisher_z_effect(assumed: float, threshold: float) -> float:
    """|atanh(assumed) − atanh(threshold)|: the standardized effect for a correlation bound."""
    return abs(math.atanh(assumed) - math.atanh(threshold))


def proportion_effect(assumed: float, threshold: float) -> float:
    """Cohen's h between an assumed true proportion and the threshold proportion (positive when assumed > threshold)."""
    return float(proportion_effectsize(assumed, threshold))
