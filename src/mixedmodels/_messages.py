"""Per-fit collection of this package's warnings, safe across threads.

``warnings.catch_warnings`` swaps process-global state (the filter list and
``showwarning``): two fits running in different threads would record each other's warnings,
and one thread's exit could restore the other's filters. A fit's ``messages`` must describe
that fit only, so collection does not go through the ``warnings`` machinery at all:

* every :class:`~mixedmodels.MixedModelsWarning` reports itself, when it is *constructed*,
  to the collectors active in the current :mod:`contextvars` context (``warnings.warn``
  builds the instance in the thread that warns, before any filter is consulted, so the
  report is independent of the user's filters);
* :func:`collecting` opens a collector for a block; collectors nest (a refit inside a fit
  reports to both) and each thread starts with none (threads do not inherit contexts);
* the warnings themselves still go to Python's ``warnings`` module, so users see and filter
  them as usual -- except inside :func:`quiet` blocks (bootstrap replicates), where
  :func:`emit_warning` records without emitting.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["MessageLog", "collecting", "emit_warning", "held", "quiet", "replay", "report",
           "user_stacklevel"]


@dataclass(frozen=True)
class CollectedWarning:
    """One warning seen by a collector: the instance and its class."""

    message: Warning
    category: type


class MessageLog(list):
    """The warnings reported inside a :func:`collecting` block, in order (a list of
    :class:`CollectedWarning`)."""

    def texts(self, base: type | None = None) -> tuple[str, ...]:
        """Distinct messages (of subclasses of ``base``, default all), in order."""
        out: list[str] = []
        for w in self:
            text = str(w.message)
            if (base is None or issubclass(w.category, base)) and text not in out:
                out.append(text)
        return tuple(out)

    def categories(self) -> list[str]:
        """Sorted distinct class names of the collected warnings."""
        return sorted({w.category.__name__ for w in self})


#: Collectors active in this context, innermost last (a tuple: contexts share nothing).
_COLLECTORS: ContextVar[tuple[MessageLog, ...]] = ContextVar("mixedmodels_collectors",
                                                             default=())
#: Inside a quiet block, :func:`emit_warning` records but does not emit.
_QUIET: ContextVar[bool] = ContextVar("mixedmodels_quiet", default=False)


def report(warning: Warning) -> None:
    """Hand ``warning`` to every collector active in the current context."""
    for log in _COLLECTORS.get():
        log.append(CollectedWarning(warning, type(warning)))


class collecting:  # noqa: N801 - used as a function: ``with collecting() as log``
    """Collect the package warnings constructed in this block (this thread/context only):
    ``with collecting() as log:``, ``log`` the :class:`MessageLog`.

    A class rather than a generator context manager: every fit opens one, and the
    generator's machinery cost more than the collection itself."""

    __slots__ = ("_log", "_token")

    def __enter__(self) -> MessageLog:
        self._log = log = MessageLog()
        self._token = _COLLECTORS.set((*_COLLECTORS.get(), log))
        return log

    def __exit__(self, *exc) -> None:
        _COLLECTORS.reset(self._token)


@contextmanager
def quiet() -> Iterator[None]:
    """Suppress the display of warnings sent through :func:`emit_warning` (collectors still
    see them): replicates of a bootstrap should not print a thousand singular-fit
    warnings; their counts are reported instead."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


@contextmanager
def held() -> Iterator[MessageLog]:
    """Hold the package warnings of a block: neither shown nor reported to the active
    collectors, only recorded in the yielded log -- for a trial whose result may be
    discarded; :func:`replay` sends them on once it is kept."""
    log = MessageLog()
    token_c = _COLLECTORS.set((log,))
    token_q = _QUIET.set(True)
    try:
        yield log
    finally:
        _QUIET.reset(token_q)
        _COLLECTORS.reset(token_c)


def replay(log: MessageLog) -> None:
    """Emit the warnings of a :func:`held` block now (shown and collected as usual)."""
    for w in log:
        emit_warning(str(w.message), w.category)


#: The package's directory: frames whose file lies under it are "inside" (see
#: :func:`user_stacklevel`).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel(skip: int = 1) -> int:
    """The ``stacklevel`` for a :func:`warnings.warn` call that names the first frame
    outside this package.

    A fixed ``stacklevel`` at each call site breaks whenever the path from the user's
    call to the warning changes (a helper added, a front door calling another): the
    warning then points inside the package (``fitting/glmm.py``) instead of at the user's
    line. Walking the stack finds the user's frame whatever the depth.

    Parameters
    ----------
    skip : int
        How far up the stack the frame that calls ``warnings.warn`` is: 1 (default) for
        this function's caller.

    Returns
    -------
    int
        1 + the number of frames from the warning frame to the first frame whose file is
        not under the package directory (the outermost frame if every frame is inside).
    """
    frame = sys._getframe(skip)     # the frame that calls warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def emit_warning(message: str, category: type[Warning], stacklevel: int | None = None
                 ) -> None:
    """``warnings.warn(message, category)`` attributed to the user's line, except inside
    :func:`quiet` blocks, where the warning is only constructed (which reports it to the
    collectors).

    The warning's frame is the first one outside this package (:func:`user_stacklevel`),
    wherever in the package it is raised. ``stacklevel`` is accepted for the call sites
    that still pass one and ignored: a count fixed at the call site is what went wrong
    before (singular-fit warnings pointing at ``fitting/lmm.py``)."""
    del stacklevel
    if _QUIET.get():
        category(message)
        return
    warnings.warn(message, category, stacklevel=user_stacklevel())
