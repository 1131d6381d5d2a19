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

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["MessageLog", "collecting", "emit_warning", "quiet", "report"]


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


@contextmanager
def collecting() -> Iterator[MessageLog]:
    """Collect the package warnings constructed in this block (this thread/context only)."""
    log = MessageLog()
    token = _COLLECTORS.set((*_COLLECTORS.get(), log))
    try:
        yield log
    finally:
        _COLLECTORS.reset(token)


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


def emit_warning(message: str, category: type[Warning], stacklevel: int = 2) -> None:
    """``warnings.warn(message, category)``, except inside :func:`quiet` blocks, where the
    warning is only constructed (which reports it to the collectors)."""
    if _QUIET.get():
        category(message)
        return
    warnings.warn(message, category, stacklevel=stacklevel + 1)
