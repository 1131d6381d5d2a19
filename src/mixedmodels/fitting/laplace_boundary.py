r"""A standard deviation heading for zero on the log scale: watch for it, jump ahead.

glmmTMB's structures parameterize their standard deviations (and ``propto``'s variance
scale) by logs, ``s = exp(t)`` (:meth:`~mixedmodels.covariance.base.CovarianceStructure.
log_scale_mask`). Where the likelihood wants ``s = 0`` the optimum is at ``t = -inf``, and
near it the objective is ``F(t) ~ F* + c e^{k t}`` (``k = 1`` when ``s`` enters the
covariance linearly, as a heterogeneous AR(1)'s cross-products ``s_i s_j r_ij`` do; ``k =
2`` for ``s^2`` alone): gradient and curvature in ``t`` shrink together, every quasi-Newton
step moves ``t`` by about ``-1/k``, and BFGS crawls on for twenty iterations while the
objective falls by less than 1e-2 (the hetar1 Poisson fixture: 39 gradients, 20 of them
in the crawl).

:class:`CrawlWatch` (a BFGS callback) stops the search when a log scale has fallen by at
least :data:`CRAWL_STEP` in each of :data:`CRAWL_ITERATIONS` successive iterations.
:func:`jump_ahead` then tries the point the crawl is heading for: in the exponential regime
``g = dF/dt ~ k (F - F*)``, so moving ``t`` by ``log(g / JUMP_GRADIENT)`` (at least
:data:`JUMP_MIN`) leaves a gradient of about :data:`JUMP_GRADIENT` there, where BFGS stops
anyway. The jump is kept only when the objective is lower there and the derivative in
``s`` is still positive (``F`` rises with ``s`` at ``s ~ 0``: the optimum is on the
boundary, not at a small positive ``s`` the jump would step over); the search then goes on
from there with the inverse Hessian it had.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOUNDARY_LOG_RANGE", "CRAWL_ITERATIONS", "CRAWL_STEP", "EVEN_FORWARD_MIN",
           "SMOOTH_MAX",
           "CrawlWatch", "boundary_log_scales", "comparable_log_scales",
           "even_scales_off_zero", "jump_ahead", "log_scale_index", "smooth_parameters"]

#: Successive BFGS iterations a log scale must fall in before the search is stopped
#: (two: a wrong call costs one gradient, the jump being refused; three cost hetar1_pois
#: one more gradient of crawl and changed no other structures fixture) ...
CRAWL_ITERATIONS = 2
#: ... by at least this much each (the exponential regime's steps are ~1/k = 0.5 to 1).
CRAWL_STEP = 0.25
#: Gradient (deviance units per unit of log sd) the jump aims for: far below BFGS's
#: tolerance, and the deviance there within ~JUMP_GRADIENT of the boundary's.
JUMP_GRADIENT = 1e-9
#: Smallest jump (log units): a shorter one is no faster than the crawl.
JUMP_MIN = 3.0
#: Jumps tried per fit.
MAX_JUMPS = 4
#: Log scales this far below their term's largest (a factor of 20 in sd) count as heading
#: for zero (the Hessian then takes central differences along them).
COMPARABLE_LOG_RANGE = 3.0
#: Standard deviations in which the objective is even (``diag``'s) at least this far from
#: zero take forward differences in the Hessian: with its step of 2e-5 the truncation is
#: below 1e-4 of the curvature (the sd of 0.07 that made central differences the rule
#: for covariance parameters is well inside).
EVEN_FORWARD_MIN = 0.25
#: Largest ``|t|`` of a correlation's transformed parameter taken by forward differences
#: (:func:`smooth_parameters`; an AR(1)'s ``phi = t / sqrt(1 + t^2)`` is 0.97 at 4,
#: compound symmetry's ``rho`` 0.98 of its range).
SMOOTH_MAX = 4.0
#: Log scales this far below their term's largest (a factor of 1.6e5 in sd, 2.6e10 in
#: variance) are on the boundary: where a jump has put them (:func:`jump_ahead` aims for a
#: gradient of JUMP_GRADIENT, some 20 log units down), the objective is flat along them to
#: ~1e-9 and the Newton polish holds them (:func:`boundary_log_scales`).
BOUNDARY_LOG_RANGE = 12.0


def log_scale_index(obj) -> np.ndarray:
    """Positions among the layout's free parameters of every log standard deviation (or
    log variance scale) of a Laplace objective's terms."""
    free = np.asarray(obj.layout.free_index)
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        idx = np.arange(sl.start, sl.stop)
        out.extend(int(i) for i in idx[ts.term.structure.log_scale_mask()])
    return np.flatnonzero(np.isin(free, out))


def even_scales_off_zero(obj, x: np.ndarray) -> np.ndarray:
    """Positions among the free parameters of the standard deviations in which the
    objective is even by themselves (:meth:`~mixedmodels.covariance.base.
    CovarianceStructure.even_mask`) at least :data:`EVEN_FORWARD_MIN` from zero at ``x``:
    a forward difference of step ``h`` along one truncates at about ``h / |theta|`` of
    its curvature there."""
    free = np.asarray(obj.layout.free_index)
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        idx = np.arange(sl.start, sl.stop)[ts.term.structure.even_mask()]
        out.extend(int(i) for i in idx[np.abs(x[idx]) >= EVEN_FORWARD_MIN])
    return np.flatnonzero(np.isin(free, out))


