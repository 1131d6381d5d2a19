"""Optimizer backends behind one function, :func:`minimize`.

The default is NLopt's BOBYQA, the bound-constrained derivative-free method lme4 uses
(``nloptwrap``), with lme4's tolerances. BOBYQA builds quadratic models from function values
only, which suits the profiled deviance: cheap to evaluate, smooth, with bounds at zero for
the Cholesky diagonals. scipy's COBYQA and L-BFGS-B are available by name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .summary import OptSummary

__all__ = ["DEFAULT_SETTINGS", "OPTIMIZERS", "minimize"]

#: lme4's ``nloptwrap`` defaults (lme4 >= 1.1-14).
DEFAULT_SETTINGS = {"xtol_abs": 1e-8, "ftol_abs": 1e-8, "maxeval": 100_000}

_NLOPT_CODES = {
    1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
    5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED",
}


def _nlopt(fun, x0, lower, upper, settings, algorithm, log):
    import nlopt

    alg = getattr(nlopt, algorithm)
    n = x0.size
    opt = nlopt.opt(alg, n)
    count = [0]

    def wrapped(x, grad):
        count[0] += 1
        f = float(fun(x))
        if log is not None:
            log.append((x.copy(), f))
        # BOBYQA cannot use an infinite value; a very large one steers it away.
        # (math.isfinite: a Python float, ~1 us cheaper per evaluation than np.isfinite)
        return f if math.isfinite(f) else 1e300

    opt.set_min_objective(wrapped)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(np.where(np.isfinite(upper), upper, np.inf))
    opt.set_xtol_abs(settings["xtol_abs"])
    opt.set_ftol_abs(settings["ftol_abs"])
    if "ftol_rel" in settings:
        opt.set_ftol_rel(settings["ftol_rel"])
    if "xtol_rel" in settings:
        opt.set_xtol_rel(settings["xtol_rel"])
    opt.set_maxeval(int(settings["maxeval"]))
    if "initial_step" in settings:
        opt.set_initial_step(settings["initial_step"])
    x0c = np.clip(x0, lower, upper)
    try:
        x = opt.optimize(x0c)
        code = _NLOPT_CODES.get(opt.last_optimize_result(), str(opt.last_optimize_result()))
        fval = opt.last_optimum_value()
    except nlopt.RoundoffLimited:
        # BOBYQA gives up when rounding dominates; its best point is still good
        x, fval, code = _best_from(log, x0c, fun), None, "ROUNDOFF_LIMITED"
    if fval is None:
        fval = float(fun(x))
    return np.asarray(x), float(fval), count[0], code


def _best_from(log, x0, fun):
    if log:
        return min(log, key=lambda t: t[1])[0]
    return x0


def _scipy(fun, x0, lower, upper, settings, method, log):
    from scipy.optimize import Bounds
    from scipy.optimize import minimize as sp_min

    count = [0]

    def wrapped(x):
        count[0] += 1
        f = float(fun(x))
        if log is not None:
            log.append((x.copy(), f))
        return f if np.isfinite(f) else 1e300

    bounds = Bounds(lower, upper)
    opts = {"maxiter": int(settings["maxeval"])}
    res = sp_min(wrapped, np.clip(x0, lower, upper), method=method, bounds=bounds,
                 options=opts)
    return np.asarray(res.x), float(res.fun), count[0], "converged" if res.success \
        else str(res.message)


OPTIMIZERS: dict[str, Callable] = {
    "bobyqa": lambda *a: _nlopt(*a[:5], "LN_BOBYQA", a[5]),
    "nelder_mead": lambda *a: _nlopt(*a[:5], "LN_NELDERMEAD", a[5]),
    "cobyqa": lambda *a: _scipy(*a[:5], "COBYQA", a[5]),
    "lbfgsb": lambda *a: _scipy(*a[:5], "L-BFGS-B", a[5]),
}


def minimize(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    *,
    optimizer: str = "bobyqa",
    settings: dict | None = None,
    keep_log: bool = False,
) -> OptSummary:
    """Minimize ``fun`` over a box.

    Parameters
    ----------
    fun : callable
        Objective of a 1-d float array.
    x0, lower, upper : array-like
        Start and bounds (``-inf``/``inf`` for none).
    optimizer : str
        ``"bobyqa"`` (default, NLopt), ``"nelder_mead"`` (NLopt), ``"cobyqa"`` or
        ``"lbfgsb"`` (scipy).
    settings : dict, optional
        Overrides of :data:`DEFAULT_SETTINGS`.
    keep_log : bool
        Record every evaluation in the summary's ``log``.

    Returns
    -------
    OptSummary
        The optimum ``x`` and ``fval``, the number of evaluations, the return code and
        the settings used.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(x0, np.inf) if upper is None else np.asarray(upper, dtype=float)
    cfg = dict(DEFAULT_SETTINGS)
    cfg.update(settings or {})
    log: list | None = [] if keep_log or optimizer == "bobyqa" else None
    t0 = time.perf_counter()
    if x0.size == 0:
        # nothing to optimize (a model whose covariances are all known: equalto)
        x, fval, n_evals, code = x0.copy(), float(fun(x0)), 1, "no parameters"
    else:
        x, fval, n_evals, code = OPTIMIZERS[optimizer](fun, x0, lower, upper, cfg, log)
    seconds = time.perf_counter() - t0
    return OptSummary(
        optimizer="nlopt:LN_BOBYQA" if optimizer == "bobyqa" else optimizer,
        x0=x0, lower=lower, upper=upper, x=x, fval=fval, n_evals=n_evals, settings=cfg,
        return_code=code, seconds=seconds, log=tuple(log) if keep_log and log else (),
    )
