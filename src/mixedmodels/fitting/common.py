"""Pieces shared by the front doors: collecting warnings, boundary snapping."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .._errors import ConvergenceWarning, FormulaError, SingularFitWarning
from .._messages import collecting, emit_warning
from ..diagnostics import check_convergence, singular_groups, singular_message
from ..optim import minimize

__all__ = [
    "BOUNDARY_TOL",
    "check_flag",
    "check_optimizer",
    "check_relative_structures",
    "collect_warnings",
    "finish_result",
    "newton_polish",
    "package_messages",
    "resolve_reml",
    "restart_while_improving",
    "snap_to_boundary",
    "warn_if_poorly_scaled",
]

#: lme4's ``boundary.tol``: parameters this close to a bound are tried on the bound.
BOUNDARY_TOL = 1e-5
#: Restarts of a derivative-free search for models with structured covariance terms, and
#: the decrease of the objective below which another restart is not worth it.
STRUCTURED_RESTARTS = 4
#: Up to this many parameters :func:`snap_to_boundary` tests them on Python floats.
SCALAR_SNAP_MAX = 16
STRUCTURED_RESTART_GAIN = 1e-9


class collect_warnings:  # noqa: N801 - used as a function: ``with collect_warnings() as c``
    """Record this package's warnings raised inside the block, in this thread only.

    Yields the live :class:`~mixedmodels._messages.MessageLog`; :func:`package_messages`
    turns it into the messages a result keeps (``m.messages``, as lme4 keeps them in
    ``m@optinfo$conv$lme4$messages``). When ``messages`` is given, the messages are also
    appended to it on a normal exit. The warnings reach the user through Python's
    ``warnings`` as they happen; collection uses a context variable rather than
    ``warnings.catch_warnings`` (process-global), so fits running in other threads neither
    add to nor take from this block's messages. (A class, not a generator context
    manager: every fit opens one.)
    """

    __slots__ = ("_collector", "_log", "_messages")

    def __init__(self, messages: list[str] | None = None):
        self._messages = messages

    def __enter__(self):
        self._collector = collecting()
        self._log = self._collector.__enter__()
        return self._log

    def __exit__(self, exc_type, exc, tb) -> None:
        self._collector.__exit__(exc_type, exc, tb)
        messages = self._messages
        if exc_type is None and messages is not None:
            messages.extend(m for m in package_messages(self._log) if m not in messages)


def finish_result(result, messages: tuple[str, ...], recipe):
    """``dataclasses.replace(result, messages=messages, recipe=recipe)`` for a result this
    fit has just made and not handed out: the two fields are set on it (a frozen
    dataclass's ``__init__`` again, field by field, costs a small fit ~4 us). Objects
    without those two instance fields go through ``replace``."""
    fields = getattr(result, "__dict__", None)
    if fields is None or "messages" not in fields or "recipe" not in fields:
        return replace(result, messages=messages, recipe=recipe)
    object.__setattr__(result, "messages", messages)
    object.__setattr__(result, "recipe", recipe)
    return result


def package_messages(caught) -> tuple[str, ...]:
    """This package's warning messages among ``caught``, in order, without repeats."""
    if not caught:
        return ()          # (most fits: nothing to import or scan)
    from .._errors import MixedModelsWarning

    out: list[str] = []
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, MixedModelsWarning) and msg not in out:
            out.append(msg)
    return tuple(out)


