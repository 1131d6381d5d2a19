"""Progress of long runs (bootstrap, parametric-bootstrap tests, profiles).

With ``tqdm`` installed (``pip install 'mixedmodels[progress]'``) the bar is
``tqdm.auto.tqdm``: a widget in Jupyter, a single self-rewriting line on a terminal. tqdm is
an optional extra rather than a dependency because the package must install with its core
dependencies only; without it a plain fallback writes one throttled line on stderr.

``progress``: True shows the bar, False never; None (the default of the functions that take
it) shows it only for runs that last longer than :data:`PROGRESS_AFTER_SECONDS`, and only
where someone is watching -- a terminal or a notebook kernel, not a log file.
"""

from __future__ import annotations

import sys
import time

__all__ = ["MIN_INTERVAL", "PROGRESS_AFTER_SECONDS", "Progress", "progress_bar"]

#: With ``progress=None``, the bar appears once a run has taken this long.
PROGRESS_AFTER_SECONDS = 2.0
#: Seconds between two redraws (tqdm's ``mininterval``; the fallback's throttle).
MIN_INTERVAL = 0.5


def _watched() -> bool:
    """A person can see stderr: a terminal, or a Jupyter/IPython kernel."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return "ipykernel" in sys.modules


class Progress:
    """Count of finished units of a run; ``update(done)`` with the running total."""

    def __init__(self, total: int, mode, label: str, unit: str = "replicates"):
        self.total, self.label, self.unit = int(total), label, unit
        self.enabled = mode is True or (mode is None and _watched())
        self.delay = PROGRESS_AFTER_SECONDS if mode is None else 0.0
        self.done = 0
        self._bar = None
        self._fallback = False
        self._t0 = time.perf_counter()
        self._last = -MIN_INTERVAL
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._fallback = True
            return
        self._bar = tqdm(total=self.total, desc=label, unit=unit, delay=self.delay,
                         mininterval=MIN_INTERVAL, leave=True, dynamic_ncols=True)

    def update(self, done: int) -> None:
        step, self.done = done - self.done, done
        if self._bar is not None:
            self._bar.update(step)
        elif self._fallback:
            self._write(final=False)

    def _write(self, final: bool) -> None:
        now = time.perf_counter()
        elapsed = now - self._t0
        if elapsed < self.delay or (not final and now - self._last < MIN_INTERVAL):
            return
        self._last = now
        eta = elapsed / max(self.done, 1) * (self.total - self.done)
        sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} {self.unit}, "
                         f"{elapsed:.1f} s "
                         f"elapsed, ~{eta:.1f} s left ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._fallback and self._last >= 0:
            self._write(final=True)
            self._fallback = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, mode, label: str, unit: str = "replicates") -> Progress:
    """A :class:`Progress` for ``total`` units (see the module docstring for ``mode``)."""
    if mode not in (True, False, None):
        raise ValueError(f"progress must be True, False or None, got {mode!r}")
    return Progress(total, mode, label, unit)
