r"""``gls`` in closed form when the residual model has no free parameter.

With ``var_fixed`` alone, a correlation given with ``fixed=True``, prior weights only or no
residual model at all, ``V`` is known and the fit is one weighted least-squares problem:
there is nothing to optimize, so the criterion's machinery (the fixed-effects basis, the
residualized response, the cross-product plan, the optimizer's bookkeeping) is not needed
to fit it. With the whitening ``W`` (``W' W = V^{-1}``, :meth:`~.residual.BoundResidual.whiten`)
and the Householder QR decomposition

.. math:: W [X\; y] = Q \begin{bmatrix} R & c \\ 0 & r \end{bmatrix},

``beta = R^{-1} c``, the weighted residual sum of squares is ``r^2`` and
``log|X' V^{-1} X| = log|R|^2``; the criterion is then :func:`~.objective.gls_deviance`'s.

Why the residual is refined once: Householder QR is backward stable column by column, so
``r`` carries an absolute error of about ``eps ||W y||``, and whitening ``y`` rounds each
row by ``eps |y_j|`` before any of it is fitted: a response far from zero (``y + 1e7``)
then loses digits it has. One step of the corrected semi-normal equations on the residual
computed on the user's scale and whitened after the subtraction,

.. math:: e = W (y - X \beta), \qquad \delta = R^{-1} R^{-T} (W X)' e, \qquad
          \beta \leftarrow \beta + \delta, \qquad e \leftarrow e - W X \delta,

with ``r^2 = e'e``, leaves only the rounding of ``y - X beta`` itself (``eps |y_j|`` per
row, which the data's own representation carries): on BodyWeight with ``var_fixed(~
Time)``, the log-likelihood of ``weight + 1e7`` differs from that of ``weight`` by 1e-11,
against 4e-11 for the basis and cross-products of :class:`~.objective.GLSObjective` and
1e-9 without the step (tests/test_gls_closed_form.py). No cross-product of a large
column is formed (the cancellation :mod:`~mixedmodels.linalg.basis` exists to avoid).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.lapack import dgeqrf, dtrtri

from ..linalg.basis import MIN_RELATIVE_PIVOT
from .objective import GLSSolution, gls_deviance
from .residual import BoundResidual

__all__ = ["fixed_residual_solution"]

#: The residual parameters of a model that has none.
_NO_PHI = np.zeros(0)
_add_reduce = np.add.reduce


def fixed_residual_solution(X: np.ndarray, y: np.ndarray, residual: BoundResidual,
                            reml: bool) -> GLSSolution | None:
    """The ``gls`` estimates of a model whose residual model has no free parameter (see
    the module docstring), or None where this path does not apply.

    None for: residual parameters to estimate, no fixed effects, a covariance that is
    not positive definite, numerically dependent whitened columns, a residual sum of
    squares that is not positive and finite. The caller then fits through
    :class:`~.objective.GLSObjective`, which reports such cases as before.

    Parameters
    ----------
    X : ndarray (n, p)
    y : ndarray (n,)
        Response minus offset.
    residual : BoundResidual
        With ``n_par == 0``.
    reml : bool

    Returns
    -------
    GLSSolution or None
    """
    n, p = X.shape
    if residual.n_par or p == 0 or n <= p:
        return None
    M = np.empty((n, p + 1))                # [X y], C order
    M[:, :p] = X
    M[:, p] = y
    scale = None
    if residual.correlation is None:
        # V diagonal: W is one scale per row, kept for the residual below (the general
        # whitening's steps, without computing them twice)
        log_d = residual.log_sd(_NO_PHI)
        Mw, logdet_v = M, 0.0
        if log_d is not None:
            scale = np.exp(-log_d)
            M *= scale[:, None]
            logdet_v = 2.0 * float(_add_reduce(log_d))
    else:
        white = residual.whiten(_NO_PHI, M)
        if white is None:
            return None
        Mw, logdet_v = white
    # LAPACK directly: numpy's and scipy's wrappers cost more than this QR on small data
    qr, _, _, info = dgeqrf(Mw)
    if info != 0:
        return None
    R = qr[:p, :p].copy()
    d = R.diagonal().tolist()              # p numbers: Python floats beat array calls
    ad = [abs(v) for v in d]
    if not min(ad) > MIN_RELATIVE_PIVOT * max(ad):          # (NaN fails too)
        return None
    for i in range(1, p):                  # below the diagonal: Householder vectors
        R[i, :i] = 0.0
    Ri, info = dtrtri(R, lower=0)
    if info != 0:
        return None
    Xw = Mw[:, :p]
    beta = Ri @ qr[:p, p]
    # one refinement step on the explicit residual, whitened after the subtraction
    # (module docstring)
    e = y - X @ beta
    if scale is not None:
        e *= scale
    elif residual.correlation is not None:
        e = residual.whiten(_NO_PHI, e[:, None])[0][:, 0]
    step = Ri @ (Ri.T @ (Xw.T @ e))
    e -= Xw @ step
    beta += step
    r2 = float(e @ e)
    if not (r2 > 0.0 and math.isfinite(r2)):
        return None
    if min(d) < 0.0:
        # R's positive-diagonal form is (sign) R, whose inverse is Ri with its columns
        # signed: RX_inv with a positive diagonal, as GLSObjective.solve gives it
        Ri *= np.sign(d)
    dof = n - p if reml else n
    sigma = residual.spec.sigma
    logdet_x = 2.0 * sum(map(math.log, ad))
    objective = gls_deviance(logdet_x if reml else 0.0, logdet_v, r2, dof, sigma)
    sigma_hat = sigma if sigma is not None else math.sqrt(r2 / dof)
    return GLSSolution(objective, beta, sigma_hat, r2, logdet_x, logdet_v, Ri)
