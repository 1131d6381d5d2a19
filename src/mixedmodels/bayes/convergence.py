r"""Convergence diagnostics of MCMC draws: rank-normalized split R-hat and effective sample
sizes (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021, as Stan, posterior and ArviZ
compute them).

For ``M`` chains of ``N`` draws of one scalar, each chain is split in halves (``2M``
chains of ``N/2``). With ``W`` the mean within-chain variance, ``B/n`` the variance of the
chain means and ``var+ = (n-1)/n W + B/n``, ``R-hat = sqrt(var+ / W)``. *Rank
normalization*: the pooled draws are replaced by ``Phi^{-1}((r - 3/8) / (S + 1/4))`` of
their ranks ``r`` (average ranks for ties), which makes R-hat and ESS work for heavy tails;
the reported R-hat is the larger of those of the normalized draws and of the normalized
folded draws ``|x - median|`` (which sees differences in scale).

The effective sample size is ``M N / tau`` with ``tau = -1 + 2 sum_k P_k``, ``P_k`` the
sums of pairs of autocorrelations ``rho_t = 1 - (W - mean_m acov_{m,t}) / var+`` truncated
by Geyer's initial positive sequence and made monotone. *Bulk* ESS uses the normalized
split chains; *tail* ESS is the smaller of those of the indicators of the 5% and 95%
quantiles.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

__all__ = ["ess_bulk", "ess_mean", "ess_tail", "mcse_mean", "r_hat"]

#: Quantiles whose indicators define the tail ESS.
TAIL_QUANTILES = (0.05, 0.95)


def _chains(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"draws must be (chains, draws); got shape {x.shape}")
    return x


def _split(x: np.ndarray) -> np.ndarray:
    n = x.shape[1] // 2
    return np.vstack([x[:, :n], x[:, x.shape[1] - n:]])


def _z_scale(x: np.ndarray) -> np.ndarray:
    r = rankdata(x, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))


def _basic_rhat(x: np.ndarray) -> float:
    m, n = x.shape
    if n < 2:
        return np.nan
    W = x.var(axis=1, ddof=1).mean()
    B_n = x.mean(axis=1).var(ddof=1) if m > 1 else 0.0
    if W <= 0.0:
        return np.nan
    return float(np.sqrt(((n - 1) / n * W + B_n) / W))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariances of each row (FFT, biased estimator as Stan)."""
    n = x.shape[1]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(xc, size, axis=1)
    return np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    m, n = x.shape
    if n < 4 or not np.all(np.isfinite(x)):
        return np.nan
    acov = _autocov(x)
    chain_var = acov[:, 0] * n / (n - 1.0)
    W = chain_var.mean()
    var_plus = W * (n - 1.0) / n + (x.mean(axis=1).var(ddof=1) if m > 1 else 0.0)
    if var_plus <= 0.0:
        return np.nan
    rho = 1.0 - (W - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer: sums of pairs rho_{2k} + rho_{2k+1} while not negative, then monotone
    npairs = n // 2
    P = rho[:2 * npairs].reshape(npairs, 2).sum(axis=1)
    neg = np.nonzero(P < 0.0)[0]
    # the positive even autocorrelation of the first negative pair still counts (Stan)
    tail = rho[2 * neg[0]] if neg.size and rho[2 * neg[0]] > 0.0 else 0.0
    P = np.minimum.accumulate(P[:neg[0]] if neg.size else P)
    tau = max(-1.0 + 2.0 * P.sum() + tail, 1.0 / np.log10(m * n))
    return float(m * n / tau)


def r_hat(x) -> float:
    """Rank-normalized split R-hat of ``x`` (chains x draws)."""
    s = _split(_chains(x))
    if not np.all(np.isfinite(s)):
        return np.nan
    if np.ptp(s) == 0.0:
        return np.nan
    folded = np.abs(s - np.median(s))
    return max(_basic_rhat(_z_scale(s)), _basic_rhat(_z_scale(folded)))


def ess_bulk(x) -> float:
    """Bulk effective sample size (rank-normalized split chains)."""
    s = _split(_chains(x))
    if np.ptp(s) == 0.0:
        return np.nan
    return _ess(_z_scale(s))


def ess_mean(x) -> float:
    """Effective sample size of the mean (split chains, not normalized)."""
    return _ess(_split(_chains(x)))


def ess_tail(x) -> float:
    """Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators."""
    s = _split(_chains(x))
    out = []
    for q in TAIL_QUANTILES:
        ind = (s <= np.quantile(s, q)).astype(float)
        out.append(_ess(ind) if np.ptp(ind) > 0 else np.nan)
    return float(np.nanmin(out)) if not np.all(np.isnan(out)) else np.nan


def mcse_mean(x) -> float:
    """Monte Carlo standard error of the mean: ``sd / sqrt(ESS_mean)``."""
    c = _chains(x)
    return float(c.std(ddof=1) / np.sqrt(ess_mean(c)))