def comparable_log_scales(obj, x: np.ndarray) -> np.ndarray:
    """Positions among the free parameters of the log scales at ``x`` within
    :data:`COMPARABLE_LOG_RANGE` of their term's largest: not heading for zero."""
    free = np.asarray(obj.layout.free_index)
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        idx = np.arange(sl.start, sl.stop)[ts.term.structure.log_scale_mask()]
        if idx.size:
            vals = x[idx]
            out.extend(int(i) for i in idx[vals >= vals.max() - COMPARABLE_LOG_RANGE])
    return np.flatnonzero(np.isin(free, out))


def smooth_parameters(obj, x: np.ndarray) -> np.ndarray:
    """Positions among the free parameters of the covariance parameters in which the
    objective is smooth on the scale of a finite-difference step (:meth:`~mixedmodels.
    covariance.base.CovarianceStructure.smooth_mask`: a correlation's transformed
    parameter) and, at ``x``, within :data:`SMOOTH_MAX` of zero: there a forward
    difference serves. Farther out the correlation nears +-1, where its transform
    flattens and the curvature in it changes fast (cs_gauss_ml's fixture: ``t = 18.9``,
    whose forward column is asymmetric by 0.2)."""
    free = np.asarray(obj.layout.free_index)
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        idx = np.arange(sl.start, sl.stop)[ts.term.structure.smooth_mask()]
        out.extend(int(i) for i in idx[np.abs(x[idx]) <= SMOOTH_MAX])
    return np.flatnonzero(np.isin(free, out))


def boundary_log_scales(obj, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Positions among the free parameters of the log scales on the boundary at ``x``: at
    least :data:`BOUNDARY_LOG_RANGE` below their term's largest, with the objective not
    falling as they rise (``g``, the gradient over the free parameters, not negative
    there). Along one of them ``F ~ F* + c e^{k t}`` with ``c e^{k t}`` below ~1e-9:
    a Newton step would move it by ``-1/k`` for nothing (the objective lower by half
    its gradient), so the polish holds it, and its Hessian column -- entries of that
    size, which change the other parameters' standard errors by their square over
    its curvature -- is a forward difference."""
    free = np.asarray(obj.layout.free_index)
    out = []
    for ts in obj.structure.terms:
        sl = obj.theta_index(ts)
        idx = np.arange(sl.start, sl.stop)[ts.term.structure.log_scale_mask()]
        if idx.size > 1:
            vals = x[idx]
            out.extend(int(i) for i in idx[vals <= vals.max() - BOUNDARY_LOG_RANGE])
    pos = np.flatnonzero(np.isin(free, out))
    return pos[g[pos] >= 0]


class CrawlWatch:
    """BFGS callback: raises ``StopIteration`` when a parameter in ``index`` has fallen
    by at least :data:`CRAWL_STEP` in each of the last :data:`CRAWL_ITERATIONS` iterations
    (those parameters are in :attr:`crawling`). Parameters in ``skip`` are not watched
    (a jump was refused for them)."""

    def __init__(self, index: np.ndarray, skip=()):
        self.index = np.asarray(index, dtype=int)
        self.watched = np.array([int(j) not in set(skip) for j in self.index], dtype=bool)
        self.last: np.ndarray | None = None
        #: successive iterations each parameter has fallen by CRAWL_STEP (a running count:
        #: the callback runs every iteration)
        self.falls = np.zeros(self.index.size, dtype=int)
        self.crawling = np.zeros(0, dtype=int)

    def __call__(self, intermediate_result) -> None:
        if not self.index.size:
            return
        x = np.asarray(intermediate_result.x)[self.index]
        if self.last is not None:
            self.falls = np.where(x - self.last <= -CRAWL_STEP, self.falls + 1, 0)
        self.last = x
        hit = (self.falls >= CRAWL_ITERATIONS) & self.watched
        if np.any(hit):
            self.crawling = self.index[hit]
            raise StopIteration


def jump_ahead(fg, z: np.ndarray, f0: float, g0: np.ndarray, crawling: np.ndarray):
    """The jump of the module docstring from ``z`` along the ``crawling`` parameters:
    ``(z_new, f_new, g_new)``, or None when it does not lower the objective or the
    derivative in a standard deviation turns negative there.

    Parameters
    ----------
    fg : callable
        ``z -> (F, dF/dz)`` over the free parameters.
    z : ndarray
    f0, g0 : float, ndarray
        ``fg(z)``.
    crawling : ndarray of int
        Positions in ``z`` of the log scales to move.
    """
    trial = z.copy()
    for j in crawling:
        if not g0[j] > 0:
            return None
        trial[j] -= max(np.log(g0[j] / JUMP_GRADIENT), JUMP_MIN)
    f1, g1 = fg(trial)
    if not (np.isfinite(f1) and f1 <= f0):
        return None
    # g = s dF/ds: its sign is that of the derivative in s itself, exact at any s > 0
    if np.any(g1[crawling] < 0):
        return None
    return trial, f1, g1
