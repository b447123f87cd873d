"""Statistics for the claims (DESIGN §6): effect sizes, tests, bootstrap CIs, multiplicity, power.

Each function states its definition and the library routine behind it; see the submodules.
"""

from harness.stats.bootstrap import ConfidenceInterval, bootstrap_ci
from harness.stats.correlation import (
    Correlation, partial_rank_correlation, partial_spearman, rank_correlation,
)
from harness.stats.effect_sizes import cohens_d, hedges_correction, hedges_g, paired_dz, pooled_sd
from harness.stats.multiplicity import adjust, benjamini_hochberg, holm
from harness.stats.power import PowerPart, fisher_z_effect, part, proportion_effect, solve_n
from harness.stats.proportions import binomial_test, proportion_ci
from harness.stats.significance import (
    TestResult, TostResult, WelchT, mann_whitney, page_trend, permutation_test_ind, permutation_test_paired,
    spearman, t_interval, tost_ind, tost_paired, welch_t, wilcoxon_paired,
)
from harness.stats.gap_ratio import (
    TransferEstimate, adjacent_step_cis, in_gap_units, steps_as_bounds, transfer_ci, transfer_ratio,
)

__all__ = [
    "ConfidenceInterval", "Correlation", "PowerPart", "TestResult", "TostResult", "TransferEstimate", "WelchT",
    "adjacent_step_cis", "adjust", "benjamini_hochberg", "binomial_test", "bootstrap_ci", "cohens_d",
    "fisher_z_effect", "hedges_correction", "hedges_g", "holm", "mann_whitney", "page_trend", "paired_dz",
    "part", "permutation_test_ind", "permutation_test_paired", "pooled_sd", "proportion_ci",
    "partial_rank_correlation", "partial_spearman", "proportion_effect", "rank_correlation", "solve_n", "spearman",
    "steps_as_bounds", "t_interval", "tost_ind", "tost_paired", "transfer_ci", "transfer_ratio", "in_gap_units",
    "welch_t", "wilcoxon_paired",
]
