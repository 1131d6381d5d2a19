"""Pieces shared by the front doors: collecting warnings, boundary snapping."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

__all__ = [
    "BOUNDARY_TOL",
    "check_flags",
    "collect_warnings",
    "newton_polish",
    "package_messages",
    "snap_to_boundary",
]

#: lme4's ``boundary.tol``: parameters this close to a bound are tried on the bound.
BOUNDARY_TOL = 1e-5


def check_flags(**flags) -> None:
    """Refuse a non-boolean value for a yes/no argument (``REML="False"`` is a non-empty
    string, hence true: it would silently fit by REML).

    Raises
    ------
    TypeError
        Naming the argument and the value given.
    """
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise TypeError(
                f"{name} must be True or False, got {value!r} ({type(value).__name__})"
                + ("; write it without quotes" if isinstance(value, str) else "")
            )


@contextmanager
def collect_warnings(messages: list[str] | None = None):
    """Record the warnings raised inside the block, then re-emit them.

    Yields the live list of ``warnings.WarningMessage``; :func:`package_messages` turns it
    into the messages a result keeps (``m.messages``, as lme4 keeps them in
    ``m@optinfo$conv$lme4$messages``). When ``messages`` is given, this package's messages
    are also appended to it on exit.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    if messages is not None:
        messages.extend(m for m in package_messages(caught) if m not in messages)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def package_messages(caught) -> tuple[str, ...]:
    """This package's warning messages among ``caught``, in order, without repeats."""
    from .._errors import MixedModelsWarning

    out: list[str] = []
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, MixedModelsWarning) and msg not in out:
            out.append(msg)
    return tuple(out)


def snap_to_boundary(fun: Callable[[np.ndarray], float], x: np.ndarray, fval: float,
                     lower: np.ndarray, tol: float = BOUNDARY_TOL) -> tuple[np.ndarray, float]:
    """Move parameters within ``tol`` of a finite lower bound onto it, one at a time,
    keeping each move that does not worsen the objective."""
    x = x.copy()
    near = np.flatnonzero(np.isfinite(lower) & (x != lower) & (x - lower < tol))
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
