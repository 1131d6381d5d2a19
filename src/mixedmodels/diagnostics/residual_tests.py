r"""The statistical tests of simulation-based residual diagnostics (DHARMa's), on arrays.

Each returns a :class:`ResidualTest`. The statistics follow DHARMa 0.5 and the R functions
it calls, so the numbers agree with R on the same residuals:

* :func:`ks_uniformity` -- Kolmogorov-Smirnov against U(0, 1), R's ``ks.test`` (exact
  distribution for fewer than 100 residuals without ties, the asymptotic one otherwise:
  Kolmogorov's limit for the two-sided test, ``exp(-2 n D^2)`` for one-sided ones);
* :func:`simulation_p_value` -- DHARMa's ``getP``: the rank of an observed statistic among
  its simulated values, ``2 min(P(T* <= t), P(T* >= t))`` for the two-sided test;
* :func:`durbin_watson` -- lmtest's ``dwtest`` of the residuals ordered by time on an
  intercept: ``DW = \sum (r_t - r_{t-1})^2 / \sum (r_t - \bar r)^2``. Its exact null
  distribution (used for n < 100, as dwtest) is that of ``\sum \lambda_j z_j^2 / \sum
  z_j^2`` with ``\lambda_j = 2 - 2\cos(\pi j / n)``, ``j = 1..n-1``, the nonzero
  eigenvalues of ``M A`` (``A`` the first-difference quadratic form, ``M`` the centring
  projection); ``P(DW < d) = P(\sum (\lambda_j - d) z_j^2 < 0)`` by Imhof's inversion
  formula (numerical integration; dwtest's Fortran ``pan`` computes the same probability).
  For larger n, dwtest's normal approximation with the exact mean and variance;
* :func:`morans_i` -- ape's ``Moran.I`` with row-standardized weights and its normality
  standard deviation;
* :func:`levene` -- Levene's test with group medians (car's ``leveneTest``, Brown-Forsythe);
* :func:`binomial_outliers` -- the number of residuals outside
  ``[1/(nsim+1), 1 - 1/(nsim+1)]`` against a binomial with ``p = 2/(nsim+1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, stats

__all__ = [
    "ALTERNATIVES",
    "ResidualTest",
    "binomial_outliers",
    "check_alternative",
    "durbin_watson",
    "ks_uniformity",
    "levene",
    "morans_i",
    "simulation_p_value",
]

#: Alternatives of the tests (R's names).
ALTERNATIVES = ("two.sided", "greater", "less")
#: R's ks.test uses the exact distribution below this many observations.
KS_EXACT_BELOW = 100
#: dwtest uses the exact distribution below this many observations.
DW_EXACT_BELOW = 100
#: Absolute accuracy asked of the numerical integral of Imhof's formula.
IMHOF_EPSABS = 1e-12
#: Subintervals the adaptive quadrature may use for Imhof's integral.
IMHOF_LIMIT = 500


@dataclass(frozen=True, eq=False)
class ResidualTest:
    """A test of the residual diagnostics.

    Attributes
    ----------
    name : str
        What is tested (``"uniformity"``, ``"dispersion"``, ...).
    statistic : float
        The test statistic (named in ``method``).
    p_value : float
    alternative : str
        ``"two.sided"``, ``"greater"`` or ``"less"``.
    method : str
        How the statistic and its null distribution are computed.
    details : dict
        Test-specific extras: simulated statistics, counts, per-group tables, expected
        values.
    """

    name: str
    statistic: float
    p_value: float
    alternative: str
    method: str
    details: dict = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        """``p_value < 0.05``."""
        return bool(self.p_value < 0.05)

    def __str__(self) -> str:
        return (f"{self.method}\n  {self.name}: statistic = {self.statistic:.6g}, "
                f"p-value = {self.p_value:.4g} (alternative: {self.alternative})")

    def __repr__(self) -> str:
        return (f"ResidualTest(name={self.name!r}, statistic={self.statistic:.6g}, "
                f"p_value={self.p_value:.4g}, alternative={self.alternative!r})")


def check_alternative(alternative: str) -> str:
    """``alternative`` if it is one of :data:`ALTERNATIVES`, else a ValueError."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(map(repr, ALTERNATIVES))}, "
                         f"got {alternative!r}")
    return alternative


