"""Power plans of the registered claims: the stated assumptions and one :class:`~harness.stats.power.PowerPart`
per rule part (docs/METHODS.md §11).

The assumed true effects are design assumptions (what a claim is built to detect), not data; each planned n
comes from :mod:`harness.stats.power` (statsmodels). Building a plan solves nothing: each part's n is solved on
first access and cached, so importing the registry computes no power calculation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.stats.power import PowerPart, fisher_z_effect, part

__all__ = [
    "POWER", "RANK_TEST_INFLATION", "PowerPlan", "alpha_ci", "correlation_plan", "coverage_plan", "equivalence_plan",
    "g_plan", "paired_plan", "stated_plan",
]

POWER = 0.8
"""Target power of every rule part."""
RANK_TEST_INFLATION = 3.14159265358979 / 3.0
"""1 / ARE of Wilcoxon-type rank tests vs t under normality (3/π): the factor on a t-test n."""


@dataclass(frozen=True)
class PowerPlan:
    """The stated power calculation: assumptions in words and one :class:`PowerPart` per rule part.

    For invariants ``parts`` is empty and ``coverage_n`` is the number of prompts the check must cover.
    """

    assumptions: str
    parts: tuple[PowerPart, ...] = ()
    coverage_n: int | None = None

    @cached_property
    def planned_n(self) -> int:
        """The largest n over the parts (or the coverage n for invariants), solved on first access."""
        if self.coverage_n is not None:
            return self.coverage_n
        return max(p.n for p in self.parts)


def alpha_ci(ci_level: float) -> float:
    """One-sided level of each bound of a two-sided ``ci_level`` interval: (1 − level) / 2."""
    return (1.0 - ci_level) / 2.0


def _g_inflation(g: float) -> float:
    """Var(Hedges g) / Var(mean difference in SD units) for equal groups: 1 + g²/8."""
    return 1.0 + g * g / 8.0


def g_plan(assumed_g: float, threshold: float, family: str, two_sided_p: bool = False) -> PowerPlan:
    """Two-sample plan for a Hedges-g claim: CI-bound part and Welch-t p part."""
    alpha_p = MULTIPLICITY_FAMILIES[family].alpha_per_test / (2.0 if two_sided_p else 1.0)
    return PowerPlan(
        assumptions=f"true Hedges g = {assumed_g:g}; equal group sizes; normal data",
        parts=(
            part(f"95% CI bound beyond {threshold:g}", "two-sample-t", abs(assumed_g - threshold),
                 alpha_ci(0.95), POWER, _g_inflation(assumed_g)),
            part("Welch t p < alpha_test", "two-sample-t", abs(assumed_g), alpha_p, POWER),
        ),
    )


def paired_plan(assumed: float, threshold: float, sd: float, ci_level: float, what: str,
                family: str | None = None, p_dz: float = 0.8, sd_source: str = "assumed") -> PowerPlan:
    """One-sample (over pairs) plan: CI-bound part, plus a rank-test p part when ``family`` is given.
    ``sd_source`` says where the per-pair SD comes from ("assumed", or the pilot run)."""
    parts = [part(f"{ci_level:.0%} CI bound beyond {threshold:g}", "one-sample-t",
                  abs(assumed - threshold) / sd, alpha_ci(ci_level), POWER)]
    words = f"true {what} = {assumed:g}, per-pair SD {sd:g} in the same units ({sd_source})"
    if family is not None:
        parts.append(part("paired rank test p < alpha_test", "one-sample-t", p_dz,
                          MULTIPLICITY_FAMILIES[family].alpha_per_test, POWER, RANK_TEST_INFLATION))
        words += f"; paired score difference d_z = {p_dz:g} (rank-test n inflated by π/3)"
    return PowerPlan(words, tuple(parts))


def equivalence_plan(margin: float, sd: float, ci_level: float, sd_source: str = "assumed") -> PowerPlan:
    """TOST plan at true value 0: each one-sided bound needs power 1 − (1 − 0.8)/2 so both hold with ≥ 0.8."""
    return PowerPlan(
        assumptions=f"true T = 0, per-pair SD {sd:g} (T units; {sd_source}); both TOST bounds with joint power "
                    f"≥ {POWER:g}",
        parts=(part(f"{ci_level:.0%} CI inside ±{margin:g}", "one-sample-t", margin / sd,
                    alpha_ci(ci_level), 1.0 - (1.0 - POWER) / 2.0),),
    )


def correlation_plan(assumed: float, threshold: float, family: str) -> PowerPlan:
    """Spearman ρ plan via Fisher z: CI-bound part and p part (test of ρ = 0)."""
    return PowerPlan(
        assumptions=f"true Spearman ρ = {assumed:g}; Fisher-z normal approximation with variance 1.06/(n − 3)",
        parts=(
            part(f"95% CI bound beyond {threshold:g}", "correlation-fisher-z", fisher_z_effect(assumed, threshold),
                 alpha_ci(0.95), POWER),
            part("p < alpha_test", "correlation-fisher-z", fisher_z_effect(assumed, 0.0),
                 MULTIPLICITY_FAMILIES[family].alpha_per_test, POWER),
        ),
    )


def coverage_plan(n: int, what: str) -> PowerPlan:
    """An invariant's plan: no sampling error, ``n`` is the number of prompts the check covers."""
    return PowerPlan(assumptions=f"deterministic check; no sampling error. n is coverage: {what}", coverage_n=n)


def stated_plan(n: int, reason: str) -> PowerPlan:
    """A planned n stated without a power calculation, with the reason for it (a user claim's pilot, a design
    constraint): the claim is INCONCLUSIVE below ``n`` like any other."""
    if n < 2 or not reason.strip():
        raise ValueError(f"a stated plan needs n ≥ 2 and a reason (got n = {n}, reason {reason!r})")
    return PowerPlan(assumptions=f"planned n stated, not solved: {reason.strip()}", coverage_n=n)
