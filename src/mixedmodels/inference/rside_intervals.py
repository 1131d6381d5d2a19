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

from .._errors import SingularFitWarning
from .._messages import emit_warning
from ..covariance import Unstructured
from ..linalg.flat_parameters import conditional_covariance
from .numderiv import hessian
from .varpar import SdCorMap

__all__ = ["WIDE_SE", "intervals"]

#: A standard error above this on the transformed scale (log standard deviations, Fisher z,
#: log range) gets a note: the 95% interval then spans a factor of more than e^(2 1.96 x 5)
#: ~ 3e8 on a log scale, or nearly all of (-1, 1) for a correlation.
WIDE_SE = 5.0


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
            # a standard deviation of 0 or a correlation of +-1 is an infinite coordinate
            # (held there: see _boundary_covariance)
            w = np.empty_like(sc)
            sd = kinds == "sd"
            with np.errstate(divide="ignore"):
                w[sd] = np.log(np.maximum(sc[sd], 0.0))
                r = np.clip(sc[~sd], -1.0, 1.0)
                w[~sd] = np.log((1.0 + r) / (1.0 - r))
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


def _boundary_covariance(f, v: np.ndarray, steps) -> tuple[np.ndarray, np.ndarray]:
    """Approximate covariance of the parameters with a usable curvature, and their mask.

    Coordinates that are infinite (a standard deviation of 0) are held where they are;
    of the rest, the flat ones are held at their estimates
    (:func:`~mixedmodels.linalg.flat_parameters.conditional_covariance`).
    """
    keep = np.isfinite(v)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return keep, np.zeros((0, 0))

    def at(w):
        x = v.copy()
        x[idx] = w
        return f(x)

    H = hessian(at, v[idx], steps=steps) / 2.0     # Hessian of -loglik
    V, flat = conditional_covariance(H)
    keep[idx[flat]] = False
    return keep, V[np.ix_(~flat, ~flat)]


def _notes(names, v, keep, se) -> list[tuple[str, bool]]:
    """What :func:`intervals` says about parameters at or near a boundary: ``(note,
    held)`` pairs (``held``: the parameter has no interval)."""
    out = []
    for name, vi, k, s in zip(names, v, keep, se, strict=True):
        if not np.isfinite(vi):
            out.append((f"{name}: at the boundary of its range (a standard deviation of 0 "
                        "or a correlation of +-1); no Wald interval (NaN), the other "
                        "intervals hold it there", True))
        elif not k:
            out.append((f"{name}: the log-likelihood is flat (or undefined) around the "
                        "estimate -- the parameter is at the boundary of its range or not "
                        "identified; no Wald interval (NaN), the other intervals hold it "
                        "at its estimate", True))
        elif s > WIDE_SE:
            out.append((f"{name}: standard error {s:.3g} on the transformed scale -- the "
                        "estimate is near the boundary of its range and the interval "
                        "(from Wald's approximation there) says little", False))
    return out


def _sigma_chisq(m, level: float) -> pd.DataFrame:
    r"""Sigma's interval of a gls with no other estimated variance parameter, as nlme's
    ``intervals.gls`` without an ``apVar``: ``N_r \hat\sigma^2 / \sigma^2 \sim
    \chi^2_{N_r}`` with ``N_r = n - p`` (REML) or ``n`` (ML), so the end points are
    ``\hat\sigma \sqrt{N_r / \chi^2_{N_r}((1 \pm level) / 2)}``."""
    nr = m.nobs - (m.design.p if m.reml else 0)
    est = m.sigma * np.sqrt(nr)
    lo = est / np.sqrt(stats.chi2.ppf(0.5 + level / 2.0, nr))
    hi = est / np.sqrt(stats.chi2.ppf(0.5 - level / 2.0, nr))
    frame = _frame(["sigma"], [lo], [m.sigma], [hi])
    frame.attrs["notes"] = []
    return frame


def intervals(m, level: float = 0.95) -> dict[str, pd.DataFrame]:
    """nlme's ``intervals()`` of a :class:`GLSResult` or :class:`RSideLMMResult` (see the
    module docstring).

    Where the approximate covariance is positive definite this is nlme's answer, however
    wide (nlme's ``(0, Inf)`` for a range run to 0). Where it is not -- nlme then refuses
    all variance-parameter intervals -- the parameters at fault (flat around the estimate,
    at a boundary such as a standard deviation of 0, or not identified) get NaN bounds and
    the others intervals with those held at their estimates; a
    :class:`~mixedmodels.SingularFitWarning` names them. Each such parameter, and each
    interval wider than a standard error of :data:`WIDE_SE` on the transformed scale, gets
    a note in the ``"notes"`` entry of its table's ``attrs``. Never an error for a
    parameter at its boundary: the fixed effects' intervals are always given.

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
    if not pk.has_re and pk.res.n_par == 0 and not pk.fixed_sigma:
        # nothing but sigma estimated (a gls whose structures are all fixed): nlme has no
        # apVar then and gives sigma's exact interval instead (_sigma_chisq)
        out["sigma"] = _sigma_chisq(m, level)
        return out
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
    keep, cov = _boundary_covariance(pk.deviance, v, steps)
    se = np.full(v.size, np.nan)
    se[keep] = np.sqrt(np.diag(cov))
    half = stats.norm.ppf(0.5 + level / 2.0) * se
    # the held parameters' end points are their estimates while the others' are mapped (a
    # correlation structure maps as a whole vector), then NaN
    h = np.where(keep, half, 0.0)
    ends = [v - h, v, v + h]
    n_re, n_c, n_v, n_s = pk.sizes()
    res = m.residual
    blocks = []
    if n_re:
        kinds = np.array(pk.sdcor.kinds[:-1])
        sl = slice(0, n_re)
        cols = [np.where(kinds == "sd", np.exp(e[sl]), np.tanh(0.5 * e[sl])) for e in ends]
        blocks.append(("random", pk.sdcor.names[:-1], sl, cols))
    if n_c:
        c = res.correlation
        sl = slice(n_re, n_re + n_c)
        cols = [c.natural_from_interval_scale(e[sl]) for e in ends]
        blocks.append(("correlation", c.names, sl, cols))
    if n_v:
        f = res.variance
        sl = slice(n_re + n_c, n_re + n_c + n_v)
        cols = [f.natural(e[sl]) for e in ends]
        blocks.append(("variance", f.names, sl, cols))
    if n_s:
        sl = slice(v.size - 1, v.size)
        blocks.append(("sigma", ["sigma"], sl, [np.exp(e[sl]) for e in ends]))
    held_notes = []
    for key, names, sl, cols in blocks:
        lo, est, hi = (np.asarray(c, dtype=float).copy() for c in cols)
        lo[~keep[sl]] = np.nan
        hi[~keep[sl]] = np.nan
        frame = _frame(names, lo, est, hi)
        notes = _notes(list(names), v[sl], keep[sl], se[sl])
        frame.attrs["notes"] = [n for n, _ in notes]
        held_notes += [n for n, held in notes if held]
        out[key] = frame
    if held_notes:
        emit_warning("intervals(): " + "; ".join(held_notes), SingularFitWarning)
    return out
