"""Optimizer traces through the standard ``logging`` module, and lme4's ``verbose=``.

Loggers (children of ``"mixedmodels"``):

* ``mixedmodels.fit``   -- INFO: one line per fitting stage (optimizer, evaluations, time,
  objective);
* ``mixedmodels.optim`` -- DEBUG: one line per objective evaluation (lme4's ``verbose = 1``
  iteration output);
* ``mixedmodels.pirls`` -- DEBUG: PIRLS iterations spent in each GLMM evaluation (lme4's
  ``verbose = 2`` adds PIRLS output).

Nothing is formatted unless a logger is enabled for the level: the objective is wrapped
only when ``mixedmodels.optim`` is enabled for DEBUG when the fit starts, so fits without
tracing run the objective itself. ``verbose=k`` on a front door enables the loggers up to
level ``k`` for the duration of the call and prints their records on stderr -- only the
records of the calling thread, so fits running in other threads do not interleave theirs.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["FIT_LOG", "OPTIM_LOG", "PIRLS_LOG", "log_stage", "traced", "verbose_output"]

FIT_LOG = logging.getLogger("mixedmodels.fit")
OPTIM_LOG = logging.getLogger("mixedmodels.optim")
PIRLS_LOG = logging.getLogger("mixedmodels.pirls")
#: Loggers enabled by each ``verbose`` level (cumulative) and the level they get.
_VERBOSE_LOGGERS = ((1, FIT_LOG, logging.INFO), (1, OPTIM_LOG, logging.DEBUG),
                    (2, PIRLS_LOG, logging.DEBUG))
#: Digits of the parameters shown in a trace line.
TRACE_PRECISION = 6

_lock = threading.Lock()
_active = 0                      # verbose calls in progress (any thread)
_saved_levels: dict[str, int] = {}


class _Traced:
    """``fun`` with one DEBUG line per evaluation (evaluation number, value, parameters)."""

    def __init__(self, fun: Callable, stage: str, extra: Callable[[], str] | None):
        self.fun, self.stage, self.extra = fun, stage, extra
        self.count = 0

    def _line(self, x, f) -> None:
        self.count += 1
        xs = np.array2string(np.asarray(x, float), precision=TRACE_PRECISION,
                             separator=", ", max_line_width=10_000)
        OPTIM_LOG.debug("%s %4d: f = %.10g at %s", self.stage, self.count, f, xs)
        if self.extra is not None and PIRLS_LOG.isEnabledFor(logging.DEBUG):
            PIRLS_LOG.debug("%s %4d: %s", self.stage, self.count, self.extra())

    def __call__(self, x):
        f = self.fun(x)
        self._line(x, float(f))
        return f


class _TracedGradient(_Traced):
    """A ``value_and_gradient`` function with the same trace (the value only)."""

    def __call__(self, x):
        f, g = self.fun(x)
        self._line(x, float(f))
        return f, g


def traced(fun: Callable, stage: str, extra: Callable[[], str] | None = None,
           gradient: bool = False) -> Callable:
    """``fun`` itself, or a tracing wrapper when ``mixedmodels.optim`` logs DEBUG."""
    if not OPTIM_LOG.isEnabledFor(logging.DEBUG):
        return fun
    return (_TracedGradient if gradient else _Traced)(fun, stage, extra)


def log_stage(fitter: str, stage: str, optimizer: str, n_evals: int, seconds: float,
              fval: float) -> None:
    """One INFO line summarizing a fitting stage."""
    if FIT_LOG.isEnabledFor(logging.INFO):
        FIT_LOG.info("%s %s: %s, %d evaluations, %.3f s, objective %.10g", fitter, stage,
                     optimizer, n_evals, seconds, fval)


class _ThisThread(logging.Filter):
    def __init__(self):
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


def check_verbose(verbose) -> int:
    """``verbose`` as lme4 takes it: False/True or an integer level >= 0."""
    if isinstance(verbose, bool | np.bool_):
        return int(verbose)
    if isinstance(verbose, int | np.integer) and verbose >= 0:
        return int(verbose)
    raise TypeError(f"verbose must be an integer level >= 0 (0: quiet, 1: optimizer "
                    f"trace, 2: also PIRLS) or a bool, got {verbose!r}")


@contextmanager
def verbose_output(verbose: int, stream=None) -> Iterator[None]:
    """Print this thread's fit traces up to level ``verbose`` on ``stream`` (stderr)."""
    global _active
    if verbose <= 0:
        yield
        return
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(_ThisThread())
    loggers = [(lg, lev) for k, lg, lev in _VERBOSE_LOGGERS if verbose >= k]
    with _lock:
        if _active == 0:
            _saved_levels.update({lg.name: lg.level for _, lg, _ in _VERBOSE_LOGGERS})
        _active += 1
        for lg, lev in loggers:
            if lg.getEffectiveLevel() > lev:
                lg.setLevel(lev)
            lg.addHandler(handler)
    try:
        yield
    finally:
        with _lock:
            for lg, _ in loggers:
                lg.removeHandler(handler)
            _active -= 1
            if _active == 0:
                for _, lg, _ in _VERBOSE_LOGGERS:
                    lg.setLevel(_saved_levels.pop(lg.name, logging.NOTSET))
