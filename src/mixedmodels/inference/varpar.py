r"""The variance parameters of an LMM in the two scales inference uses.

*theta scale* (lmerTest): ``varpar = (theta, sigma)``. The (RE)ML deviance with ``beta``
profiled out but ``sigma`` free is

.. math::

    d_{ML}(\theta, \sigma) &= \log|L_Z|^2 - \log|W| + r^2(\theta)/\sigma^2
                             + n \log(2\pi\sigma^2) \\
    d_{REML}(\theta, \sigma) &= d_{ML}(\theta, \sigma) + \log|R_X|^2 - p \log(2\pi\sigma^2)

(lmerTest's ``devfun_vp``), and ``vcov(beta) = sigma^2 R_X^{-1} R_X^{-T}``.

*sd/cor scale* (lme4's ``profile`` and the GLMM FAQ's delta method): per term, the standard
deviations and correlations of the random effects in the order of theta (lower triangle
column by column: diagonal entries become sds, off-diagonal ones correlations), then
``sigma``; named as lme4's ``oldNames = FALSE``: ``sd_(Intercept)|Subject``,
``cor_Days.(Intercept)|Subject``, ``sigma``. A term's covariance is ``D C D`` with ``D`` the
sds and ``C`` the correlations, and ``Lambda = D chol(C) / sigma``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..objective import LMMObjective

__all__ = ["FactorSummary", "SdCorMap", "factor_summary", "psd_cholesky", "r_effect_name",
           "varpar_deviance", "vcov_at"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def r_effect_name(name: str) -> str:
    """R's spelling of a random-effect name (``Intercept`` -> ``(Intercept)``)."""
    return "(Intercept)" if name == "Intercept" else name


def psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive *semi*-definite matrix (zero pivots allowed).

    A correlation of +-1 makes ``C`` singular; the factor then has a zero on its diagonal
    (the boundary of lme4's parameter space), which ``numpy.linalg.cholesky`` refuses.
    The loop is over the p effects of one term, never over data.
    """
    p = C.shape[0]
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        pass
    L = np.zeros_like(C, dtype=float)
    for j in range(p):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(max(d, 0.0))
        if L[j, j] > 0.0:
            L[j + 1:, j] = (C[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


class SdCorMap:
    """Converts between theta (with sigma) and the sd/cor parameters of a design.

    Parameters
    ----------
    design : Design
    has_sigma : bool
        The model has a residual standard deviation (LMM: True).
    """

    def __init__(self, design, has_sigma: bool = True):
        self.design = design
        self.has_sigma = has_sigma
        names, kinds, bounds = [], [], []
        for t, sl in zip(design.terms, design.theta_slices(), strict=True):
            eff = [r_effect_name(n) for n in t.names]
            rows, cols = _lower_indices(t.p)
            for r, c in zip(rows, cols, strict=True):
                if r == c:
                    names.append(f"sd_{eff[r]}|{t.group}")
                    kinds.append("sd")
                    bounds.append((0.0, np.inf))
                else:
                    names.append(f"cor_{eff[r]}.{eff[c]}|{t.group}")
                    kinds.append("cor")
                    bounds.append((-1.0, 1.0))
            del sl
        if has_sigma:
            names.append("sigma")
            kinds.append("sigma")
            bounds.append((0.0, np.inf))
        self.names = tuple(names)
        self.kinds = tuple(kinds)
        self.lower = np.array([b[0] for b in bounds])
        self.upper = np.array([b[1] for b in bounds])
        self._all_scalar = all(t.p == 1 for t in design.terms)
        self._n_theta = design.n_theta

    @property
    def size(self) -> int:
        return len(self.names)

    def from_theta(self, theta: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        """sd/cor vector (and sigma) from theta and sigma."""
        out = []
        s = sigma if self.has_sigma else 1.0
        for t, sl in zip(self.design.terms, self.design.theta_slices(), strict=True):
            lam = t.structure.lambda_(theta[sl])
            cov = (s * s) * (lam @ lam.T)
            sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
            rows, cols = _lower_indices(t.p)
            for r, c in zip(rows, cols, strict=True):
                if r == c:
                    out.append(sd[r])
                else:
                    den = sd[r] * sd[c]
                    out.append(cov[r, c] / den if den > 0 else 0.0)
        if self.has_sigma:
            out.append(sigma)
        return np.asarray(out, dtype=float)

    def to_theta(self, pars: np.ndarray) -> tuple[np.ndarray, float]:
        """theta and sigma from an sd/cor vector (lme4's ``Sv_to_Cv``)."""
        pars = np.asarray(pars, dtype=float)
        sigma = float(pars[-1]) if self.has_sigma else 1.0
        if self._all_scalar:
            # every term has one effect: theta is sd / sigma (the common, fast case)
            return pars[:self._n_theta] / sigma, sigma
        thetas, pos = [], 0
        for t in self.design.terms:
            rows, cols = _lower_indices(t.p)
            k = rows.size
            vals = pars[pos:pos + k]
            pos += k
            diag = rows == cols
            sd = vals[diag]
            C = np.eye(t.p)
            C[rows[~diag], cols[~diag]] = vals[~diag]
            C[cols[~diag], rows[~diag]] = vals[~diag]
            lam = (sd[:, None] * psd_cholesky(C)) / sigma
            thetas.append(lam[rows, cols])
        return np.concatenate(thetas) if thetas else np.zeros(0), sigma


def _lower_indices(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower-triangle (row, col) pairs column by column: theta's order."""
    cols, rows = np.triu_indices(p)
    return rows, cols


@dataclass(frozen=True)
class FactorSummary:
    """What the deviance pieces need from the factor at one theta.

    ``logdet_Z = log|L_Z|^2``, ``pwrss = r^2``, ``logdet_X = log|R_X|^2``, the conditional
    ``beta`` and ``RX_inv`` (``(X' V^{-1} X)^{-1} = RX_inv RX_inv'``, unscaled).
    """

    logdet_Z: float
    pwrss: float
    logdet_X: float
    beta: np.ndarray
    RX_inv: np.ndarray


def factor_summary(obj: LMMObjective, theta: np.ndarray) -> FactorSummary | None:
    """Factor the penalized system at ``theta`` and read off the deviance pieces.

    Uses the objective's factorization (``obj.system.factorize``) directly: profiling and
    numerical derivatives evaluate thousands of thetas and need neither the random
    effects nor the conditional variances that :meth:`LMMObjective.solve` also computes.
    The factor is in the objective's internal fixed-effects basis;
    :meth:`LMMObjective.fixed_part` maps ``beta``, ``R_X^{-1}`` and ``log|R_X|^2`` back to
    the user's ``X``. None when the system is not positive definite.
    """
    f = obj.system.factorize(np.asarray(theta, dtype=float))
    if f is None:
        return None
    beta, RX_inv, logdet_X = obj.fixed_part(f)
    return FactorSummary(float(f.logdet_Z), f.pwrss(), logdet_X, beta, RX_inv)


def varpar_deviance(obj: LMMObjective, reml: bool):
    r"""``d(theta, sigma)`` of the module docstring as a function of ``varpar``."""
    n, p = obj.n, obj.p

    def dev(varpar: np.ndarray) -> float:
        theta, sigma = varpar[:-1], varpar[-1]
        s2 = sigma * sigma
        sol = factor_summary(obj, theta)
        if sol is None:
            return np.inf
        d = sol.logdet_Z - obj.log_det_w + sol.pwrss / s2 + n * (_LOG_2PI + np.log(s2))
        if reml:
            d += sol.logdet_X - p * (_LOG_2PI + np.log(s2))
        return float(d)

    return dev


def vcov_at(obj: LMMObjective):
    """``varpar -> vcov(beta) = sigma^2 R_X^{-1} R_X^{-T}`` (flattened)."""

    def cov(varpar: np.ndarray) -> np.ndarray:
        sol = factor_summary(obj, varpar[:-1])
        return (varpar[-1] ** 2 * (sol.RX_inv @ sol.RX_inv.T)).ravel()

    return cov
