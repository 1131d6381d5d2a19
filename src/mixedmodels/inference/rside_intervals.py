r"""nlme's ``intervals()`` for models with a residual structure.

nlme (``glsApVar``, ``lmeApVar``) takes the Hessian of the (restricted) log-likelihood --
with ``beta`` profiled and ``sigma`` explicit -- in a transformed parameter vector

* random effects: per term ``log`` of each standard deviation (absolute, not relative to
  sigma) and ``log((1 + r) / (1 - r))`` of each correlation (``pdNatural``);
* correlation structure: its unconstrained scale (the general correlation matrix: each
  correlation's ``log((1 + r)/(1 - r))``, ``corNatural``);
* variance function: its unconstrained scale;
* ``log sigma`` (left out when sigma is known),

inverts it to an approximate covariance, forms ``v +- z_{(1+level)/2} se`` there and maps
the end points back to the natural scale (a correlation structure's end points as a whole
vector, as nlme's ``coef<-`` does). The fixed effects get ``+- t_{df} se`` with ``df = n - p``
(gls) or nlme's containment df (lme). The Hessian here is numDeriv-style Richardson
extrapolation (:func:`mixedmodels.inference.numderiv.hessian`); nlme's ``fdHess`` is a
cruder quadratic fit, so small differences in the last digits are nlme's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..covariance import Unstructured
from .numderiv import hessian
from .varpar import SdCorMap

__all__ = ["intervals"]


def _frame(names, lower, est, upper) -> pd.DataFrame:
    return pd.DataFrame({"lower": lower, "est.": est, "upper": upper}, index=list(names))


def _check_level(level: float) -> float:
    if not isinstance(level, float | int) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be a probability in (0, 1), not {level!r}")
    return float(level)


class _Packing:
    """The transformed vector ``v`` of the module docstring for one fit."""

    def __init__(self, m):
        self.m = m
        res = m.residual
        self.res = res
        self.has_re = hasattr(m.design, "terms") and bool(m.design.terms)
        self.sdcor = None
        if self.has_re:
            for t in m.design.terms:
                if not isinstance(t.structure, Unstructured):
                    raise NotImplementedError(
                        "intervals() handles unstructured and scalar random-effects terms; "
                        f"{t.term.source!r} has another covariance structure")
            self.sdcor = SdCorMap(m.design)
        self.fixed_sigma = res.spec.sigma is not None

    def pack(self) -> np.ndarray:
        m, res = self.m, self.res
        parts = []
        if self.has_re:
            sc = self.sdcor.from_theta(m.theta, m.sigma)[:-1]
            kinds = np.array(self.sdcor.kinds[:-1])
            if np.any(sc[kinds == "sd"] <= 0.0) or np.any(np.abs(sc[kinds == "cor"]) >= 1.0):
                raise ValueError("intervals() needs a non-singular fit: a random-effect "
                                 "standard deviation is 0 or a correlation is +-1")
            w = np.empty_like(sc)
            sd = kinds == "sd"
            w[sd] = np.log(sc[sd])
            w[~sd] = np.log((1.0 + sc[~sd]) / (1.0 - sc[~sd]))
            parts.append(w)
        uc, uv = res.split(m.phi)
        if res.n_cor:
            parts.append(res.correlation.to_interval_scale(uc))
        if res.n_var:
            parts.append(np.asarray(uv, dtype=float))
        if not self.fixed_sigma:
            parts.append([np.log(m.sigma)])
        return np.concatenate([np.asarray(p, dtype=float) for p in parts]) if parts \
            else np.zeros(0)

    def sizes(self) -> tuple[int, int, int, int]:
        n_re = self.sdcor.size - 1 if self.has_re else 0
        return n_re, self.res.n_cor, self.res.n_var, 0 if self.fixed_sigma else 1

    def unpack(self, v: np.ndarray):
        """``(theta, phi, sigma)`` at ``v``."""
        n_re, n_c, n_v, _ = self.sizes()
        sigma = self.res.spec.sigma if self.fixed_sigma else float(np.exp(v[-1]))
        theta = np.zeros(0)
        if self.has_re:
            kinds = np.array(self.sdcor.kinds[:-1])
            w = v[:n_re]
            sc = np.where(kinds == "sd", np.exp(w), np.tanh(0.5 * w))
            theta, _ = self.sdcor.to_theta(np.append(sc, sigma))
        uc = v[n_re:n_re + n_c]
        if n_c:
            uc = self.res.correlation.from_interval_scale(uc)
        phi = np.concatenate([uc, v[n_re + n_c:n_re + n_c + n_v]])
        return theta, phi, sigma

    def deviance(self, v: np.ndarray) -> float:
        theta, phi, sigma = self.unpack(np.asarray(v, dtype=float))
        obj = self.m.objective_function
        if self.has_re:
            return obj.full_deviance(theta, phi, sigma)
        return obj.full_deviance(phi, sigma)


def _fixed(m, level: float) -> pd.DataFrame:
    est = m.fixef.to_numpy()
    se = m.se.to_numpy()
    if getattr(m.design, "terms", ()):
        from .containment import containment_df

        df = containment_df(m.design).columns
    else:
        df = np.full(est.size, m.nobs - m.design.p)
    half = stats.t.ppf(0.5 + level / 2.0, df) * se
    return _frame(m.fixef.index, est - half, est, est + half)


def intervals(m, level: float = 0.95) -> dict[str, pd.DataFrame]:
    """nlme's ``intervals()`` of a :class:`GLSResult` or :class:`RSideLMMResult` (see the
    module docstring).

    Parameters
    ----------
    m : GLSResult or RSideLMMResult
    level : float

    Returns
    -------
    dict of str -> pandas.DataFrame
    """
    level = _check_level(level)
    out = {"fixed": _fixed(m, level)}
    pk = _Packing(m)
    v = pk.pack()
    if v.size == 0:
        return out
    # steps from the curvature: relative steps (numDeriv's default) are too small for
    # parameters near 0 (a correlation of 0.05) and rounding then swamps the differences.
    # A correlation of compact support (spherical, linear) has second derivatives that
    # jump wherever its range passes a distance: there only small steps see the local
    # Hessian (the one nlme's fdHess reports), and Richardson's large pilot steps would
    # straddle the jumps.
    steps = None if m.residual.compact_support else "curvature"
    H = hessian(pk.deviance, v, steps=steps) / 2.0     # Hessian of -loglik
    if not np.all(np.isfinite(H)):
        # steps off a parameter at its boundary (a log sd of -17) leave the deviance's
        # domain: numpy's eigensolver would then fail with "did not converge"
        raise ValueError("intervals(): the Hessian of the log-likelihood is not finite at "
                         "the estimates (a parameter is at the boundary of its range, e.g. "
                         "a random-effect standard deviation near 0: refit without that "
                         "term)")
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        raise ValueError("intervals(): the Hessian of the log-likelihood is singular at "
                         "the estimates") from None
    if np.any(np.linalg.eigvalsh((H + H.T) / 2.0) <= 0.0):
        raise ValueError("intervals(): the approximate covariance is not positive definite "
                         "(the estimates are not a strict maximum: a parameter is flat, "
                         "e.g. a random-effect standard deviation near 0; refit without "
                         "that term)")
    half = stats.norm.ppf(0.5 + level / 2.0) * np.sqrt(np.diag(cov))
    ends = [v - half, v, v + half]
    n_re, n_c, n_v, n_s = pk.sizes()
    res = m.residual
    if n_re:
        kinds = np.array(pk.sdcor.kinds[:-1])
        cols = [np.where(kinds == "sd", np.exp(e[:n_re]), np.tanh(0.5 * e[:n_re]))
                for e in ends]
        out["random"] = _frame(pk.sdcor.names[:-1], *cols)
    if n_c:
        c = res.correlation
        cols = [c.natural_from_interval_scale(e[n_re:n_re + n_c]) for e in ends]
        out["correlation"] = _frame(c.names, *cols)
    if n_v:
        f = res.variance
        cols = [f.natural(e[n_re + n_c:n_re + n_c + n_v]) for e in ends]
        out["variance"] = _frame(f.names, *cols)
    if n_s:
        out["sigma"] = _frame(["sigma"], *[np.exp(e[-1:]) for e in ends])
    return out
