r"""Accurate numerical derivatives by central differences with Richardson extrapolation.

The Satterthwaite degrees of freedom and the delta-method standard errors need the Hessian
of a deviance and the Jacobian of a covariance matrix with respect to the variance
parameters; lmerTest gets them from R's numDeriv. We use the same scheme (numDeriv's
``genD``): start from a step ``h = d |x| + eps [x ~ 0]``, halve it ``r - 1`` times, and
combine the central differences by Richardson extrapolation, which cancels the error terms
in ``h^2, h^4, ...``. For smooth functions this reaches 1e-8 to 1e-10 relative accuracy,
far better than a single finite difference.

Second differences for the Hessian (numDeriv's formulas):

.. math::

    D_{ii}(h) &= [f(x + h e_i) - 2 f(x) + f(x - h e_i)] / h_i^2 \\
    D_{ij}(h) &= [f(x + h_i e_i + h_j e_j) - 2 f(x) + f(x - h_i e_i - h_j e_j)
                  - D_{ii} h_i^2 - D_{jj} h_j^2] / (2 h_i h_j)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["RICHARDSON_D", "RICHARDSON_EPS", "RICHARDSON_R", "curvature_steps", "hessian",
           "jacobian"]

#: Initial relative step (numDeriv's ``d``).
RICHARDSON_D = 1e-4
#: Step used for coordinates that are (nearly) zero (numDeriv's ``eps``).
RICHARDSON_EPS = 1e-4
#: Coordinates below this in absolute value count as zero (numDeriv's ``zero.tol``).
RICHARDSON_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
#: Number of step halvings combined (numDeriv's ``r``).
RICHARDSON_R = 4
#: Pilot step (relative to max(|x|, 1)) for the curvature estimate of :func:`curvature_steps`.
PILOT_STEP = 1e-3
#: Initial Richardson step as a fraction of the curvature scale ``sqrt(2 / f_ii)``.
CURVATURE_STEP_FRACTION = 0.1
#: Largest curvature step (relative to max(|x|, 1)): a flat direction (a log sd of -10
#: whose variance is at 0) has a curvature near 0 and would ask for a step of thousands,
#: far outside where the function is finite.
CURVATURE_STEP_MAX = 1.0
#: Step reduction factor between successive differences (numDeriv's ``v``).
_V = 2.0


def _initial_steps(x: np.ndarray, d: float, eps: float) -> np.ndarray:
    return d * np.abs(x) + eps * (np.abs(x) < RICHARDSON_ZERO_TOL)


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation along axis 0 of differences at steps h, h/2, h/4, ...
    (error expansion in even powers of h)."""
    a = np.asarray(a, dtype=float)
    for m in range(1, a.shape[0]):
        four = 4.0 ** m
        a = (a[1:] * four - a[:-1]) / (four - 1.0)
    return a[0]


def jacobian(f: Callable[[np.ndarray], np.ndarray], x, d: float = RICHARDSON_D,
             eps: float = RICHARDSON_EPS, r: int = RICHARDSON_R) -> np.ndarray:
    """Jacobian of a vector-valued ``f`` at ``x``: array (len(f(x)), len(x)).

    Central differences with Richardson extrapolation (numDeriv's ``jacobian``,
    ``method = "Richardson"``).
    """
    x = np.asarray(x, dtype=float)
    h0 = _initial_steps(x, d, eps)
    cols = []
    for i in range(x.size):
        diffs = []
        h = h0[i]
        for _ in range(r):
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            diffs.append((np.asarray(f(xp), float) - np.asarray(f(xm), float)) / (2.0 * h))
            h /= _V
        cols.append(_extrapolate(np.array(diffs)))
    return np.column_stack(cols) if cols else np.zeros((np.size(f(x)), 0))


def curvature_steps(f: Callable[[np.ndarray], float], x: np.ndarray, f0: float,
                    fraction: float = CURVATURE_STEP_FRACTION) -> np.ndarray:
    """Steps scaled to the curvature of ``f``: ``fraction * sqrt(2 / |f_ii|)`` per
    coordinate, from a pilot second difference.

    For a deviance, ``sqrt(2 / f_ii)`` is the standard error of the parameter, the scale on
    which the function changes by O(1). A fixed relative step (numDeriv's ``1e-4 |x|``)
    is far too small for a parameter that is small but not zero (a covariance parameter of
    0.015, say): the second difference then drowns in rounding error. A step that is a fixed
    fraction of the curvature scale keeps rounding and truncation errors both small,
    whatever the parameter's units.
    """
    pilot = PILOT_STEP * np.maximum(np.abs(x), 1.0)
    steps = np.empty_like(pilot)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp[i] += pilot[i]
        xm[i] -= pilot[i]
        curv = abs(f(xp) - 2.0 * f0 + f(xm)) / pilot[i] ** 2
        steps[i] = fraction * np.sqrt(2.0 / curv) if curv > 0 else pilot[i]
    return np.minimum(steps, CURVATURE_STEP_MAX * np.maximum(np.abs(x), 1.0))


def hessian(f: Callable[[np.ndarray], float], x, d: float = RICHARDSON_D,
            eps: float = RICHARDSON_EPS, r: int = RICHARDSON_R,
            f0: float | None = None, steps: np.ndarray | str | None = None) -> np.ndarray:
    """Hessian of a scalar ``f`` at ``x`` (numDeriv's ``hessian``, Richardson method).

    ``steps``: initial steps per coordinate; ``"curvature"`` for :func:`curvature_steps`;
    None for numDeriv's ``d |x| + eps [x ~ 0]``.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    f0 = float(f(x)) if f0 is None else f0
    if isinstance(steps, str):
        h0 = curvature_steps(f, x, f0)
    else:
        h0 = _initial_steps(x, d, eps) if steps is None else np.asarray(steps, float)
    steps = h0[None, :] / _V ** np.arange(r)[:, None]          # (r, k)
    diag = np.zeros((r, k))
    for i in range(k):
        for s in range(r):
            h = steps[s, i]
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            diag[s, i] = (f(xp) - 2.0 * f0 + f(xm)) / h ** 2
    H = np.diag(_extrapolate(diag)) if k else np.zeros((0, 0))
    for i in range(k):
        for j in range(i):
            off = np.zeros(r)
            for s in range(r):
                hi, hj = steps[s, i], steps[s, j]
                xp, xm = x.copy(), x.copy()
                xp[i] += hi
                xp[j] += hj
                xm[i] -= hi
                xm[j] -= hj
                off[s] = (f(xp) - 2.0 * f0 + f(xm) - diag[s, i] * hi ** 2
                          - diag[s, j] * hj ** 2) / (2.0 * hi * hj)
            H[i, j] = H[j, i] = _extrapolate(off)
    return H
