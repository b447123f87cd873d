"""Confabulation signature (issue 14): does a per-prompt cache statistic separate grounded-fact prompts from
confabulation-inducing ones once token length and word frequency are accounted for?

The bank's ``grounded_confabulation`` pairs are matched by construction (each confabulation prompt rewrites its
grounded counterpart around an invented entity), so the analysis is a matched-pairs ANCOVA:

- **Covariates** of a prompt: its content-token count under the model's tokenizer (tokens), and its mean word
  Zipf frequency (:func:`mean_word_zipf`: wordfreq's English Zipf value, log10 of occurrences per billion words,
  averaged over the prompt's words; a word wordfreq does not know counts 0).
- **Adjusted difference** β (units of the statistic): the intercept of the OLS of the within-pair differences
  Δy = y(confabulation) − y(grounded) on Δtokens and Δzipf, i.e. the confabulation − grounded difference at equal
  length and frequency. It equals the group coefficient of OLS y ~ pair + group + tokens + zipf (pair fixed effects).
- **Effect** g_adj = J(2n − 2) · β / s_w: β in units of s_w, the pooled within-group SD of y over the 2n prompts
  (the SD Hedges g divides by, so g_adj reads like a Hedges g at equal length and frequency), J Hedges' correction.
- **p**: two-sided t-test of β = 0 with n − 3 degrees of freedom (n pairs, three coefficients).
- **CI**: BCa bootstrap of g_adj resampling pairs (both prompts of a pair and their covariates together).

Beside it (never deciding) :func:`residual_hedges_g`: the covariates regressed out of y pooled over both groups
*without* a group term, then Hedges g of the residuals. Where group and covariates are correlated (invented names
are rare words of several tokens) that variant attributes the shared part to the covariates, so it is biased toward 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from harness.stats import ConfidenceInterval, bootstrap_ci, hedges_g
from harness.stats.effect_sizes import hedges_correction, pooled_sd

__all__ = [
    "AdjustedContrast", "AdjustedDifference", "DegenerateDesignError", "PairCovariates", "PairedContrast",
    "adjusted_contrast", "adjusted_difference", "adjusted_hedges_g", "mean_word_zipf", "paired_contrast",
    "residual_hedges_g", "residualize",
]

FREQUENCY_LANGUAGE = "en"
"""wordfreq language of the prompt bank."""


class DegenerateDesignError(ValueError):
    """The covariate design cannot identify the adjusted difference (too few pairs, or collinear covariates)."""


@lru_cache(maxsize=4096)
def _word_zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, FREQUENCY_LANGUAGE))


def mean_word_zipf(text: str) -> float:
    """Mean Zipf frequency of the words of ``text`` (wordfreq's English word list and tokenizer).

    Zipf = log10(occurrences per billion words): about 7 for "the", 3 for a rare word, 0 for a word wordfreq has
    never seen (an invented name). Raises ValueError when ``text`` has no word.
    """
    from wordfreq import tokenize

    words = tokenize(text, FREQUENCY_LANGUAGE)
    if not words:
        raise ValueError(f"mean_word_zipf: no words in {text!r:.80}")
    return float(np.mean([_word_zipf(w) for w in words]))


@dataclass(frozen=True)
class PairCovariates:
    """Covariates of one side of every pair, in pair order: content tokens (count) and mean word Zipf frequency."""

    tokens: NDArray[np.float64]
    zipf: NDArray[np.float64]

    @classmethod
    def of(cls, tokens: Sequence[float], zipf: Sequence[float]) -> PairCovariates:
        """Checked arrays (1-D, equal length, finite)."""
        t, z = np.asarray(tokens, dtype=np.float64), np.asarray(zipf, dtype=np.float64)
        if t.ndim != 1 or t.shape != z.shape:
            raise ValueError(f"PairCovariates: tokens and zipf must be 1-D of equal length, got {t.shape} and {z.shape}")
        if not (np.isfinite(t).all() and np.isfinite(z).all()):
            raise ValueError("PairCovariates: tokens and zipf must be finite")
        return cls(t, z)


def _difference_design(confab: PairCovariates, grounded: PairCovariates) -> NDArray[np.float64]:
    n = confab.tokens.size
    return np.column_stack([np.ones(n), confab.tokens - grounded.tokens, confab.zipf - grounded.zipf])


def _check_values(y_confab: ArrayLike, y_grounded: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    yc, yg = np.asarray(y_confab, dtype=np.float64), np.asarray(y_grounded, dtype=np.float64)
    if yc.ndim != 1 or yg.shape != yc.shape:
        raise ValueError(f"confabulation contrast: need one value per pair on each side, got {yc.shape}, {yg.shape}")
    if not (np.isfinite(yc).all() and np.isfinite(yg).all()):
        raise ValueError("confabulation contrast: the statistic must be finite for every prompt")
    if yc.size < 4:
        raise DegenerateDesignError(f"confabulation contrast: {yc.size} pairs; the contrast needs at least 4")
    return yc, yg


def _check_pairs(y_confab: ArrayLike, y_grounded: ArrayLike, confab: PairCovariates,
                 grounded: PairCovariates) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    yc, yg = _check_values(y_confab, y_grounded)
    if confab.tokens.size != yc.size or grounded.tokens.size != yc.size:
        raise ValueError(f"confabulation contrast: need one covariate row per pair on each side, got "
                         f"{confab.tokens.shape}, {grounded.tokens.shape} for {yc.size} pairs")
    return yc, yg


@dataclass(frozen=True)
class AdjustedDifference:
    """OLS of Δy on [1, Δtokens, Δzipf] over pairs: ``beta`` (the intercept, units of y) with its standard error,
    two-sided t ``p_value`` on ``df`` = n − 3 degrees of freedom, and the two slopes (units of y per token and per
    Zipf unit)."""

    beta: float
    se: float
    df: int
    p_value: float
    slope_tokens: float
    slope_zipf: float


def adjusted_difference(y_confab: ArrayLike, y_grounded: ArrayLike, confab: PairCovariates,
                        grounded: PairCovariates) -> AdjustedDifference:
    """The confabulation − grounded difference of y at equal token count and word frequency (module docstring).

    Raises:
        DegenerateDesignError: fewer than 4 pairs, or Δtokens / Δzipf collinear with each other or constant.
    """
    yc, yg = _check_pairs(y_confab, y_grounded, confab, grounded)
    x = _difference_design(confab, grounded)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise DegenerateDesignError("confabulation contrast: the token-count and frequency differences are constant "
                                    "or collinear over the pairs, so the adjusted difference is not identified")
    dy = yc - yg
    coef, *_ = np.linalg.lstsq(x, dy, rcond=None)
    df = x.shape[0] - x.shape[1]
    resid = dy - x @ coef
    sigma2 = float(resid @ resid) / df
    se = math.sqrt(sigma2 * float(np.linalg.inv(x.T @ x)[0, 0]))
    if se == 0.0:
        p = 0.0 if coef[0] != 0.0 else 1.0
    else:
        p = float(2.0 * sps.t.sf(abs(coef[0]) / se, df))
    return AdjustedDifference(float(coef[0]), se, df, p, float(coef[1]), float(coef[2]))


def _intercept(dy: NDArray[np.float64], x: NDArray[np.float64]) -> float:
    coef, *_ = np.linalg.lstsq(x, dy, rcond=None)
    return float(coef[0])


def adjusted_hedges_g(y_confab: ArrayLike, y_grounded: ArrayLike, confab: PairCovariates,
                      grounded: PairCovariates) -> float:
    """g_adj = J(2n − 2) · β / s_w (module docstring): dimensionless, in pooled within-group SD units of y;
    positive when confabulation prompts have the larger y at equal length and frequency.

    Raises:
        DegenerateDesignError: as :func:`adjusted_difference`, or y constant within both groups (s_w = 0).
    """
    d = adjusted_difference(y_confab, y_grounded, confab, grounded)
    return _standardize(d.beta, np.asarray(y_confab, dtype=np.float64), np.asarray(y_grounded, dtype=np.float64))


def _standardize(beta: float, yc: NDArray[np.float64], yg: NDArray[np.float64]) -> float:
    sw = pooled_sd(yc, yg)
    if sw == 0.0:
        raise DegenerateDesignError("confabulation contrast: the statistic is constant within both groups (s_w = 0)")
    return hedges_correction(2 * yc.size - 2) * beta / sw


@dataclass(frozen=True)
class AdjustedContrast:
    """The decision numbers of the confabulation contrast: ``estimate`` = g_adj, its bootstrap ``ci`` (pairs
    resampled), ``p_value`` (two-sided t of β = 0) and the :class:`AdjustedDifference` behind them."""

    estimate: float
    ci: ConfidenceInterval
    p_value: float
    difference: AdjustedDifference
    n_pairs: int


def adjusted_contrast(y_confab: ArrayLike, y_grounded: ArrayLike, confab: PairCovariates, grounded: PairCovariates,
                      *, level: float, seed: int, n_resamples: int = 9999) -> AdjustedContrast:
    """g_adj with its BCa CI at ``level`` (pairs resampled, ``seed``) and the two-sided p of β = 0.

    In a resample whose covariate differences happen to be collinear the intercept is lstsq's minimum-norm one
    (with 20 distinct pairs that needs a resample of at most two distinct pairs).

    Raises:
        DegenerateDesignError: as :func:`adjusted_hedges_g`.
    """
    d = adjusted_difference(y_confab, y_grounded, confab, grounded)
    yc, yg = np.asarray(y_confab, dtype=np.float64), np.asarray(y_grounded, dtype=np.float64)
    estimate = _standardize(d.beta, yc, yg)

    def statistic(yc_: NDArray, yg_: NDArray, tc: NDArray, tg: NDArray, zc: NDArray, zg: NDArray) -> float:
        x = np.column_stack([np.ones(yc_.size), tc - tg, zc - zg])
        sw = pooled_sd(yc_, yg_)
        if sw == 0.0:
            return math.nan
        return hedges_correction(2 * yc_.size - 2) * _intercept(yc_ - yg_, x) / sw

    ci = bootstrap_ci(statistic, yc, yg, confab.tokens, grounded.tokens, confab.zipf, grounded.zipf, paired=True,
                      level=level, n_resamples=n_resamples, rng=seed)
    return AdjustedContrast(estimate, ci, d.p_value, d, yc.size)


@dataclass(frozen=True)
class PairedContrast:
    """The registered decision numbers (claim version 2): ``estimate`` = g = J(2n − 2) · mean Δy / s_w, the
    confabulation − grounded difference as designed in pooled within-group SD units; its BCa ``ci`` (pairs
    resampled); ``p_value``, two-sided paired t (n − 1 df); ``mean_difference`` in units of y."""

    estimate: float
    ci: ConfidenceInterval
    p_value: float
    mean_difference: float
    n_pairs: int


def paired_contrast(y_confab: ArrayLike, y_grounded: ArrayLike, *, level: float, seed: int,
                    n_resamples: int = 9999) -> PairedContrast:
    """g of the paired confabulation − grounded difference with its BCa CI at ``level`` (pairs resampled,
    ``seed``) and the two-sided paired-t p.

    Raises:
        DegenerateDesignError: fewer than 4 pairs, or y constant within both groups (s_w = 0).
    """
    yc, yg = _check_values(y_confab, y_grounded)
    estimate = _standardize(float(np.mean(yc - yg)), yc, yg)

    def statistic(yc_: NDArray, yg_: NDArray) -> float:
        sw = pooled_sd(yc_, yg_)
        return math.nan if sw == 0.0 else hedges_correction(2 * yc_.size - 2) * float(np.mean(yc_ - yg_)) / sw

    ci = bootstrap_ci(statistic, yc, yg, paired=True, level=level, n_resamples=n_resamples, rng=seed)
    diff = yc - yg
    p = float(sps.ttest_rel(yc, yg).pvalue) if np.ptp(diff) > 0 else (0.0 if diff[0] != 0 else 1.0)
    return PairedContrast(estimate, ci, p, float(diff.mean()), yc.size)


def residualize(y: ArrayLike, covariates: ArrayLike) -> NDArray[np.float64]:
    """Residuals of the OLS of ``y`` (n values) on an intercept and ``covariates`` (n × k): y minus its fitted
    values, in the units of y. They sum to 0 and are orthogonal to every covariate column.

    Raises:
        ValueError: shapes disagree, a value is not finite, or n ≤ k + 1 (no residual degree of freedom).
    """
    ya = np.asarray(y, dtype=np.float64)
    xa = np.asarray(covariates, dtype=np.float64)
    if xa.ndim == 1:
        xa = xa[:, None]
    if ya.ndim != 1 or xa.ndim != 2 or xa.shape[0] != ya.size:
        raise ValueError(f"residualize: need y of n values and covariates n × k, got {ya.shape} and {xa.shape}")
    if not (np.isfinite(ya).all() and np.isfinite(xa).all()):
        raise ValueError("residualize: y and covariates must be finite")
    if ya.size <= xa.shape[1] + 1:
        raise ValueError(f"residualize: {ya.size} values cannot be regressed on an intercept and {xa.shape[1]} "
                         "covariates with a residual left")
    design = np.column_stack([np.ones(ya.size), xa])
    coef, *_ = np.linalg.lstsq(design, ya, rcond=None)
    return ya - design @ coef


def residual_hedges_g(y_confab: ArrayLike, y_grounded: ArrayLike, confab: PairCovariates,
                      grounded: PairCovariates) -> float:
    """Hedges g (confabulation − grounded) of the residuals of y after the pooled OLS of y on tokens and zipf over
    both groups without a group term (the reported, non-deciding variant; biased toward 0, see the module)."""
    yc, yg = _check_pairs(y_confab, y_grounded, confab, grounded)
    y = np.concatenate([yc, yg])
    x = np.column_stack([np.concatenate([confab.tokens, grounded.tokens]), np.concatenate([confab.zipf, grounded.zipf])])
    r = residualize(y, x)
    return hedges_g(r[: yc.size], r[yc.size:])
