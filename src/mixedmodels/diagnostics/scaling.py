r"""Predictors on very different scales: lme4's ``checkScaleX`` and its advice.

lme4 warns "Some predictor variables are on very different scales: consider rescaling"
when, among the columns of the fixed-effects matrix that are not 0/1 indicators (the
intercept included in those), the standard deviation of one column is more than
``tol = 1000`` times another's, or any such standard deviation is above ``tol`` or below
``1 / tol``:

.. math:: \max\Big(\max_{j<k} |\log(s_j / s_k)|, \max_j |\log s_j|\Big) > \log(\text{tol}).

Such scales do not change the model (the estimates rescale exactly; this package's
criteria are computed in a well-conditioned basis of ``X``), but they make coefficients
hard to read, finite-difference derivatives (convergence checks, Hessian-based standard
errors) less accurate, and optimizers' tolerances mean different things per coefficient.
The advice names the columns and their standard deviations.
"""

from __future__ import annotations

import numpy as np

from .._errors import DataWarning

__all__ = ["SCALE_TOL", "ScalingWarning", "scale_advice"]

#: lme4's ``checkScaleX(tol = 1e3)``.
SCALE_TOL = 1e3
#: ``log(SCALE_TOL)`` as numpy computes it (formed once: every fit asks)
_LOG_SCALE_TOL = float(np.log(SCALE_TOL))


class ScalingWarning(DataWarning):
    """Predictors on very different scales (lme4's "consider rescaling")."""


def scale_advice(X: np.ndarray, names, tol: float = SCALE_TOL) -> str | None:
    """The rescaling advice for the fixed-effects matrix ``X``, or None when its scales are
    fine (module docstring).

    Parameters
    ----------
    X : ndarray (n, p)
    names : sequence of str
        Column names, for the message.
    tol : float
        Largest ratio of standard deviations (and largest |log sd|) accepted.

    Returns
    -------
    str or None
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] == 0:
        return None
    # 0/1 columns: the mask filled in place and reduced by the ufunc itself (np.all's and
    # np.flatnonzero's wrappers cost more than the work on a small X)
    indicator = np.equal(X, 0.0)
    indicator |= np.equal(X, 1.0)
    cont = np.logical_and.reduce(indicator, axis=0).__invert__().nonzero()[0]
    if cont.size == 0:
        return None
    sd = _column_sd(X[:, cont])
    with np.errstate(divide="ignore"):
        logsd = np.log(sd)
    # a zero sd gives an infinite |log sd|: flagged, as in lme4 (the two measures as
    # Python floats: numpy's reductions of a few values cost more than the comparison)
    limit = _LOG_SCALE_TOL if tol == SCALE_TOL else float(np.log(tol))
    # max, min and abs are exact, so Python's on the few values give numpy's results
    logs = logsd.tolist()
    if any(v != v for v in logs):
        return None     # (a NaN sd, from non-finite X: numpy's NaN spread never flags)
    spread = max(logs) - min(logs)
    largest = max(map(abs, logs))
    if not (spread > limit or largest > limit):
        return None
    shown = ", ".join(f"{names[j]} (sd {s:.3g})" for j, s in zip(cont, sd, strict=True))
    return ("Some predictor variables are on very different scales: consider rescaling "
            f"(standard deviations of the non-indicator columns: {shown}). Centring and "
            "dividing by the sd, or changing units (days instead of seconds), makes the "
            "coefficients comparable and the convergence checks more reliable; the fitted "
            "model is the same")


def _column_sd(A: np.ndarray) -> np.ndarray:
    """``np.std(A, axis=0, ddof=1)`` by numpy's own steps (the same values, bit for bit),
    without its argument handling, which costs a small fit more than the arithmetic."""
    n = A.shape[0]
    mean = np.add.reduce(A, axis=0, keepdims=True)
    mean /= n
    dev = A - mean
    np.multiply(dev, dev, out=dev)
    var = np.add.reduce(dev, axis=0)
    var /= max(n - 1, 0)
    return np.sqrt(var)
