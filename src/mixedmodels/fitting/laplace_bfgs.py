r"""Dense BFGS for the Laplace fits: scipy's iteration without scipy's per-call wrapping.

The quasi-Newton phase of :mod:`.laplace_fit` makes 5-20 iterations on problems of a few
to a few tens of parameters, each costing one evaluation of the Laplace objective
(~0.4 ms on the structures fixtures). ``scipy.optimize.minimize(method="BFGS")`` adds
~80 us per iteration of its own -- the scalar-function object that caches ``F`` and
``dF/dz`` by ``x``, a result object and callback wrapper per iteration, norms through
``numpy.linalg`` -- and ~0.2 ms per call to set up (hetar1_pois: 2.5 ms of a 21 ms fit).

:func:`dense_bfgs` is the same method step for step: the update

.. math:: H_{k+1} = (I - \rho s y') H_k (I - \rho y s') + \rho s s', \qquad
          \rho = 1 / (y' s),

(``rho = 1000`` where ``y's = 0``), the direction ``-H_k g_k``, and scipy's own Wolfe line
search (``_line_search_wolfe12``: MINPACK's ``dcsrch``, then the Wolfe-2 search where it
fails, ``c1 = 1e-4``, ``c2 = 0.9``) from scipy's first-step guess, so the iterates are
those of ``minimize`` to the last bit; only the bookkeeping around them is lighter. Where
that private line search cannot be imported, :func:`dense_bfgs` calls ``minimize``.
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
    xk = np.asarray(x0, dtype=float).flatten()
    cached = _Cached(fg)
    old_fval = cached.fun(xk)
    gfk = cached.grad(xk)
    n = xk.size
    eye = np.eye(n, dtype=int)
    Hk = eye if hess_inv0 is None else hess_inv0
    # scipy's first-step guess: a step of about one
    old_old_fval = old_fval + np.linalg.norm(gfk) / 2
    k, status = 0, 0
    gnorm = float(np.max(np.abs(gfk)))
    while gnorm > gtol and k < maxiter:
        pk = -np.dot(Hk, gfk)
        try:
            alpha_k, _, _, old_fval, old_old_fval, gfkp1 = _line_search_wolfe12(
                cached.fun, cached.grad, xk, pk, gfk, old_fval, old_old_fval,
                amin=1e-100, amax=1e100, c1=1e-4, c2=0.9)
        except _LineSearchError:
            status = 2
            break
        sk = alpha_k * pk
        xk = xk + sk
        if gfkp1 is None:
            gfkp1 = cached.grad(xk)
        yk = gfkp1 - gfk
        gfk = gfkp1
        k += 1
        if callback is not None:
            try:
                callback(_Iterate(xk, old_fval))
            except StopIteration:
                status = BFGS_CALLBACK_STOP
                break
        gnorm = float(np.max(np.abs(gfk)))
        if gnorm <= gtol:
            break
        if not np.isfinite(old_fval):
            status = 2
            break
        rhok_inv = np.dot(yk, sk)
        rhok = ZERO_CURVATURE_RHO if rhok_inv == 0.0 else 1.0 / rhok_inv
        A1 = eye - sk[:, np.newaxis] * yk[np.newaxis, :] * rhok
        A2 = eye - yk[:, np.newaxis] * sk[np.newaxis, :] * rhok
        Hk = np.dot(A1, np.dot(Hk, A2)) + rhok * sk[:, np.newaxis] * sk[np.newaxis, :]
    if status == 0 and k >= maxiter:
        status = 1
    elif status == 0 and (np.isnan(gnorm) or np.isnan(old_fval) or np.isnan(xk).any()):
        status = 3
    return BFGSResult(xk, float(old_fval), gfk, Hk, status, status == 0, _MESSAGES[status],
                      cached.nfev, k)