def simulation_p_value(simulated, observed: float, alternative: str = "two.sided") -> float:
    """DHARMa's ``getP``: where ``observed`` falls among ``simulated`` statistics.

    Parameters
    ----------
    simulated : array_like
        The statistic on each simulated data set.
    observed : float
        The statistic on the data.
    alternative : {"two.sided", "greater", "less"}

    Returns
    -------
    float
    """
    s = np.asarray(simulated, dtype=float)
    ge, le = float(np.mean(s >= observed)), float(np.mean(s <= observed))
    if alternative == "greater":
        return ge
    if alternative == "less":
        return le
    return min(2.0 * min(le, ge), 1.0)


def ks_uniformity(residuals, alternative: str = "two.sided") -> ResidualTest:
    """One-sample Kolmogorov-Smirnov test of U(0, 1) (R's ``ks.test(x, "punif")``).

    Parameters
    ----------
    residuals : array_like
        Values in [0, 1].
    alternative : {"two.sided", "greater", "less"}

    Returns
    -------
    ResidualTest
        ``statistic``: ``D`` (``D+`` / ``D-`` for one-sided tests).
    """
    check_alternative(alternative)
    x = np.asarray(residuals, dtype=float)
    exact = x.size < KS_EXACT_BELOW and np.unique(x).size == x.size
    alt = {"two.sided": "two-sided", "greater": "greater", "less": "less"}[alternative]
    res = stats.kstest(x, "uniform", alternative=alt, method="exact" if exact else "asymp")
    p = float(res.pvalue)
    if not exact and alternative != "two.sided":
        p = float(np.exp(-2.0 * x.size * res.statistic ** 2))   # R's one-sided limit
    kind = "exact" if exact else "asymptotic"
    return ResidualTest("uniformity", float(res.statistic), p, alternative,
                        f"One-sample Kolmogorov-Smirnov test against U(0, 1) ({kind})")


def durbin_watson(residuals, alternative: str = "two.sided") -> ResidualTest:
    """Durbin-Watson test of residuals in time order (lmtest's ``dwtest(r ~ 1)``; module
    docstring).

    Parameters
    ----------
    residuals : array_like
        In time order.
    alternative : {"two.sided", "greater", "less"}
        ``"greater"``: positive autocorrelation (small DW), dwtest's default; DHARMa uses
        ``"two.sided"``.

    Returns
    -------
    ResidualTest
        ``statistic``: DW (about 2 without autocorrelation).
    """
    check_alternative(alternative)
    r = np.asarray(residuals, dtype=float)
    n = r.size
    if n < 3:
        raise ValueError(f"the Durbin-Watson test needs at least 3 residuals, got {n}")
    e = r - r.mean()
    dw = float(np.sum(np.diff(e) ** 2) / np.sum(e * e))
    if n < DW_EXACT_BELOW:
        lam = 2.0 - 2.0 * np.cos(np.pi * np.arange(1, n) / n)
        lower = _imhof_below_zero(lam - dw)              # P(DW < dw)
        method = "Durbin-Watson test (exact null distribution)"
    else:
        mean, var = _dw_moments(n)
        lower = float(stats.norm.cdf(dw, mean, np.sqrt(var)))
        method = "Durbin-Watson test (normal approximation)"
    p = {"greater": lower, "less": 1.0 - lower,
         "two.sided": 2.0 * min(lower, 1.0 - lower)}[alternative]
    return ResidualTest("temporal autocorrelation", dw, float(min(max(p, 0.0), 1.0)),
                        alternative, method)


def _dw_moments(n: int) -> tuple[float, float]:
    """Exact null mean and variance of DW for a regression on an intercept (dwtest's
    ``P`` and ``Q`` with ``X = 1``: ``A 1 = 0``)."""
    k = 1
    P = 2.0 * (n - 1)
    Q = 2.0 * (3 * n - 4)
    mean = P / (n - k)
    var = 2.0 / ((n - k) * (n - k + 2)) * (Q - P * mean)
    return mean, var


def _imhof_below_zero(c: np.ndarray) -> float:
    r"""``P(\sum_j c_j z_j^2 < 0)`` for independent standard normal ``z`` (Imhof 1961):
    ``1/2 - (1/\pi) \int_0^\infty \sin\theta(u) / (u \rho(u)) du`` with
    ``\theta = \frac12 \sum \arctan(c_j u)`` and ``\rho = \prod (1 + c_j^2 u^2)^{1/4}``."""
    c = c[c != 0.0]

    def integrand(u):
        if u == 0.0:
            return 0.5 * float(np.sum(c))
        theta = 0.5 * np.sum(np.arctan(c * u))
        log_rho = 0.25 * np.sum(np.log1p((c * u) ** 2))
        return np.sin(theta) / (u * np.exp(log_rho))

    value, _ = integrate.quad(integrand, 0.0, np.inf, epsabs=IMHOF_EPSABS,
                              limit=IMHOF_LIMIT)
    return float(min(max(0.5 - value / np.pi, 0.0), 1.0))


