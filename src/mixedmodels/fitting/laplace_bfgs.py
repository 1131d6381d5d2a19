r"""Dense BFGS for the Laplace fits, without ``scipy.optimize.minimize``'s per-call costs.

The quasi-Newton phase of :mod:`.laplace_fit` makes 5-20 iterations on problems of a few
to a few tens of parameters, each costing one evaluation of the Laplace objective
(~0.4 ms on the structures fixtures). ``minimize(method="BFGS")`` adds ~80 us per
iteration of its own -- the scalar-function object that caches ``F`` and ``dF/dz`` by
``x``, a result object and callback wrapper per iteration, norms through ``numpy.linalg``
-- and ~0.2 ms per call to set up (hetar1_pois: 2.5 ms of a 21 ms fit).

:func:`dense_bfgs` is the textbook method with scipy's conventions, so that it takes
``minimize``'s iterates up to rounding: the direction ``d = -H g``; a step along it by
scipy's Wolfe line search (the library's ``_line_search_wolfe12``, MINPACK's ``dcsrch``
with the Wolfe-2 search as its fallback, ``c1 = 1e-4``, ``c2 = 0.9``), whose first trial
is made to have length about one by pretending the previous value was ``|g| / 2`` above
the present one; the stop ``max |g| <= gtol``; and the inverse Hessian's update from the
step ``s`` and the change of gradient ``y``, ``\rho = 1 / (y' s)``,

.. math:: H_+ = (I - \rho s y') H (I - \rho y s') + \rho s s'
              = H - \rho (s u' + u s') + (\rho^2 y' u + \rho) s s', \qquad u = H y,

written in its second, rank-two form (``O(n^2)`` instead of two ``n x n`` products), with
scipy's ``\rho = 1000`` where ``y's = 0``. The line search is a private scipy function:
where it cannot be imported, :func:`dense_bfgs` calls ``minimize`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize as sp_minimize

try:  # scipy's BFGS line search (private: the import is guarded)
    from scipy.optimize._optimize import _line_search_wolfe12, _LineSearchError
except ImportError:  # pragma: no cover - depends on the scipy version
    _line_search_wolfe12 = None

__all__ = ["BFGS_CALLBACK_STOP", "BFGSResult", "dense_bfgs"]

#: scipy's status of a search its callback stopped (``StopIteration``).
BFGS_CALLBACK_STOP = 99
#: scipy's ``1 / (y' s)`` where ``y' s`` is exactly zero.
ZERO_CURVATURE_RHO = 1000.0


@dataclass(frozen=True)
class BFGSResult:
    """The fields of scipy's ``OptimizeResult`` that the Laplace driver reads.

    Attributes
    ----------
    x, fun, jac : the last iterate, ``F`` and ``dF/dz`` there
    hess_inv : ndarray
        The inverse Hessian approximation at ``x``.
    status : int
        0 converged, 1 iteration limit, 2 line search failed, 3 not a number,
        :data:`BFGS_CALLBACK_STOP` stopped by the callback.
    success : bool
    message : str
    nfev : int
        Evaluations of ``(F, dF/dz)``.
    nit : int
    """

    x: np.ndarray
    fun: float
    jac: np.ndarray
    hess_inv: np.ndarray
    status: int
    success: bool
    message: str
    nfev: int
    nit: int


class _Cached:
    """``fg`` split into ``F`` and ``dF/dz`` for the line search, which asks for both at
    the same point one after the other: one evaluation per distinct point."""

    def __init__(self, fg):
        self.fg = fg
        self.x: np.ndarray | None = None
        self.nfev = 0

    def _at(self, x: np.ndarray) -> None:
        if self.x is None or not np.array_equal(x, self.x):
            f, g = self.fg(np.array(x, dtype=float))
            self.x, self.f, self.g = np.array(x, dtype=float), float(f), np.asarray(g)
            self.nfev += 1

    def fun(self, x):
        self._at(x)
        return self.f

    def grad(self, x):
        self._at(x)
        return self.g


@dataclass(frozen=True)
class _Iterate:
    """What a callback sees (scipy's ``intermediate_result``)."""

    x: np.ndarray
    fun: float


_MESSAGES = {0: "Optimization terminated successfully.",
             1: "Maximum number of iterations has been exceeded.",
             2: "Desired error not necessarily achieved due to precision loss.",
             3: "NaN result encountered.",
             BFGS_CALLBACK_STOP: "`callback` raised `StopIteration`."}


def dense_bfgs(fg, x0: np.ndarray, *, gtol: float, maxiter: int,
               hess_inv0: np.ndarray | None = None, callback=None) -> BFGSResult:
    """Minimize ``F`` from ``x0`` by BFGS until ``max |dF/dz| <= gtol`` (see the module
    docstring).

    Parameters
    ----------
    fg : callable
        ``z -> (F, dF/dz)``.
    x0 : ndarray
    gtol : float
        Largest gradient entry at convergence.
    maxiter : int
    hess_inv0 : ndarray, optional
        Symmetric positive definite start of the inverse Hessian (the identity if None).
    callback : callable, optional
        Called with an object with ``x`` and ``fun`` after every iteration; raising
        ``StopIteration`` stops the search (status :data:`BFGS_CALLBACK_STOP`).

    Returns
    -------
    BFGSResult
    """
    if _line_search_wolfe12 is None:  # pragma: no cover - depends on the scipy version
        opts = {"gtol": gtol, "maxiter": maxiter}
        if hess_inv0 is not None:
            opts["hess_inv0"] = hess_inv0
        raw = sp_minimize(fg, x0, jac=True, method="BFGS", options=opts, callback=callback)
        return BFGSResult(raw.x, float(raw.fun), raw.jac, raw.hess_inv, int(raw.status),
                          bool(raw.success), str(raw.message), int(raw.nfev), int(raw.nit))
    probe = _Cached(fg)
    x = np.array(x0, dtype=float).ravel()
    f = probe.fun(x)
    g = probe.grad(x)
    H = np.eye(x.size) if hess_inv0 is None else np.array(hess_inv0, dtype=float)
    f_before = f + 0.5 * float(np.sqrt(g @ g))   # makes the first trial step about 1 long
    steps, status = 0, 0
    largest = float(np.max(np.abs(g)))
    while largest > gtol and steps < maxiter:
        d = -(H @ g)
        try:
            alpha, _, _, f_new, f_before, g_new = _line_search_wolfe12(
                probe.fun, probe.grad, x, d, g, f, f_before,
                amin=1e-100, amax=1e100, c1=1e-4, c2=0.9)
        except _LineSearchError:
            status = 2
            break
        s = alpha * d
        x = x + s
        if g_new is None:
            g_new = probe.grad(x)
        y = g_new - g
        f, g = f_new, g_new
        steps += 1
        if callback is not None:
            try:
                callback(_Iterate(x, f))
            except StopIteration:
                status = BFGS_CALLBACK_STOP
                break
        largest = float(np.max(np.abs(g)))
        if largest <= gtol:
            break
        if not np.isfinite(f):
            status = 2
            break
        ys = float(y @ s)
        rho = ZERO_CURVATURE_RHO if ys == 0.0 else 1.0 / ys
        u = H @ y
        H = (H - rho * (np.outer(s, u) + np.outer(u, s))
             + (rho * rho * float(y @ u) + rho) * np.outer(s, s))
    if status == 0 and steps >= maxiter:
        status = 1
    elif status == 0 and (np.isnan(largest) or np.isnan(f) or np.isnan(x).any()):
        status = 3
    return BFGSResult(x, float(f), g, H, status, status == 0, _MESSAGES[status],
                      probe.nfev, steps)
