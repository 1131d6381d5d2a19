r"""Likelihood profiles of a linear mixed model and the intervals read off them (lme4's
``profile`` and ``confint(method = "profile")``).

For each parameter ``psi`` (a standard deviation, a correlation, ``sigma`` or a fixed
effect) the profile is the maximum-likelihood deviance with ``psi`` held fixed and every
other parameter optimized,

.. math:: \zeta(\psi) = \operatorname{sign}(\psi - \hat\psi)
          \sqrt{d_{prof}(\psi) - d(\hat\theta)},

the signed square root of the likelihood-ratio statistic; ``{psi : |zeta| <= z_{1-a/2}}`` is
the profile-likelihood interval. As in lme4, the deviance is the *maximum-likelihood* one
(REML fits are refitted by ML first), the variance parameters are profiled on the sd/cor
scale (:mod:`~mixedmodels.inference.varpar`) and fixed effects with ``beta_j`` held fixed.

For a fixed ``beta_j`` the penalized residual sum of squares minimized over the other fixed
effects is ``r^2(theta) + (beta_j - hat beta_j(theta))^2 / [(R_X' R_X)^{-1}]_{jj}``, so the
fixed-effect profile needs only the factor at each theta -- no new cross-products.

The grid follows lme4 (steps that raise ``|zeta|`` by about ``delta = cutoff / 8``, capped at
10 times the previous step, up to ``cutoff = sqrt(chi2_{1-alphamax}(n_par))`` or a bound).
Interval end points are then found by root finding on the exact profile between bracketing
grid points (lme4 interpolates a spline instead). Where the profile stays below the critical
value up to a bound (a standard deviation at 0, a correlation at +-1) the interval is
truncated at the bound and a note says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._errors import MixedModelsWarning
from .._messages import user_stacklevel
from ..display.progress import progress_bar
from ..display.tables import Report, ReportDisplay, Table
from ..objective import LMMObjective
from ..optim import minimize
from .simulate import refit_ml
from .varpar import SdCorMap, factor_summary

__all__ = ["LikelihoodProfile", "ProfileCurve", "profile_lmm", "profile_model"]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: lme4's profile defaults.
ALPHA_MAX = 0.01
DELTA_CUTOFF = 1.0 / 8.0
MAX_MULT = 10.0
MAX_POINTS = 100
#: Relative shift of the first point from the estimate (lme4: 1%; 0.001 when it is 0).
FIRST_SHIFT = 0.01
FIRST_SHIFT_AT_ZERO = 1e-3
#: Smallest step when the profile is flat (lme4's ``minstep``).
MIN_STEP = 1e-6
#: Deviances this much below the optimum are rounding, not a better fit (lme4: 1e-9
#: raises; we tolerate optimizer noise a little above it).
DEV_TOL = 1e-6
#: Tolerances of the inner optimizations (tighter than a fit's, so zeta is accurate).
INNER_SETTINGS = {"xtol_abs": 1e-8, "ftol_abs": 1e-10}
#: Initial trust-region step of the inner optimizations, relative to the start (floored at
#: ``INITIAL_STEP_FLOOR``): the start is the optimum at a neighbouring grid point, so a
#: small first step saves about half the evaluations of NLopt's default.
INITIAL_STEP = 0.01
INITIAL_STEP_FLOOR = 0.1
#: Relative tolerance of the interval end points (root finding on zeta).
ROOT_XTOL = 1e-8


class ProfileWarning(MixedModelsWarning):
    """Something unexpected while profiling (a lower deviance than the fit's)."""


@dataclass(frozen=True, repr=False)
class ProfileCurve:
    """Profile of one parameter.

    Attributes
    ----------
    name : str
    kind : {"sd", "cor", "sigma", "fixef"}
    values : ndarray
        Parameter values, increasing.
    zeta : ndarray
        Signed square root of the deviance increase at ``values``.
    params : ndarray (len(values), k)
        All parameters (sd/cor scale, then sigma, then fixed effects) along the curve.
    estimate : float
    bounds : (float, float)
        Range the parameter may take (0 for a standard deviation, +-1 for a correlation).
    """

    name: str
    kind: str
    values: np.ndarray
    zeta: np.ndarray
    params: np.ndarray
    estimate: float
    bounds: tuple
    zeta_fun: object = field(repr=False, compare=False, default=None)

    def __repr__(self) -> str:
        return (f"<ProfileCurve {self.name!r} ({self.kind}): {self.values.size} points over "
                f"[{self.values.min():.4g}, {self.values.max():.4g}], estimate "
                f"{self.estimate:.4g}>")


@dataclass(frozen=True, repr=False)
class LikelihoodProfile(ReportDisplay):
    """Profiles of all parameters of a fit (lme4's ``thpr`` object).

    Attributes
    ----------
    curves : dict of str -> ProfileCurve
        In lme4's order: variance parameters (sd/cor per term, sigma), then fixed effects.
    base_deviance : float
        ML deviance at the (ML) estimates.
    param_names : tuple of str
        Names of the columns of each curve's ``params``.
    """

    curves: dict
    base_deviance: float
    param_names: tuple

    def report(self, level: float = 0.95) -> Report:
        """Parameters, points, estimates and profile intervals as a table.

        Parameters
        ----------
        level : float
            Confidence level of the intervals shown.

        Returns
        -------
        Report
        """
        ci = self.confint(level)
        rows = []
        for name, c in self.curves.items():
            rows.append((name, c.kind, str(c.values.size), f"{c.estimate:.6g}",
                         f"{ci.loc[name, 'lower']:.6g}", f"{ci.loc[name, 'upper']:.6g}"))
        pct = f"{100 * level:g}%"
        table = Table(("parameter", "kind", "points", "estimate", f"{pct} lower",
                       f"{pct} upper"), tuple(rows), "llrrrr", "Profile intervals")
        blocks: list = [f"Likelihood profile of {len(self.curves)} parameter(s); ML "
                        f"deviance at the estimates {self.base_deviance:.4f}", table]
        if "note" in ci.columns:
            blocks += [f"{n}: {note}" for n, note in ci["note"].items() if note]
        return Report(tuple(blocks))

    def as_frame(self) -> pd.DataFrame:
        """Long table like lme4's ``as.data.frame(profile)``.

        Returns
        -------
        pandas.DataFrame
            Columns ``.par`` (parameter name), ``.zeta`` (signed square root of the deviance
            increase) and ``value`` (the parameter), the curves one after another.
        """
        frames = [pd.DataFrame({".par": c.name, ".zeta": c.zeta, "value": c.values})
                  for c in self.curves.values()]
        return pd.concat(frames, ignore_index=True)

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile-likelihood intervals.

        The ends are where ``zeta`` (the signed root of the deviance increase) crosses
        ``-+ z_{(1 + level)/2}``: a root of the profile between the two grid points that
        bracket it (linear interpolation where the curve keeps no profile function).

        Parameters
        ----------
        level : float
            Coverage probability.

        Returns
        -------
        pandas.DataFrame
            ``lower`` and ``upper`` per parameter, and a ``note`` column when an interval is
            truncated at a bound of the parameter space (a standard deviation at 0, a
            correlation at +-1).
        """
        z = stats.norm.ppf(0.5 + level / 2.0)
        rows, notes = [], []
        for c in self.curves.values():
            lo, lo_note = _end_point(c, -z)
            hi, hi_note = _end_point(c, z)
            rows.append((lo, hi))
            notes.append("; ".join(n for n in (lo_note, hi_note) if n))
        out = pd.DataFrame(rows, index=list(self.curves), columns=["lower", "upper"])
        if any(notes):
            out["note"] = notes
        return out

    def plot(self, params=None, ax=None, level: float = 0.95):
        """Plot ``zeta`` against each parameter with the profile interval marked (lme4's
        ``xyplot`` of a profile; :func:`mixedmodels.plotting.profile_plot`).

        Needs matplotlib (``pip install mixedmodels[plot]``). The figure is not
        registered with pyplot: a notebook shows it once; save it with ``savefig``.

        Parameters
        ----------
        params : sequence of str, optional
            Parameter names to plot (default: every curve).
        ax : matplotlib Axes or array of Axes, optional
            Where to draw, one axes per parameter; default: a new figure.
        level : float
            The interval marked (vertical lines at its ends, horizontal ones at
            ``-+ z``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plotting import profile_plot

        return profile_plot(self, params=params, level=level, ax=ax)


def _end_point(c: ProfileCurve, target: float) -> tuple[float, str]:
    """Parameter value where ``zeta = target`` (exact root between grid points)."""
    z, v = c.zeta, c.values
    side = "upper" if target > 0 else "lower"
    inside = (z >= target) if target > 0 else (z <= target)
    if not inside.any():
        bound = c.bounds[1] if target > 0 else c.bounds[0]
        end = v[-1] if target > 0 else v[0]
        if np.isfinite(bound) and np.isclose(end, bound):
            return float(bound), f"{side} end truncated at the boundary {bound:g}"
        return np.nan, f"{side} end beyond the profiled range"
    if target > 0:
        k = int(np.flatnonzero(inside)[0])
        a, b = v[k - 1], v[k]
    else:
        k = int(np.flatnonzero(inside)[-1])
        a, b = v[k], v[k + 1]
    between = float(np.interp(target, z[[k - 1, k]] if target > 0 else z[[k, k + 1]],
                              [a, b]))
    if c.zeta_fun is None:
        return between, ""
    fun = c.zeta_fun
    scale = max(abs(a), abs(b), 1.0)
    try:
        root = optimize.brentq(lambda x: fun(x) - target, a, b, xtol=ROOT_XTOL * scale)
    except ValueError:
        # the exact zeta, re-optimized from another start, no longer brackets the end
        # (an inner optimum that depends on its start: a Toeplitz term near its wall);
        # the walk's own points do
        return between, f"{side} end interpolated between profile points"
    return float(root), ""


class RebuildsObjective:
    """Pickling of a profiler: its objective (``obj``) is a workspace, dropped and rebuilt
    by ``_new_objective()`` (a profile keeps its curves' zeta functions, which evaluate
    through the profiler)."""

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["obj"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.obj = self._new_objective()


class _LMMProfiler(RebuildsObjective):
    """Deviance evaluations for profiling an ML-fitted LMM."""

    def __init__(self, m):
        self.m = m
        self.design = m.design
        self.obj = LMMObjective(m.design, reml=False)
        self.map = SdCorMap(m.design, has_sigma=True)
        self.n = m.design.nobs
        self.p = m.design.p
        self.base = float(m.objective)
        self.opt = self.map.from_theta(m.theta, m.sigma)
        self.beta = np.asarray(m.beta, float)
        self.se = m.se.to_numpy()

    def _new_objective(self) -> LMMObjective:
        return LMMObjective(self.design, reml=False)

    # -- deviance on the sd/cor scale (lme4's devfun2) --------------------------------
    def dev_sdcor(self, pars: np.ndarray) -> float:
        theta, sigma = self.map.to_theta(pars)
        if sigma <= 0:
            return np.inf
        sol = self._solve(theta)
        if sol is None:
            return np.inf
        s2 = sigma * sigma
        return float(sol.logdet_Z - self.obj.log_det_w + sol.pwrss / s2
                     + self.n * (_LOG_2PI + np.log(s2)))

    def _solve(self, theta):
        return factor_summary(self.obj, theta)

    # -- one point of a variance-parameter profile ------------------------------------
    def var_point(self, w: int, x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        free = np.arange(self.map.size) != w
        lower, upper = self.map.lower[free], self.map.upper[free]

        def f(y):
            pars = np.empty(self.map.size)
            pars[w] = x
            pars[free] = y
            return self.dev_sdcor(pars)

        y, fval = _inner_minimize(f, start, lower, upper)
        pars = np.empty(self.map.size)
        pars[w] = x
        pars[free] = y
        theta, _ = self.map.to_theta(pars)
        sol = self._solve(theta) if np.isfinite(fval) else None
        if sol is None:
            # the held value is itself degenerate (a correlation at its bound of 1 makes
            # the covariance singular for cs): no deviance there; the walk stops before it
            return np.inf, np.concatenate([pars, self.beta])
        return fval, np.concatenate([pars, sol.beta])

    # -- one point of a fixed-effect profile ------------------------------------------
    def fixef_dev(self, j: int, b: float, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        sol = self._solve(theta)
        if sol is None:
            return np.inf, np.nan, self.beta
        Ri = sol.RX_inv
        V = Ri @ Ri.T
        r2 = sol.pwrss + (b - sol.beta[j]) ** 2 / V[j, j]
        dev = sol.logdet_Z - self.obj.log_det_w + self.n * (1.0 + _LOG_2PI + np.log(r2 / self.n))
        beta = sol.beta + V[:, j] * (b - sol.beta[j]) / V[j, j]
        return float(dev), float(np.sqrt(r2 / self.n)), beta

    def fixef_point(self, j: int, b: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        theta_start = self.map.to_theta(start[:self.map.size])[0]
        th, fval = _inner_minimize(lambda t: self.fixef_dev(j, b, t)[0], theta_start,
                                   self.obj.lower, np.full(theta_start.size, np.inf))
        _, sigma, beta = self.fixef_dev(j, b, th)
        return fval, np.concatenate([self.map.from_theta(th, sigma), beta])


def _inner_minimize(f, start, lower, upper) -> tuple[np.ndarray, float]:
    start = np.clip(np.asarray(start, float), lower, upper)
    if start.size == 0:
        return start, float(f(start))
    settings = dict(INNER_SETTINGS)
    settings["initial_step"] = INITIAL_STEP * np.maximum(np.abs(start), INITIAL_STEP_FLOOR)
    res = minimize(f, start, lower, upper, settings=settings)
    return res.x, res.fval


def _next_value(prev: float, cur: float, zprev: float, zcur: float, delta: float,
                lo: float, hi: float) -> float:
    """lme4's ``nextpar``: a step that should raise |zeta| by about ``delta``, at most
    ``MAX_MULT`` times the previous step."""
    num = cur - prev
    den = zcur - zprev
    if den == 0 or not np.isfinite(den):
        step = MIN_STEP
    else:
        step = delta * num / den
        if step < 0:
            step = MIN_STEP
        elif abs(step) > MAX_MULT * abs(num):
            step = MAX_MULT * abs(num)
    return float(min(hi, max(lo, cur + np.sign(num) * abs(step))))


def _walk(point, est: float, shift: float, base_params: np.ndarray, lo: float, hi: float,
          cutoff: float, delta: float, base: float) -> list[tuple[float, float, np.ndarray]]:
    """Points of one profile in both directions from the estimate."""

    def zeta_at(x, start):
        fval, params = point(x, start)
        if fval < base - DEV_TOL:
            warnings.warn(f"profiling found a deviance {base - fval:.3g} below the fit's: "
                          "the fit may not be at the optimum", ProfileWarning,
                          stacklevel=user_stacklevel())
        dd = max(fval - base, 0.0)
        return float(np.sign(x - est) * np.sqrt(dd)), params

    z1, p1 = zeta_at(shift, base_params)
    out = [(est, 0.0, base_params), (shift, z1, p1)]
    for direction in (+1, -1):
        if direction > 0:
            prev, cur = (est, 0.0, base_params), (shift, z1, p1)
        else:
            if not est > lo:
                continue
            prev, cur = (shift, z1, p1), (est, 0.0, base_params)
        count = 0
        while (lo < cur[0] < hi or (direction < 0 and count == 0)) and \
                abs(cur[1]) <= cutoff and count < MAX_POINTS:
            x = _next_value(prev[0], cur[0], prev[1], cur[1], delta, lo, hi)
            if x == cur[0]:
                break
            z, params = zeta_at(x, cur[2])
            if not np.isfinite(z):
                break       # the deviance is infinite there (a degenerate covariance)
            prev, cur = cur, (x, z, params)
            out.append(cur)
            count += 1
    out.sort(key=lambda r: r[0])
    return out


def profile_settings(names: list[str], which, alphamax: float, cutoff: float | None,
                     delta: float | None) -> tuple[list[str], float, float]:
    """Parameters to profile, the zeta cutoff and the step target (lme4's defaults: the
    cutoff at which all ``len(names)`` parameters' joint ``1 - alphamax`` region ends, steps
    of 1/8 of it)."""
    full_cutoff = float(np.sqrt(stats.chi2.ppf(1.0 - alphamax, len(names))))
    cutoff = full_cutoff if cutoff is None else float(cutoff)
    delta = full_cutoff * DELTA_CUTOFF if delta is None else float(delta)
    wanted = names if which is None else list(which)
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise KeyError(f"no parameter named {unknown}; parameters are {names}")
    return wanted, cutoff, delta


def profile_lmm(m, which=None, alphamax: float = ALPHA_MAX,
                cutoff: float | None = None, delta: float | None = None,
                progress=None) -> LikelihoodProfile:
    """Profile the parameters of the LMM ``m`` (see the module docstring).

    Parameters
    ----------
    m : LinearMixedModelResult
    which : list of str, optional
        Parameter names to profile (default: all).
    alphamax : float
        Profile out to ``zeta = sqrt(chi2_{1-alphamax}(n_par))`` (lme4's default 0.01).
    cutoff : float, optional
        Profile out to this ``|zeta|`` instead.
    delta : float, optional
        Target increase of ``|zeta|`` per step (default: lme4's ``cutoff / 8`` with the
        ``alphamax`` cutoff).
    progress : bool or None
        Progress bar over the parameters (:mod:`mixedmodels.display.progress`; None: for
        long runs someone watches).
    """
    ml = refit_ml(m)
    # a fit with priors (blmer) profiles the objective it minimized
    pr = ml.profiler() if hasattr(ml, "profiler") else _LMMProfiler(ml)
    k = pr.map.size
    names = list(pr.map.names) + list(ml.fixef.index)
    wanted, cutoff, delta = profile_settings(names, which, alphamax, cutoff, delta)
    base_params = np.concatenate([pr.opt, pr.beta])
    curves = {}
    with progress_bar(len(wanted), progress, "profile", unit="parameters") as bar:
        for idx, name in enumerate(names):
            if name not in wanted:
                continue
            if idx < k:
                curves[name] = _var_curve(pr, idx, name, base_params, cutoff, delta)
            else:
                curves[name] = _fixef_curve(pr, idx - k, name, base_params, cutoff, delta)
            bar.update(len(curves))
    return LikelihoodProfile(curves, pr.base, tuple(names))


def first_shift(est: float, lo: float, hi: float) -> float:
    """lme4's first profile point: 1% away from the estimate (0.001 when it is 0), turned
    back inside the parameter space when that step would leave it (a correlation estimated
    at +-1)."""
    shift = FIRST_SHIFT_AT_ZERO if est == 0 else est * (1.0 + FIRST_SHIFT)
    if not lo <= shift <= hi:
        shift = est - (shift - est)
    return float(shift)


class _Point:
    """``(x, start) -> (deviance, parameters)`` of one parameter's profile: the profiler's
    method ``kind`` at index ``index`` (a class, not a closure, so profiles pickle)."""

    def __init__(self, pr, kind: str, index: int):
        self.pr, self.kind, self.index = pr, kind, index

    def __call__(self, x, start):
        pr, w = self.pr, self.index
        if self.kind == "var":
            free = np.arange(pr.map.size) != w
            return pr.var_point(w, x, start[:pr.map.size][free])
        if self.kind == "fixef":
            return pr.fixef_point(w, x, start)
        return pr.point(w, x, start)


def _var_curve(pr, w, name, base_params, cutoff, delta) -> ProfileCurve:
    est = float(pr.opt[w])
    lo, hi = float(pr.map.lower[w]), float(pr.map.upper[w])
    shift = first_shift(est, lo, hi)
    point = _Point(pr, "var", w)
    pts = _walk(point, est, shift, base_params, lo, hi, cutoff, delta, pr.base)
    return _curve(name, pr.map.kinds[w], pts, est, (lo, hi), point, pr.base)


def _fixef_curve(pr, j, name, base_params, cutoff, delta) -> ProfileCurve:
    est = float(pr.beta[j])
    shift = est + delta * pr.se[j]
    point = _Point(pr, "fixef", j)
    pts = _walk(point, est, shift, base_params, -np.inf, np.inf, cutoff, delta, pr.base)
    return _curve(name, "fixef", pts, est, (-np.inf, np.inf), point, pr.base)


class _ZetaFunction:
    """Exact ``zeta(x)`` of a curve, started from the nearest profiled point."""

    def __init__(self, point, values, params, est, base):
        self.point, self.values, self.params = point, values, params
        self.est, self.base = est, base

    def __call__(self, x: float) -> float:
        near = int(np.argmin(np.abs(self.values - x)))
        fval, _ = self.point(x, self.params[near])
        return float(np.sign(x - self.est) * np.sqrt(max(fval - self.base, 0.0)))


def _curve(name, kind, pts, est, bounds, point, base) -> ProfileCurve:
    values = np.array([p[0] for p in pts])
    zeta = np.array([p[1] for p in pts])
    params = np.vstack([p[2] for p in pts])
    return ProfileCurve(name, kind, values, zeta, params, est, bounds,
                        _ZetaFunction(point, values, params, est, base))


def profile_model(m, which=None, alphamax: float = ALPHA_MAX, cutoff: float | None = None,
                  delta: float | None = None, progress=None) -> LikelihoodProfile:
    """Profile an LMM (:func:`profile_lmm`) or a GLMM
    (:func:`~mixedmodels.inference.profile_glmm.profile_glmm`)."""
    if getattr(m, "family", None) is not None:
        from .profile_glmm import profile_glmm

        return profile_glmm(m, which, alphamax, cutoff, delta, progress)
    return profile_lmm(m, which, alphamax, cutoff, delta, progress)
