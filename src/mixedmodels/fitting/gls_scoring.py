r"""Fisher scoring for ``gls`` criteria of independent rows with a variance function whose
derivative-free search creeps (varConstPower).

The criterion ``d(u) = -2 log L`` of a variance function ``sd_j = sigma g_j(u)`` has the
expected information ``I(u) = 4 sum_j (J_j - J_bar)(J_j - J_bar)'``, ``J = d log g / d u``
(:meth:`~mixedmodels.rside.objective.GLSObjective.scoring_information`), which costs one
Jacobian of the log standard deviations -- no evaluation of the criterion. The search
steps by

.. math:: s = -(\mathcal{I} + \epsilon\, \mathrm{diag}\,\mathcal{I} + \eta I)^{-1} g,

capped at :data:`SCORING_MAX_STEP` in every coordinate, and halves a step that does not
lower the criterion enough (Armijo); it stops when the predicted decrease ``-g's`` falls
below :data:`SCORING_DECREMENT_TOL`.

Why: a varConstPower constant and power trade off along a long curved valley
(``log c`` rises about twice as fast as the power along it on the hetero data), where
BOBYQA takes 46 evaluations and projected BFGS 129; the information matrix knows the
valley's shape at every point (its flat direction is the one that changes every row's log
sd by the same amount, which sigma absorbs). hetero_gls_constpower: 10 value-and-gradient
evaluations, then the convergence check's Newton step (the log-likelihood of a 1e-9 stop to
2e-13; 1e-9 below BOBYQA's deviance). At nlme's start (``c = 0.1``, power 0)
the constant is unidentified (``c + |v|^0`` is one number for every row) and the
information singular in it: the ridge and the cap keep that first step finite.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.linalg.lapack import dgesv

from ..optim import OptSummary
from .trace import traced

__all__ = ["SCORING_DECREMENT_TOL", "SCORING_MAX_ITER", "SCORING_MAX_STEP",
           "fisher_scoring_search"]

#: Largest step in any unconstrained coordinate (logs, powers): the information describes
#: the criterion near the point, and a step of 2 or 3 overshot on the hetero data (15
#: and 19 evaluations against 12 with 1).
SCORING_MAX_STEP = 1.0
#: Relative ridge on the information's diagonal ...
SCORING_RIDGE = 1e-6
#: ... and an absolute one relative to its largest diagonal entry (a singular direction).
SCORING_FLOOR = 1e-10
#: Stop when the predicted decrease ``-g's`` of the next step is below this (deviance
#: units): below BOBYQA's ``ftol_abs`` 1e-5. Scoring converges only linearly (the
#: expected information is not the Hessian: the decrement falls ~100-fold a step on the
#: hetero data), so the last digits are left to the convergence check's Newton step from
#: the exact gradient's finite-difference Hessian (``fitting.rside._checked_gradient``,
#: after the log-scale stage that varConstPower's constant takes), which converges
#: quadratically. Against 1e-9 it saves 1-4 steps a fit (hetero 12 ->
#: 10; 81 of 1197 evaluations over 24 simulated one- and two-stratum fits, ML and REML),
#: every log-likelihood after the check within 1.2e-14 (relative) of 1e-9's.
SCORING_DECREMENT_TOL = 1e-6
#: Most scoring steps before the search gives up (the caller then runs BOBYQA).
SCORING_MAX_ITER = 50
#: Most halvings of one step ...
SCORING_MAX_HALVINGS = 10
#: ... and the Armijo fraction of the predicted decrease a step must achieve.
ARMIJO = 1e-4


def fisher_scoring_search(obj, x0: np.ndarray, lower: np.ndarray, stage: str
                          ) -> tuple[OptSummary, np.ndarray] | None:
    """Fisher scoring (module docstring) of ``obj`` from ``x0``: ``(OptSummary, gradient
    at its optimum)``, or None where the information is unavailable or singular beyond the
    ridge, a value is not finite, a step cannot lower the criterion, or the search does not
    settle in :data:`SCORING_MAX_ITER` steps.

    Parameters
    ----------
    obj : GLSObjective
        With :meth:`~mixedmodels.rside.objective.GLSObjective.scoring_information`.
    x0, lower : ndarray
        Start and lower bounds (steps are clipped to them).
    stage : str
        Trace label.
    """
    t0 = time.perf_counter()
    fg = traced(obj.value_and_gradient, stage, gradient=True)
    x = np.array(x0, dtype=float)
    f, g = fg(x)
    n_evals = 1
    if not math.isfinite(f):
        return None
    k = x.size
    diagonal = range(k)
    converged = False
    for _ in range(SCORING_MAX_ITER):
        info = obj.scoring_information(x)
        if info is None:
            return None
        # the k^2 entries as Python floats: cheaper than numpy's reductions on a 2 x 2
        flat = info.ravel().tolist()
        if not all(map(math.isfinite, flat)):
            return None
        d = flat[::k + 1]
        # I + ridge diag(I) + floor max(max diag, 1) eye, added to the diagonal in place:
        # the same sums, in the same order, as the three-matrix expression
        floor = SCORING_FLOOR * max(max(d), 1.0)
        for i in diagonal:
            info[i, i] = (d[i] + SCORING_RIDGE * d[i]) + floor
        # LAPACK's dgesv directly (numpy's solve is the same LU with ~3 us of wrappers)
        _, _, sol, bad = dgesv(info, g)
        if bad != 0:
            return None
        step = -sol
        big = max(map(abs, step.tolist()))
        if big > SCORING_MAX_STEP:
            step *= SCORING_MAX_STEP / big
        pred = float(g @ step)
        if not math.isfinite(pred):
            return None
        if -pred <= SCORING_DECREMENT_TOL:
            converged = True
            break
        t = 1.0
        for _ in range(SCORING_MAX_HALVINGS):
            trial = np.maximum(x + t * step, lower)
            f1, g1 = fg(trial)
            n_evals += 1
            if math.isfinite(f1) and f1 <= f + ARMIJO * t * pred:
                break
            t *= 0.5
        else:
            return None
        x, f, g = trial, float(f1), g1
    if not converged:
        return None
    opt = OptSummary(optimizer="gradient:Fisher scoring", x0=np.asarray(x0, dtype=float),
                     lower=lower, upper=np.full_like(lower, np.inf), x=x, fval=float(f),
                     n_evals=n_evals,
                     settings={"decrement_tol": SCORING_DECREMENT_TOL,
                               "max_step": SCORING_MAX_STEP, "maxiter": SCORING_MAX_ITER},
                     return_code="converged", seconds=time.perf_counter() - t0)
    return opt, g
