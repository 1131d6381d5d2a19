"""Pieces shared by the front doors: collecting warnings, boundary snapping."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

__all__ = ["BOUNDARY_TOL", "collect_warnings", "snap_to_boundary"]

#: lme4's ``boundary.tol``: parameters this close to a bound are tried on the bound.
BOUNDARY_TOL = 1e-5


@contextmanager
def collect_warnings(messages: list[str]):
    """Record this package's warnings raised inside the block and re-emit them.

    The messages are kept on the result (``m.messages``) as lme4 keeps them in
    ``m@optinfo$conv$lme4$messages``.
    """
    from .._errors import MixedModelsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            pass
    for w in caught:
        if issubclass(w.category, MixedModelsWarning):
            messages.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