def check_flag(name: str, value) -> bool:
    """A yes/no argument: a bool (numpy's too) or the integers 0 and 1 -- never a string
    (``REML="False"`` is truthy in Python and would silently fit by REML)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} "
                    f"({type(value).__name__})"
                    + ("; write it without quotes" if isinstance(value, str) else ""))


def resolve_reml(REML, reml) -> bool:
    """``REML=`` with ``reml=`` accepted as its lower-case alias (what a Python user types);
    contradicting values are refused."""
    REML = check_flag("REML", REML)
    if reml is None:
        return REML
    reml = check_flag("reml", reml)
    if not REML and reml:
        raise TypeError("REML=False and reml=True contradict each other; pass one of them")
    return reml


def check_optimizer(optimizer, accepted: tuple[str, ...], fitter: str) -> str:
    """The optimizer name, or a ValueError listing every accepted value."""
    if not isinstance(optimizer, str) or optimizer not in accepted:
        raise ValueError(f"unknown optimizer {optimizer!r} for {fitter}(); choose one of "
                         f"{', '.join(repr(a) for a in accepted)}")
    return optimizer


def snap_to_boundary(fun: Callable[[np.ndarray], float], x: np.ndarray,
                     fval: float | None, lower: np.ndarray, tol: float = BOUNDARY_TOL
                     ) -> tuple[np.ndarray, float | None]:
    """Move parameters within ``tol`` of a finite lower bound onto it, one at a time,
    keeping each move that does not worsen the objective. ``fval`` None: ``fun(x)``,
    evaluated only when some parameter is near its bound (and returned as None when
    none is)."""
    x = x.copy()
    if x.size <= SCALAR_SNAP_MAX and isinstance(tol, float):
        # on Python floats: the same tests, element by element (numpy's calls cost more
        # than the work on a few parameters)
        near = [i for i, (xi, lo) in enumerate(zip(x.tolist(), lower.tolist(), strict=True))
                if math.isfinite(lo) and xi != lo and xi - lo < tol]
    else:
        near = np.flatnonzero(np.isfinite(lower) & (x != lower) & (x - lower < tol))
    if len(near) and fval is None:
        fval = fun(x)
    for i in near:
        trial = x.copy()
        trial[i] = lower[i]
        f = fun(trial)
        if f <= fval:
            x, fval = trial, f
    return x, fval


def newton_polish(fun: Callable[[np.ndarray], float], x: np.ndarray, fval: float,
                  lower: np.ndarray, gradient: np.ndarray, hessian: np.ndarray | None,
                  active: np.ndarray) -> tuple[np.ndarray, float]:
    """One Newton step from the optimizer's answer, kept only if it lowers the objective.

    Derivative-free optimizers stop on small *changes*; on flat objectives that can leave a
    little on the table. The convergence check has already paid for the gradient and
    Hessian, so one projected Newton step on the free parameters is almost free.
    """
    if hessian is None:
        return x, fval
    free = ~active
    try:
        step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
    except np.linalg.LinAlgError:
        return x, fval
    trial = x.copy()
    trial[free] = np.maximum(x[free] - step, lower[free])
    f = fun(trial)
    return (trial, f) if f < fval else (x, fval)


def polished_and_checked(fun, x: np.ndarray, fval: float, lower: np.ndarray, *,
                         stacklevel: int, **check_kw):
    """The convergence check, one :func:`newton_polish` step from its derivatives (the
    check repeated at the polished point when the step helped), and the warning when the
    check fails (``stacklevel`` as the caller would pass to :func:`emit_warning`).
    ``check_kw`` go to the first check only.

    Returns
    -------
    x, fval, ConvergenceCheck
    """
    conv = check_convergence(fun, x, lower, fval, **check_kw)
    polished, fnew = newton_polish(fun, x, fval, lower, conv.gradient, conv.hessian,
                                   conv.active)
    if fnew < fval:
        x, fval = polished, fnew
        conv = check_convergence(fun, x, lower, fval)
    if not conv.converged:
        emit_warning(conv.message, ConvergenceWarning, stacklevel=stacklevel + 1)
    return x, fval, conv


def warn_if_poorly_scaled(design) -> None:
    """lme4's ``checkScaleX`` warning (with the columns' standard deviations) when the
    fixed-effects predictors differ in scale by orders of magnitude."""
    from ..diagnostics.scaling import ScalingWarning, scale_advice

    advice = scale_advice(design.X, list(design.fixed.names))
    if advice is not None:
        emit_warning(advice, ScalingWarning, stacklevel=4)


def restart_while_improving(fun: Callable[[np.ndarray], float], opt, lower: np.ndarray, *,
                            optimizer: str, settings: dict | None = None,
                            restarts: int = STRUCTURED_RESTARTS,
                            gain: float = STRUCTURED_RESTART_GAIN):
    """Restart a derivative-free search from where it stopped while that lowers the
    objective by more than ``gain`` (at most ``restarts`` times); returns the best summary.

    Why: a structured covariance's transformed parameters run off towards a limit on a
    flat ridge (a compound-symmetry correlation tending to one: ``logit`` scale 11 when
    the optimum's is above 20) and BOBYQA stops on small changes with its trust region
    shrunk; a fresh trust region carries on. Parameterizations without such limits
    (lme4's Cholesky factor) are fitted without restarts, so lme4's stopping points are
    kept.
    """
    for _ in range(restarts):
        again = minimize(fun, opt.x, lower, optimizer=optimizer, settings=settings)
        if not again.fval < opt.fval - gain:
            break
        opt = again
    return opt


def check_relative_structures(design, door: str, scaled: bool = True) -> None:
    """Refuse ``equalto`` where covariances are relative to a residual variance: a known
    covariance on the absolute scale cannot be held when ``Sigma = sigma^2 Lambda
    Lambda'`` with ``sigma`` estimated."""
    if not scaled:
        return
    for t in design.terms:
        if t.structure.keyword == "equalto":
            raise FormulaError(
                f"{t.term.source!r}: equalto() fixes the covariance on the absolute scale, "
                f"but {door}'s covariances are relative to the residual variance; use "
                "propto() (Sigma = lambda K, lambda estimated) or mm.glmmtmb(), whose "
                "covariances are absolute")


def warn_if_singular(design, theta: np.ndarray, stacklevel: int = 5) -> None:
    """Emit lme4's boundary (singular) fit warning naming the grouping factors whose
    random-effects covariance is singular at ``theta`` (each structure's ``is_singular``;
    nothing when none is)."""
    groups = singular_groups(design.terms, design.theta_slices(), np.asarray(theta, float))
    if groups:
        emit_warning(singular_message(groups), SingularFitWarning, stacklevel=stacklevel)
