r"""Satterthwaite's denominator degrees of freedom for fixed-effect contrasts (lmerTest).

For a contrast ``L`` (1 x p) of the fixed effects, with ``V(varpar) = vcov(beta)`` a
function of the variance parameters ``varpar = (theta, sigma)`` and ``A`` their asymptotic
covariance (twice the inverse Hessian of the (RE)ML deviance ``d(theta, sigma)``, see
:mod:`~mixedmodels.inference.varpar`),

.. math:: \nu = \frac{2\,(L V L')^2}{g' A g}, \qquad g_k = L\,\frac{\partial V}{\partial
          \text{varpar}_k}\,L'.

For an F test of a q-row contrast matrix, ``L V L' = P diag(d) P'`` is diagonalized; each of
the q orthogonal rows ``P_m' L`` gets its own ``nu_m``, and the F statistic
``sum_m (P_m' L beta)^2 / d_m / q`` is referred to ``F(q, nu)`` with
``nu = 2E / (E - q)``, ``E = sum_m nu_m / (nu_m - 2)`` (2 when any ``nu_m <= 2``), as
lmerTest's ``contestMD`` does (Fai & Cornelius 1996).

The Hessian and the Jacobian of ``V`` come from Richardson-extrapolated central differences
(:mod:`~mixedmodels.inference.numderiv`), as lmerTest's come from numDeriv.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._errors import MixedModelsWarning
from .._messages import user_stacklevel
from .numderiv import hessian, jacobian
from .varpar import varpar_deviance, vcov_at

__all__ = ["EIGEN_TOL", "SatterthwaiteState", "fstat_ddf", "satterthwaite_state"]

#: Eigenvalues of the deviance Hessian below this count as zero (lmerTest's ``tol``).
EIGEN_TOL = 1e-8
#: Relative eigenvalue cut-off for the rank of ``L V L'`` (lmerTest: sqrt(machine eps)).
CONTRAST_RANK_TOL = float(np.sqrt(np.finfo(float).eps))
#: nu_m closer than this are treated as equal when combining them (lmerTest's tol).
NU_EQUAL_TOL = 1e-8


class SatterthwaiteWarning(MixedModelsWarning):
    """The Hessian of the deviance is not positive definite at the estimates."""


@dataclass(frozen=True)
class SatterthwaiteState:
    """What Satterthwaite's method needs from a fit, computed once.

    Attributes
    ----------
    beta : ndarray (p,)
    vcov_beta : ndarray (p, p)
    vcov_varpar : ndarray (k, k)
        ``2 H^{-1}`` over the positive eigenvalues of the deviance Hessian ``H``.
    jac : ndarray (k, p, p)
        ``d vcov(beta) / d varpar_k``.
    """

    beta: np.ndarray
    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jac: np.ndarray

    def contrast_df(self, L: np.ndarray) -> tuple[float, float]:
        """Variance of ``L beta`` and its Satterthwaite df for one contrast row."""
        L = np.asarray(L, dtype=float)
        var = float(L @ self.vcov_beta @ L)
        g = np.einsum("i,kij,j->k", L, self.jac, L)
        denom = float(g @ self.vcov_varpar @ g)
        return var, (2.0 * var * var / denom if denom > 0 else np.inf)

    def f_test(self, L: np.ndarray) -> tuple[float, int, float]:
        """F statistic, numerator df and Satterthwaite denominator df for ``L beta = 0``."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        VL = L @ self.vcov_beta @ L.T
        d, P = np.linalg.eigh(VL)
        order = np.argsort(d)[::-1]
        d, P = d[order], P[:, order]
        tol = max(CONTRAST_RANK_TOL * d[0], 0.0)
        q = int(np.sum(d > tol))
        if q == 0:
            return np.nan, 0, np.nan
        PtL = P[:, :q].T @ L
        t2 = (PtL @ self.beta) ** 2 / d[:q]
        nu = np.array([self.contrast_df(PtL[m])[1] for m in range(q)])
        return float(t2.sum() / q), q, fstat_ddf(nu)


def fstat_ddf(nu: np.ndarray) -> float:
    """Combine the per-direction df of an F test (lmerTest's ``get_Fstat_ddf``)."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < NU_EQUAL_TOL):
        return float(nu.mean())
    if np.any(nu <= 2.0):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def satterthwaite_state(m) -> SatterthwaiteState:
    """Hessian of the deviance in ``(theta, sigma)`` and Jacobian of ``vcov(beta)`` at the
    estimates of the LMM ``m`` (lmerTest's ``as_lmerModLmerTest``)."""
    obj = m.objective_function
    varpar = np.concatenate([m.theta, [m.sigma]])
    H = hessian(varpar_deviance(obj, m.reml), varpar, steps="curvature")
    evals, evecs = np.linalg.eigh(H)
    if np.any(evals < -EIGEN_TOL):
        warnings.warn(
            f"the deviance Hessian has {int(np.sum(evals < -EIGEN_TOL))} negative "
            "eigenvalue(s) at the estimates: the model may not have converged and the "
            "Satterthwaite df are unreliable", SatterthwaiteWarning, stacklevel=user_stacklevel())
    pos = evals > EIGEN_TOL
    H_inv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    p = m.design.p
    J = jacobian(vcov_at(obj), varpar)                 # (p*p, k)
    jac = J.T.reshape(-1, p, p)
    return SatterthwaiteState(np.asarray(m.beta, float), m.vcov.to_numpy(), 2.0 * H_inv, jac)