def morans_i(x, weights: np.ndarray, alternative: str = "two.sided") -> ResidualTest:
    """Moran's I with its normal-approximation test (ape's ``Moran.I``).

    Parameters
    ----------
    x : array_like (n,)
    weights : ndarray (n, n)
        Spatial weights (DHARMa: inverse distances, zero diagonal); rows are standardized
        to sum to one.
    alternative : {"two.sided", "greater", "less"}

    Returns
    -------
    ResidualTest
        ``statistic``: the observed I; ``details``: ``expected`` (``-1/(n-1)``) and ``sd``.
    """
    check_alternative(alternative)
    x = np.asarray(x, dtype=float)
    W = np.array(weights, dtype=float)
    n = x.size
    if W.shape != (n, n):
        raise ValueError(f"weights must be ({n}, {n}), got {W.shape}")
    rs = W.sum(axis=1)
    rs[rs == 0] = 1.0
    W = W / rs[:, None]
    s = W.sum()
    y = x - x.mean()
    v = float(np.sum(y * y))
    obs = (n / s) * float(y @ W @ y) / v
    ei = -1.0 / (n - 1)
    S1 = 0.5 * float(np.sum((W + W.T) ** 2))
    S2 = float(np.sum((W.sum(axis=1) + W.sum(axis=0)) ** 2))
    k = (np.sum(y ** 4) / n) / (v / n) ** 2
    var = ((n * ((n * n - 3 * n + 3) * S1 - n * S2 + 3 * s * s)
            - k * (n * (n - 1) * S1 - 2 * n * S2 + 6 * s * s))
           / ((n - 1) * (n - 2) * (n - 3) * s * s) - 1.0 / (n - 1) ** 2)
    sd = float(np.sqrt(var))
    pv = float(stats.norm.cdf(obs, ei, sd))
    p = {"two.sided": 2.0 * pv if obs <= ei else 2.0 * (1.0 - pv),
         "greater": 1.0 - pv, "less": pv}[alternative]
    return ResidualTest("spatial autocorrelation", obs, p, alternative,
                        "Moran's I test for distance-based autocorrelation",
                        {"expected": ei, "sd": sd})


def levene(values, groups) -> ResidualTest:
    """Levene's test of equal variances with group medians (car's ``leveneTest``).

    Parameters
    ----------
    values : array_like (n,)
    groups : array_like (n,)
        Group labels.

    Returns
    -------
    ResidualTest
        ``statistic``: the F value; ``details``: its degrees of freedom.
    """
    values = np.asarray(values, dtype=float)
    labels, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    parts = [values[codes == j] for j in range(len(labels))]
    res = stats.levene(*parts, center="median")
    return ResidualTest("homogeneity of variance", float(res.statistic), float(res.pvalue),
                        "two.sided", "Levene's test for homogeneity of variance (center = "
                        "median)", {"df": (len(labels) - 1, len(values) - len(labels))})


def binomial_outliers(residuals, nsim: int, alternative: str = "two.sided",
                      margin: str = "both") -> ResidualTest:
    """DHARMa's binomial outlier test (module docstring).

    Parameters
    ----------
    residuals : array_like
        Scaled residuals.
    nsim : int
        Simulations behind each residual.
    alternative : {"two.sided", "greater", "less"}
    margin : {"both", "upper", "lower"}

    Returns
    -------
    ResidualTest
        ``statistic``: the number of outliers; ``details``: ``expected_frequency``,
        ``frequency``.
    """
    check_alternative(alternative)
    r = np.asarray(residuals, dtype=float)
    edge = 1.0 / (nsim + 1)
    lower, upper = int(np.sum(r < edge)), int(np.sum(r > 1.0 - edge))
    k = {"both": lower + upper, "upper": upper, "lower": lower}[_margin(margin)]
    p0 = edge * (2 if margin == "both" else 1)
    alt = {"two.sided": "two-sided", "greater": "greater", "less": "less"}[alternative]
    res = stats.binomtest(k, r.size, p0, alternative=alt)
    return ResidualTest("outliers", float(k), float(res.pvalue), alternative,
                        "Outlier test: exact binomial test with approximate expectations",
                        {"expected_frequency": p0, "frequency": k / r.size,
                         "margin": margin})


def _margin(margin: str) -> str:
    if margin not in ("both", "upper", "lower"):
        raise ValueError(f"margin must be 'both', 'upper' or 'lower', got {margin!r}")
    return margin
