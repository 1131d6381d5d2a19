r"""Finishing a glmmtmb fit that stopped at the wall of a covariance's domain.

A Toeplitz correlation (``toep``, ``homtoep``: one free correlation per lag,
:class:`~mixedmodels.covariance.correlated.Toeplitz`) is a correlation matrix only inside
a region of its lag correlations: outside, the objective ``F`` is not defined (the engine
reads it as ``+inf``). Where the optimum lies near that wall, the quasi-Newton phase of
:func:`~.laplace_fit.optimize_laplace` ends in failing line searches (its steps along the
ridge cross the wall, the rescaled trial points are infinite too, and scipy stops with
"precision loss"), and the Newton polish's full step crosses it as well: on the
``homtoep_pois`` fixture the engine stopped 0.48 deviance units above the optimum with a
positive definite Hessian and a Newton decrement of 1.4.

:func:`continue_inside` takes over from such a stop: damped Newton steps

.. math:: z \leftarrow z - a H^{-1} g, \qquad a = 1, 1/2, 1/4, \dots

with ``H`` the finite-difference Hessian of the exact gradient (eigenvalues floored where
it is indefinite), each step halved until it stays inside the domain and lowers ``F``
enough (Armijo's condition :data:`ARMIJO`). The domain is convex in the lag correlations
and the wall is met where ``F`` is still finite, so every halving sequence ends inside;
``F`` decreases at every step, and Newton's quadratic convergence returns once the
full step stays inside. From its end the engine runs again
(:func:`~.laplace_fit.optimize_laplace`: at so small a gradient its Newton polish
finishes in a step or two) and gives the fit its Hessian, standard errors and
convergence check; the lower of the two fits is kept.
"""

from __future__ import annotations

import numpy as np

from .laplace_fit import (
    HESSIAN_STEP,
    LaplaceFit,
    _free_fg,
    _modified_newton_step,
    gradient_hessian,
    optimize_laplace,
)

__all__ = ["continue_inside", "has_wall"]

#: Damped Newton steps at most.
WALL_STEPS = 40
#: Halvings of one step at most (2^-30: far below any useful step).
WALL_HALVINGS = 30
#: Armijo's sufficient decrease: a step ``s`` is taken when it lowers ``F`` by at least
#: this fraction of the linear prediction ``-g's``.
ARMIJO = 1e-4
#: Predicted decrease ``g' H^{-1} g / 2`` (deviance units) below which the steps stop and
#: the engine finishes.
WALL_DONE = 1e-6
#: Imaginary step of the chart's complex-step Jacobian.
CHART_COMPLEX_STEP = 1e-20


def has_wall(obj) -> bool:
    """Whether a covariance term of ``obj`` is not defined for every parameter value and
    has an unconstrained chart (``t_from_chart``)."""
    return any(not ts.term.structure.defined_everywhere
               and hasattr(ts.term.structure, "t_from_chart") for ts in obj.structure.terms)


class _Chart:
    """The free parameters ``z`` with every charted term's correlation parameters ``t``
    replaced by its chart's ``w`` (:meth:`~mixedmodels.covariance.correlated.Toeplitz.
    t_from_chart`), and ``(F, dF/dw)`` there by the chain rule with the chart's Jacobian
    (complex-step derivatives: exact to rounding)."""

    def __init__(self, obj, fg):
        layout = obj.layout
        where = np.full(layout.size, -1)
        where[np.asarray(layout.free_index)] = np.arange(len(layout.free_index))
        self.fg = fg
        self.parts = []
        for ts in obj.structure.terms:
            S = ts.term.structure
            if S.defined_everywhere or not hasattr(S, "t_from_chart"):
                continue
            sl = obj.theta_index(ts)
            idx = where[np.arange(sl.start, sl.stop)[S.n_sd:]]
            if np.all(idx >= 0):
                self.parts.append((S, idx))

    def to_chart(self, z: np.ndarray) -> np.ndarray:
        w = np.array(z, dtype=float)
        for S, idx in self.parts:
            w[idx] = S.chart_from_t(z[idx])
        return w

    def from_chart(self, w: np.ndarray) -> np.ndarray:
        z = np.array(w, dtype=float)
        for S, idx in self.parts:
            z[idx] = S.t_from_chart(w[idx])
        return z

    def __call__(self, w: np.ndarray):
        f, g = self.fg(self.from_chart(w))
        g = np.array(g, dtype=float)
        for S, idx in self.parts:
            n = idx.size
            J = np.empty((n, n))
            for j in range(n):
                e = w[idx].astype(complex)
                e[j] += 1j * CHART_COMPLEX_STEP
                J[:, j] = S.t_from_chart(e).imag / CHART_COMPLEX_STEP
            g[idx] = J.T @ g[idx]
        return f, g


def _damped_newton(fg, z: np.ndarray, f: float, g: np.ndarray):
    """Damped Newton steps from ``z`` (module docstring): ``(z, F)`` at their end."""
    for _ in range(WALL_STEPS):
        H = gradient_hessian(fg, z, HESSIAN_STEP, central=True)
        newton = _modified_newton_step(H, g) if np.all(np.isfinite(H)) else None
        if newton is None:
            break
        step, decrement = newton
        if decrement < WALL_DONE:
            break
        slope = float(g @ step)
        for _ in range(WALL_HALVINGS):
            f_new, g_new = fg(z + step)
            if f_new <= f + ARMIJO * slope:
                break
            step = 0.5 * step
            slope = 0.5 * slope
        else:
            break
        z, f, g = z + step, f_new, g_new
    return z, f


def continue_inside(obj, fit: LaplaceFit) -> LaplaceFit:
    """``fit``, or the lower fit reached by damped Newton steps from it in the chart and
    the engine's search again from their end (module docstring), for a fit that did not
    converge."""
    layout = obj.layout
    fg = _Chart(obj, _free_fg(obj, fit.x))
    if not fg.parts:
        return fit
    try:
        w = fg.to_chart(layout.free(fit.x))
    except ValueError:
        return fit
    f, g = fg(w)
    if not f < 1e300:
        return fit
    w_end, f_end = _damped_newton(fg, w, f, g)
    if not f_end < f:
        obj(fit.x)          # the objective's workspace back at the fit
        return fit
    again = optimize_laplace(obj, layout.expand(fg.from_chart(w_end), fit.x))
    if again.solution.objective < fit.solution.objective:
        return again
    obj(fit.x)
    return fit
