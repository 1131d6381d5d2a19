r"""The GLMM FAQ's tests for zero-inflation (its "Tests for zero-inflation" section).

* **Simulated zeros**: :meth:`SimulatedResiduals.test_zero_inflation
  <mixedmodels.diagnostics.simulated_residuals.SimulatedResiduals.test_zero_inflation>`.
* **Expected zeros** (:func:`expected_zeros`): with ``p_i = P(y_i = 0)`` from each
  observation's fitted distribution (random effects at their conditional modes: the
  probabilities the fitted means imply), the number of zeros is a sum of independent
  Bernoulli(``p_i``) -- a Poisson-binomial variable, mean ``\sum p_i``, variance
  ``\sum p_i (1 - p_i)``. Its exact distribution (a product of ``n`` polynomials
  ``1 - p_i + p_i z``, multiplied pairwise by FFT) gives the interval of expected counts
  and a two-sided p-value for the observed count.
* **Likelihood ratio** (:func:`zero_inflation_lrt`): twice the log-likelihood gain of the
  zero-inflated model. No zero-inflation (``pi = 0``) is on the boundary of the parameter
  space, so the null distribution is not ``chi^2_k`` but (Self and Liang 1987, one parameter
  on the boundary) the mixture ``\frac12 \chi^2_{k-1} + \frac12 \chi^2_k`` -- for a single
  zero-inflation parameter the usual p-value halved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import expit as special_expit

from .fitted_distribution import fitted_distribution

__all__ = ["ExpectedZeros", "ZeroInflationLRT", "expected_zeros", "poisson_binomial_pmf",
           "zero_inflation_lrt"]


def poisson_binomial_pmf(p) -> np.ndarray:
    """``P(K = k)``, ``k = 0..n``, for ``K`` the number of successes of independent
    Bernoulli(``p_i``) trials (pairwise FFT products: ``log2 n`` rounds, each vectorized).

    Parameters
    ----------
    p : array_like (n,)

    Returns
    -------
    ndarray (n + 1,)
    """
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    polys = np.column_stack([1.0 - p, p]) if p.size else np.ones((1, 1))
    while polys.shape[0] > 1:
        if polys.shape[0] % 2:
            pad = np.zeros((1, polys.shape[1]))
            pad[0, 0] = 1.0
            polys = np.vstack([polys, pad])
        length = 2 * polys.shape[1] - 1
        size = 1 << (length - 1).bit_length()
        f = np.fft.rfft(polys, size, axis=1)
        polys = np.fft.irfft(f[0::2] * f[1::2], size, axis=1)[:, :length]
    pmf = np.maximum(polys[0][: p.size + 1], 0.0)
    return pmf / pmf.sum()


@dataclass(frozen=True)
class ExpectedZeros:
    """Observed and expected numbers of zeros (:func:`expected_zeros`).

    Attributes
    ----------
    observed : int
    expected : float
        ``sum p_i``.
    sd : float
        ``sqrt(sum p_i (1 - p_i))``.
    lower, upper : int
        Central interval of the expected count (``level``).
    level : float
    p_value : float
        Two-sided: ``min(1, 2 min(P(K <= observed), P(K >= observed)))``.
    ratio : float
        ``observed / expected`` (> 1: more zeros than the model predicts).
    """

    observed: int
    expected: float
    sd: float
    lower: int
    upper: int
    level: float
    p_value: float
    ratio: float

    @property
    def statistic(self) -> float:
        """``ratio``, for symmetry with the other tests."""
        return self.ratio

    def __str__(self) -> str:
        return (f"zeros: observed {self.observed}, expected {self.expected:.2f} "
                f"(sd {self.sd:.2f}; {100 * self.level:g}% interval {self.lower}-"
                f"{self.upper}), ratio {self.ratio:.3f}, p = {self.p_value:.4g}")


def poisson_binomial_tail(p, k: int, upper: bool) -> float:
    r"""``P(K >= k)`` (``upper``) or ``P(K <= k)`` of a Poisson-binomial ``K``, accurate far
    in the tails.

    The FFT pmf has absolute errors near machine epsilon, so tails below ~1e-14 would be
    noise. Exponential tilting moves the mass to ``k``: with ``p_i(t) = p_i e^t / (1 - p_i
    + p_i e^t)`` and ``t`` solving ``sum_i p_i(t) = k``,
    ``P(K = j) = P_t(K = j) M(t) e^{-t j}``, ``M(t) = prod_i (1 - p_i + p_i e^t)``; the
    tilted pmf is large around ``k``, and the factor ``e^{-t j}`` damps the rest of the
    tail, so the sum keeps its relative accuracy.

    Parameters
    ----------
    p : array_like (n,)
        Success probabilities.
    k : int
        The observed count.
    upper : bool
        Upper (``>= k``) or lower (``<= k``) tail.

    Returns
    -------
    float
    """
    from scipy.optimize import brentq
    from scipy.special import logsumexp

    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = p.size
    if (upper and k <= 0) or (not upper and k >= n):
        return 1.0
    free = (p > 0.0) & (p < 1.0)
    fixed = int(np.sum(p >= 1.0))                       # certain successes
    m = int(free.sum())
    target = k - fixed
    q = p[free]
    if (upper and target <= 0) or (not upper and target >= m):
        return 1.0
    mean = float(np.sum(q))
    if upper and target <= mean:            # the bulk: one minus the (accurate) other tail
        return max(0.0, 1.0 - poisson_binomial_tail(p, k - 1, upper=False))
    if not upper and target >= mean:
        return max(0.0, 1.0 - poisson_binomial_tail(p, k + 1, upper=True))
    if (upper and target >= m) or (not upper and target <= 0):
        # the far end of the support: every free trial a success (failure), or impossible
        if (upper and target > m) or (not upper and target < 0):
            return 0.0
        return float(np.exp(np.sum(np.log(q) if upper else np.log1p(-q))))
    logit_q = np.log(q) - np.log1p(-q)

    def excess(t):
        return float(np.sum(special_expit(logit_q + t))) - target

    span = 50.0 + float(np.max(np.abs(logit_q)))
    t = brentq(excess, -span, span, xtol=1e-12)
    tilted = poisson_binomial_pmf(special_expit(logit_q + t))
    log_m = float(np.sum(np.logaddexp(np.log1p(-q), np.log(q) + t)))   # log M(t)
    j = np.arange(m + 1)
    with np.errstate(divide="ignore"):
        log_pmf = np.log(tilted) + log_m - t * j
    sel = j >= target if upper else j <= target
    return float(min(1.0, np.exp(logsumexp(log_pmf[sel]))))


def expected_zeros(m, level: float = 0.95) -> ExpectedZeros:
    """Expected zeros of a fitted count model with their interval (module docstring).

    Parameters
    ----------
    m : GeneralizedLinearMixedModelResult or GlmmTMBResult
        A fit whose family has a point mass at zero (counts, binomial, zero-inflated or
        hurdle families, Tweedie).
    level : float
        Coverage of the interval.

    Returns
    -------
    ExpectedZeros
    """
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) \
            or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95, got {level!r}")
    dist = fitted_distribution(m)
    p = dist.prob_zero()
    if not np.any(p > 0):
        raise ValueError(f"the {getattr(dist.family, 'name', '?')} family puts no "
                         "probability on zero: there are no expected zeros to compare")
    observed = int(np.sum(dist.observed == 0))
    pmf = poisson_binomial_pmf(p)
    cdf = np.cumsum(pmf)
    a = (1.0 - level) / 2.0
    lower = int(np.searchsorted(cdf, a - 1e-12))
    upper = int(np.searchsorted(cdf, 1.0 - a - 1e-12))
    p_le = poisson_binomial_tail(p, observed, upper=False)
    p_ge = poisson_binomial_tail(p, observed, upper=True)
    expected = float(p.sum())
    return ExpectedZeros(observed, expected, float(np.sqrt(np.sum(p * (1 - p)))), lower,
                         upper, float(level), float(min(1.0, 2.0 * min(p_le, p_ge))),
                         observed / expected)


@dataclass(frozen=True)
class ZeroInflationLRT:
    """Likelihood-ratio test of zero-inflation (:func:`zero_inflation_lrt`).

    Attributes
    ----------
    statistic : float
        ``2 (logLik_zi - logLik)``.
    df : int
        Extra parameters of the zero-inflated model.
    p_value : float
        Against ``0.5 chi2_{df-1} + 0.5 chi2_df`` (the boundary correction).
    p_value_naive : float
        Against ``chi2_df`` (conservative).
    """

    statistic: float
    df: int
    p_value: float
    p_value_naive: float

    def __str__(self) -> str:
        return (f"zero-inflation LRT: chisq = {self.statistic:.4f} on {self.df} df, "
                f"p = {self.p_value:.4g} (boundary-corrected; naive {self.p_value_naive:.4g})")


def _family_name(m) -> str:
    """The family's name: glmmtmb's ``family_name``, lme4-class fits' ``family.name``."""
    name = getattr(m, "family_name", None)
    if name is None:
        name = getattr(getattr(m, "family", None), "name", None)
    return str(name)


