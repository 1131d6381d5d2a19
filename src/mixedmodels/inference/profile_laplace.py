r"""Profile-likelihood intervals for fits of glmmTMB's class (``confint(method="profile")``).

For a parameter ``v`` (a fixed effect of any component, a family parameter, or the standard
deviation of a scalar random-effects term) the profile is

.. math:: \zeta(v) = \operatorname{sign}(v - \hat v) \sqrt{F_{\min}(v) - F(\hat x)},

with ``F_min(v)`` the Laplace objective minimized over every other free parameter with ``v``
held fixed (BFGS with the exact gradient, warm-started from the neighbouring profile
point). The interval's ends solve ``zeta(v) = +-z_{(1+level)/2}`` (Brent's method, bracketed
from the Wald interval outwards). For a scalar term's sd the profiled parameter is its
``theta`` (the sd is ``|theta|``; the objective is even in it), so the lower end is 0 when
the profile never reaches the cut on the way down -- a variance whose interval includes
zero. The same holds for a structure's theta entry in which the covariance is even
(``diag``'s and ``homdiag``'s sds are theta itself): its profile is mirrored at 0, and a
search across 0 would find the mirror image's crossing instead of the lower end.

A covariance structure's parameters (``ar1``'s ``phi`` and ``sd``, ``cs``'s correlation, a
spatial ``range``, ``rr``'s loadings, ``propto``'s scale) are profiled on the theta entry
they are a monotone function of and reported on the natural scale: the likelihood-ratio
interval is invariant under such a reparameterization, so the ends are the map's values at
theta's ends (an end at infinity maps to the parameter's limit, e.g. a correlation of 1).
A parameter that mixes several theta entries (the second and later sds and the
correlations of ``us``, whose theta is lme4's Cholesky factor) is profiled in another chart
of the term's covariance, with every other parameter free as before:

* glmmTMB's own parameterization (``to_glmmtmb``: log sds, then TMB's unit-diagonal
  Cholesky entries of the correlation), where each sd is ``exp`` of one coordinate and,
  for ``p = 2``, the correlation ``t / sqrt(1 + t^2)`` of one (glmmTMB profiles these
  coordinates itself);
* otherwise the natural parameters themselves (sds and correlations, the chart lme4's
  ``profile`` uses), each a coordinate; points where they are not a positive definite
  covariance are outside the chart (infinite objective).

In both the objective's gradient is pulled back through the central-difference Jacobian
of the chart's inverse. A term with a zero sd (a coordinate at ``-inf`` in glmmTMB's chart)
has no such chart: its mixed parameters are left out and named in the result's
``attrs["not_profiled"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["PROFILE_BRACKET_SE", "profile_confint"]

#: The root search starts this many Wald standard errors from the estimate, and widens by
#: doubling up to PROFILE_MAX_SE.
PROFILE_BRACKET_SE = 2.5
PROFILE_MAX_SE = 64.0
#: Absolute tolerance of the interval ends (in units of the parameter's SE).
PROFILE_XTOL_SE = 1e-4
#: Gradient tolerance of the inner optimizations.
PROFILE_GTOL = 1e-6
#: Relative change of one theta entry, and the largest relative change of the other
#: natural parameters, by which a structure's parameter is found to depend on one entry.
COMPONENTWISE_STEP = 1e-3
COMPONENTWISE_TOL = 1e-12
#: Relative agreement of the covariance at a theta entry and at its negative by which the
#: covariance is found even in that entry (exact for diag's sds; rounding only).
EVEN_RTOL = 1e-12
#: Round-trip agreement of a natural-parameter chart point (parameters -> theta ->
#: parameters): a point that does not come back is not a covariance (a correlation matrix
#: that is not positive definite) and lies outside the chart.
CHART_ROUNDTRIP_TOL = 1e-8
#: Where a chart's coordinate stands for an infinite end of an interval.
CHART_INFINITY = 1e8
#: The objective returned to BFGS outside a chart or where the Laplace objective fails.
OUTSIDE = 1e300


class _TermChart:
    """Coordinates of one term's covariance other than our theta: ``y[sl] = to(theta)``,
    ``theta = back(y[sl])`` (module docstring), on the full parameter vector."""

    def __init__(self, structure, sl: slice, kind: str):
        self.structure, self.sl, self.kind = structure, sl, kind

    def to(self, theta: np.ndarray) -> np.ndarray:
        if self.kind == "glmmtmb":
            return np.asarray(self.structure.to_glmmtmb(theta), dtype=float)
        return np.asarray(self.structure.parameters(theta), dtype=float)

    def back(self, v: np.ndarray) -> np.ndarray | None:
        """theta of chart point ``v``, or None outside the chart."""
        s = self.structure
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if self.kind == "glmmtmb":
                th = np.asarray(s.from_glmmtmb(v), dtype=float)
            else:
                lo, hi = s.parameter_bounds()
                if np.any(v < lo) or np.any(v > hi):
                    return None
                th = np.asarray(s.theta_from_parameters(v), dtype=float)
                if not np.allclose(s.parameters(th), v, rtol=0.0,
                                   atol=CHART_ROUNDTRIP_TOL * max(1.0, np.abs(v).max())):
                    return None
        return th if np.all(np.isfinite(th)) else None

    def natural(self, v: np.ndarray) -> np.ndarray:
        """The term's natural parameters at chart point ``v`` (NaN outside)."""
        th = self.back(v)
        if th is None:
            return np.full(v.size, np.nan)
        return np.asarray(self.structure.parameters(th), dtype=float)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.array(x, dtype=float)
        y[self.sl] = self.to(x[self.sl])
        return y

    def value_and_gradient(self, obj, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its gradient in the chart's coordinates."""
        from ..results.tmb_scale import map_jacobian

        v = y[self.sl]
        th = self.back(v)
        if th is None:
            return np.inf, np.zeros_like(y)
        x = y.copy()
        x[self.sl] = th
        f, g = obj.value_and_gradient(x)
        g = np.array(g, dtype=float)
        J = map_jacobian(lambda w: self._back_or_nan(w, th), v)
        g[self.sl] = J.T @ g[self.sl]
        return f, g

    def _back_or_nan(self, v: np.ndarray, near: np.ndarray) -> np.ndarray:
        th = self.back(v)
        return np.full(near.size, np.nan) if th is None else th


class _Profile:
    """``zeta(v)`` for one free parameter of a fit (module docstring)."""

    def __init__(self, m, index: int, chart: _TermChart | None = None):
        self.m = m
        self.obj = m.objective_function
        self.layout = m.layout
        self.index = index                      # position in the full vector
        self.free = np.setdiff1d(self.layout.free_index, [index])
        self.chart = chart
        self.x_hat = m.x.copy() if chart is None else chart.forward(m.x)
        self.f_hat = m.objective
        self._warm = {}

    def _value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.chart is None:
            return self.obj.value_and_gradient(x)
        return self.chart.value_and_gradient(self.obj, x)

    def minimum(self, v: float) -> float:
        """``F_min(v)``: the objective minimized over the other free parameters."""
        x = self.x_hat.copy()
        x[self.index] = v
        # warm start from the nearest point computed so far between the estimate and v
        # (a continuation outwards: points across the estimate sit in another part of
        # the profile's valley, and a point farther out -- a bracket's end -- can have
        # led the other parameters into another valley, from which the inner search
        # would not come back)
        v_hat = self.x_hat[self.index]
        inner = [w for w in self._warm
                 if (w - v_hat) * (v - v_hat) > 0 and abs(w - v_hat) <= abs(v - v_hat)]
        if inner:
            x[self.free] = self._warm[max(inner, key=lambda w: abs(w - v_hat))]
        free = self.free

        def fg(z):
            xx = x.copy()
            xx[free] = z
            f, g = self._value_and_gradient(xx)
            if not np.isfinite(f) or not np.all(np.isfinite(g[free])):
                return OUTSIDE, np.zeros_like(z)
            return f, g[free]

        res = optimize.minimize(fg, x[free], jac=True, method="BFGS",
                                options={"gtol": PROFILE_GTOL})
        self._warm[v] = res.x
        return float(res.fun)

    def zeta(self, v: float) -> float:
        d = max(self.minimum(v) - self.f_hat, 0.0)
        return float(np.sign(v - self.x_hat[self.index]) * np.sqrt(d))


def _end(prof: _Profile, se: float, cut: float, direction: int, floor=None) -> float:
    """The end of the interval on one side: the root of ``zeta(v) = direction * cut``."""
    v_hat = prof.x_hat[prof.index]
    width = PROFILE_BRACKET_SE * se
    while True:
        v = v_hat + direction * width
        if floor is not None and direction < 0 and v <= floor:
            v = floor
        z = prof.zeta(v)
        if direction * z >= cut:
            break
        if floor is not None and v == floor:
            return floor                     # the profile stays under the cut down to 0
        width *= 2.0
        if width > PROFILE_MAX_SE * se:
            return direction * np.inf
    lo, hi = sorted((v_hat, v))
    return float(optimize.brentq(lambda w: prof.zeta(w) - direction * cut, lo, hi,
                                 xtol=PROFILE_XTOL_SE * se))


@dataclass(frozen=True)
class _Natural:
    """A structure's natural parameter ``j`` as a function of its own theta entry alone:
    the map from the profiled theta to the reported scale."""

    structure: object
    theta: np.ndarray
    j: int
    #: the natural parameter's index (``j`` itself in our chart) and the chart, if not ours
    n: int | None = None
    chart: _TermChart | None = None

    def __call__(self, value: float) -> float:
        th = self.theta.copy()
        th[self.j] = value
        n = self.j if self.n is None else self.n
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if self.chart is not None:
                # an end at infinity: the natural parameter's limit there (a correlation
                # of +-1, an sd of 0), which the chart's inverse reaches only at finite
                # coordinates
                th[self.j] = np.clip(value, -CHART_INFINITY, CHART_INFINITY)
                return float(self.chart.natural(th)[n])
            return float(self.structure.parameters(th)[n])


def _componentwise(structure, theta: np.ndarray) -> list[int]:
    """The theta entries whose natural parameter depends on that entry alone (at
    ``theta``, by a finite change of each): ``log sd`` and the transformed correlation of
    ar1/cs/toep, a spatial range, a loading -- not the Cholesky entries of ``us``, whose
    sds and correlations mix several."""
    names = structure.parameter_names()
    if len(names) != theta.size:
        return []
    base = structure.parameters(theta)
    out = []
    for j in range(theta.size):
        th = theta.copy()
        th[j] += COMPONENTWISE_STEP * max(1.0, abs(th[j]))
        d = structure.parameters(th) - base
        others = np.delete(np.abs(d), j)
        if d[j] != 0.0 and np.all(others <= COMPONENTWISE_TOL * abs(d[j])):
            out.append(j)
    return out


def _chart_pairs(chart: _TermChart, v: np.ndarray, wanted) -> list[tuple[int, int]]:
    """``(coordinate, natural parameter)`` pairs of a chart at ``v``: the coordinates a
    change of which moves one natural parameter in ``wanted`` alone."""
    base = chart.natural(v)
    if not np.all(np.isfinite(base)):
        return []
    out = []
    for c in range(v.size):
        w = v.copy()
        w[c] += COMPONENTWISE_STEP * max(1.0, abs(w[c]))
        d = np.abs(chart.natural(w) - base)
        if not np.all(np.isfinite(d)):
            continue
        n = int(np.argmax(d))
        if n in wanted and d[n] > 0.0 and np.all(np.delete(d, n) <= COMPONENTWISE_TOL * d[n]):
            out.append((c, n))
    return out


def _mixed_parameters(s, theta: np.ndarray, sl: slice, missing: list[int]):
    """Charts for the natural parameters ``missing`` (not profiled in our theta):
    ``[(natural index, coordinate, chart, chart point)]`` in glmmTMB's chart where a
    coordinate carries the parameter alone, else in the natural-parameter chart."""
    out = []
    todo = set(missing)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.asarray(s.to_glmmtmb(theta), dtype=float)
    if v.shape == theta.shape and np.all(np.isfinite(v)):
        chart = _TermChart(s, sl, "glmmtmb")
        for c, n in _chart_pairs(chart, v, todo):
            out.append((n, c, chart, v))
            todo.discard(n)
    if todo and len(s.parameter_names()) == theta.size:
        chart = _TermChart(s, sl, "natural")
        nat = chart.to(theta)
        if chart.back(nat) is not None:
            for n in sorted(todo):
                out.append((n, n, chart, nat))
            todo.clear()
    return out, sorted(todo)


def _even_entry(structure, theta: np.ndarray, j: int) -> bool:
    """Whether the covariance is even in theta entry ``j`` alone (``diag``'s sds, which
    are theta itself with a lower bound of 0 only for the optimizer): flipping the entry's
    sign leaves ``Lambda Lambda'`` unchanged. Its profile is then mirrored at 0, and the
    lower end is searched down to 0 only (as a scalar term's sd), not across into the
    mirror image, where the profile falls again."""
    if not structure.sign_symmetric or theta[j] == 0.0:
        return False
    th = theta.copy()
    th[j] = -th[j]
    a, b = structure.covariance(theta), structure.covariance(th)
    return bool(np.allclose(a, b, rtol=EVEN_RTOL, atol=0.0))


def _profiled_parameters(m):
    """``(label, index in x, kind, natural map)`` for every parameter profile can do: free
    fixed effects and family parameters (kind ``"beta"``), the theta of scalar
    unstructured terms (``"sd"``: the sd is ``|theta|``), and each parameter of a
    covariance structure that is a monotone function of one theta entry (``"structure"``,
    reported through the map on the natural scale; ``"even"`` where the covariance is even
    in that entry, as diag's sds: profiled on ``|theta|`` down to 0)."""
    layout, obj = m.layout, m.objective_function
    out, not_profiled = [], []
    for block in layout.blocks:
        sl = layout.slice(block.name)
        if block.role in ("beta", "family"):
            for k in range(sl.start, sl.stop):
                if not layout.fixed[k]:
                    out.append((layout.labels[k], k, "beta", None, None))
    for ts in obj.structure.terms:
        t, s = ts.term, ts.term.structure
        prefix = "" if ts.component == "cond" else f"{ts.component}~"
        sl = obj.theta_index(ts)
        if t.p == 1 and s.keyword == "us":
            out.append((f"{prefix}sd_{t.names[0]}|{t.group}", sl.start, "sd", None, None))
            continue
        theta = np.asarray(m.x[sl], dtype=float)
        names = s.parameter_names()
        label = f"{prefix}{s.keyword}:{{}}|{t.group}".format
        rows = {}
        for j in _componentwise(s, theta):
            k = sl.start + j
            if layout.fixed[k]:
                continue
            kind = "even" if _even_entry(s, theta, j) else "structure"
            rows[j] = (label(names[j]), k, kind, _Natural(s, theta, j), None)
        missing = [j for j in range(len(names))
                   if j not in rows and len(names) == theta.size
                   and not layout.fixed[sl.start + j]]
        if missing:
            charted, left = _mixed_parameters(s, theta, sl, missing)
            for n, c, chart, v in charted:
                rows[n] = (label(names[n]), sl.start + c, "structure",
                           _Natural(s, v, c, n, chart), chart)
            not_profiled += [label(names[n]) for n in left]
        out += [rows[j] for j in sorted(rows)]
    return out, not_profiled


def profile_confint(m, level: float = 0.95, parm=None) -> pd.DataFrame:
    """Profile-likelihood intervals for a :class:`~mixedmodels.results.glmmtmb.GlmmTMBResult`.

    Parameters
    ----------
    m : GlmmTMBResult
    level : float
        Coverage.
    parm : sequence of str, optional
        Labels to profile (default: every fixed effect and family parameter, the sd of
        every scalar random-effects term and every natural parameter of the other terms:
        sds and correlations of ``us``, a structure's sds, correlations, ranges, ...).

    Returns
    -------
    DataFrame
        Lower and upper ends and the estimate per parameter; fixed effects on their linear
        predictor's scale, family parameters on the optimizer's scale, covariance
        parameters on their natural scale. ``attrs["not_profiled"]`` lists the
        parameters left out (those of a ``us`` term with a zero sd: module docstring).

    Raises
    ------
    ValueError
        For an unknown label in ``parm`` (saying why for a parameter left out).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    cut = float(stats.norm.ppf(0.5 + level / 2))
    params, not_profiled = _profiled_parameters(m)
    if parm is not None:
        known = {lab for lab, *_ in params}
        unknown = [p for p in parm if p not in known]
        if unknown:
            why = [p for p in unknown if p in not_profiled]
            reason = (f" ({why} mix several theta entries of a term with a zero standard "
                      "deviation, which has no chart to profile them in: use "
                      "confint(method='wald'))") if why else ""
            raise ValueError(f"cannot profile {unknown}{reason}; profiled parameters: "
                             f"{sorted(known)}")
        params = [p for p in params if p[0] in parm]
    V = m.vcov_optimizer.to_numpy()      # steps along our theta, not glmmTMB's
    free = list(m.layout.free_index)
    rows = {}
    for label, k, kind, natural, chart in params:
        prof = _Profile(m, k, chart)
        if chart is None:
            se = float(np.sqrt(V[free.index(k), free.index(k)])) if k in free else np.nan
        else:
            se = _chart_se(m, chart, k, V, free)
        se = se if np.isfinite(se) and se > 0 else max(abs(prof.x_hat[k]), 1.0)
        est = float(prof.x_hat[k])
        if kind in ("sd", "even"):
            est = abs(est)
            prof.x_hat[k] = est           # the objective is even in this theta entry
            lo = _end(prof, se, cut, -1, floor=0.0)
            hi = _end(prof, se, cut, +1)
        else:
            lo, hi = _end(prof, se, cut, -1), _end(prof, se, cut, +1)
        if natural is not None:
            # the profile of a monotone function of theta_j is the profile of theta_j
            # mapped through it (decreasing maps swap the ends)
            lo, hi = sorted((natural(lo), natural(hi)))
            est = natural(est)
        rows[label] = (lo, hi, est)
    lo_name, hi_name = f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"
    out = pd.DataFrame.from_dict(rows, orient="index", columns=[lo_name, hi_name, "Estimate"])
    if not_profiled and parm is None:
        out.attrs["not_profiled"] = not_profiled
    m.objective_function.solve(m.x)      # leave the workspace at the optimum
    return out


def _chart_se(m, chart: _TermChart, k: int, V: np.ndarray, free: list[int]) -> float:
    """The Wald standard error of chart coordinate ``k`` (the bracket's unit):
    ``sqrt(J V J')`` with ``J`` the chart's Jacobian on the term's free theta."""
    from ..results.tmb_scale import map_jacobian

    sl = chart.sl
    idx = [free.index(i) for i in range(sl.start, sl.stop) if i in free]
    if len(idx) != sl.stop - sl.start:
        return np.nan
    J = map_jacobian(chart.to, np.asarray(m.x[sl], dtype=float))
    row = J[k - sl.start]
    return float(np.sqrt(max(row @ V[np.ix_(idx, idx)] @ row, 0.0)))
