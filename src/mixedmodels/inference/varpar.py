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
sds and ``C`` the correlations, and ``Lambda = D chol(C) / sigma``. Structured terms
contribute their natural parameters instead (``sd_ftime0|subject`` ...,
``ar1_phi|subject``; see :mod:`mixedmodels.covariance`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..covariance.unstructured import psd_cholesky
from ..objective import LMMObjective

__all__ = ["FactorSummary", "SdCorMap", "factor_summary", "psd_cholesky", "r_effect_name",
           "varpar_deviance", "vcov_at"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def r_effect_name(name: str) -> str:
    """R's spelling of a random-effect name (``Intercept`` -> ``(Intercept)``)."""
    return "(Intercept)" if name == "Intercept" else name


def _term_parameter_names(t) -> tuple[list[str], list[str]]:
    """lme4's names of a term's natural parameters (``sd_(Intercept)|Subject``,
    ``cor_Days.(Intercept)|Subject``) and their kinds; structured terms prefix their own
    parameters with the keyword (``ar1_phi|subject``, ``exp_range|site``)."""
    s = t.structure
    eff = [r_effect_name(n) for n in t.names]
    names, kinds = [], []
    lo, hi = s.parameter_bounds()
    scales = s.parameter_scales()
    for k, nat in enumerate(s.parameter_names()):
        sd = re.fullmatch(r"sd_(\d+)", nat)
        cor = re.fullmatch(r"cor_(\d+)\.(\d+)", nat)
        if sd:
            label = f"sd_{eff[int(sd.group(1)) - 1]}"
        elif cor:
            label = f"cor_{eff[int(cor.group(1)) - 1]}.{eff[int(cor.group(2)) - 1]}"
        else:
            label = f"{s.keyword}_{nat}"
        names.append(f"{label}|{t.group}")
        kinds.append("sd" if scales[k] else
                     ("cor" if lo[k] == -1.0 and hi[k] == 1.0 else "par"))
    return names, kinds


class SdCorMap:
    """Converts between theta (with sigma) and the natural parameters of a design.

    Per term the structure's natural parameters (:meth:`~mixedmodels.covariance.
    CovarianceStructure.parameters`): for lme4's unstructured terms the standard deviations
    and correlations in theta's order; for structured terms their standard deviations and
    correlation parameters (an AR(1) coefficient, a range). Standard deviations (and factor
    loadings) are multiplied by sigma.

    Parameters
    ----------
    design : Design
    has_sigma : bool
        The model has a residual standard deviation (LMM: True).
    """

    def __init__(self, design, has_sigma: bool = True):
        self.design = design
        self.has_sigma = has_sigma
        names, kinds, lower, upper, scales = [], [], [], [], []
        for t in design.terms:
            n, k = _term_parameter_names(t)
            lo, hi = t.structure.parameter_bounds()
            names += n
            kinds += k
            lower.append(lo)
            upper.append(hi)
            scales.append(t.structure.parameter_scales())
        if has_sigma:
            names.append("sigma")
            kinds.append("sigma")
            lower.append(np.zeros(1))
            upper.append(np.full(1, np.inf))
        self.names = tuple(names)
        self.kinds = tuple(kinds)
        self.lower = np.concatenate(lower) if lower else np.zeros(0)
        self.upper = np.concatenate(upper) if upper else np.zeros(0)
        self._scales = [sc.astype(bool) for sc in scales]
        self._all_scalar = all(t.p == 1 and t.structure.keyword == "us"
                               for t in design.terms)
        self._n_theta = design.n_theta

    @property
    def size(self) -> int:
        return len(self.names)

    def from_theta(self, theta: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        """Natural parameters (and sigma) from theta and sigma."""
        out = []
        s = sigma if self.has_sigma else 1.0
        for t, sl, sc in zip(self.design.terms, self.design.theta_slices(), self._scales,
                             strict=True):
            nat = t.structure.parameters(theta[sl])
            out.append(np.where(sc, nat * s, nat))
        if self.has_sigma:
            out.append(np.array([sigma]))
        return np.concatenate(out) if out else np.zeros(0)

    def to_theta(self, pars: np.ndarray) -> tuple[np.ndarray, float]:
        """theta and sigma from natural parameters (lme4's ``Sv_to_Cv`` for ``us``)."""
        pars = np.asarray(pars, dtype=float)
        sigma = float(pars[-1]) if self.has_sigma else 1.0
        if self._all_scalar:
            # every term has one effect: theta is sd / sigma (the common, fast case)
            return pars[:self._n_theta] / sigma, sigma
        thetas, pos = [], 0
        for t, sc in zip(self.design.terms, self._scales, strict=True):
            k = sc.size
            vals = pars[pos:pos + k]
            pos += k
            thetas.append(t.structure.theta_from_parameters(np.where(sc, vals / sigma, vals)))
        return np.concatenate(thetas) if thetas else np.zeros(0), sigma


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
    try:
        f = obj.system.factorize(np.asarray(theta, dtype=float))
    except np.linalg.LinAlgError:
        # a structure with no covariance at theta (a Matern smoothness at which its
        # correlation overflows): as a factor that is not positive definite
        return None
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