def _has_zi(m) -> bool:
    density = getattr(m, "density", None)
    return density is not None and "zi" in density.channels


def zero_inflation_lrt(model, zi_model) -> ZeroInflationLRT:
    """Likelihood-ratio test of a model against its zero-inflated version (module
    docstring).

    Parameters
    ----------
    model : GeneralizedLinearMixedModelResult or GlmmTMBResult
        The model without zero-inflation.
    zi_model : GlmmTMBResult
        The same model with a ``ziformula``.

    Returns
    -------
    ZeroInflationLRT
    """
    if not _has_zi(zi_model):
        raise ValueError("the second model has no zero-inflation component: fit it with "
                         "mm.glmmtmb(..., ziformula='~1')")
    if _has_zi(model):
        raise ValueError("the first model is zero-inflated already: pass the model without "
                         "zero-inflation first")
    for m in (model, zi_model):
        if getattr(m, "reml", False):
            raise ValueError("likelihood-ratio tests need maximum-likelihood fits (REML=False)")
    if model.nobs != zi_model.nobs:
        raise ValueError(f"the models were fitted to different rows ({model.nobs} and "
                         f"{zi_model.nobs} observations)")
    families = (_family_name(model), _family_name(zi_model))
    if families[0] != families[1]:
        # another family changes more than the zero-inflation: not the nested pair the
        # boundary-corrected test is about (compare such models with aic_table or vuong)
        raise ValueError(f"the models have different families ({families[0]} and "
                         f"{families[1]}): the test compares a model with its "
                         "zero-inflated version; use mm.aic_table or mm.vuong for others")
    if not np.array_equal(fitted_distribution(model).observed,
                          fitted_distribution(zi_model).observed):
        raise ValueError("the models were fitted to different responses: fit both to the "
                         "same data and response")
    df = int(zi_model.df - model.df)
    if df < 1:
        raise ValueError(f"the zero-inflated model must have more parameters ({zi_model.df}) "
                         f"than the other ({model.df})")
    stat = max(0.0, 2.0 * (zi_model.loglik - model.loglik))
    naive = float(stats.chi2.sf(stat, df))
    lower = float(stats.chi2.sf(stat, df - 1)) if df > 1 else float(stat <= 0)
    return ZeroInflationLRT(float(stat), df, 0.5 * naive + 0.5 * lower, naive)
