"""Regular memory pages for the arrays of large fits.

numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every
array of 4 MB or more. Where the kernel's THP ``defrag`` policy is ``madvise`` (the common
Linux default), a page fault on such an array that finds no free 2 MB page stalls in
direct memory compaction; on a machine whose memory other processes have fragmented that
costs far more than the zeroing of the page itself. A million-row fit touches about a
gigabyte of freshly allocated arrays (the 25M-pair product pattern of crossed_1m alone is
300 MB), and there the stalls were most of the time outside the optimizer:

* crossed_1m (``y ~ x + (1 | g1) + (1 | g2)``, 1M rows), one fit, system CPU time
  1.58-1.79 s with numpy's default against 0.42-0.51 s with regular pages; user time
  unchanged within the noise (3.7-4.2 s against 3.9-4.5 s), 3 runs each, load ~10 on
  2 cores (benchmarks/results/big1m_notes.md).

:func:`regular_pages` turns numpy's request off while a fit of at least
:data:`REGULAR_PAGES_MIN_ROWS` rows runs and restores it afterwards. Page size does not
change any arithmetic: results are identical either way. Small fits never allocate arrays
this large and are left alone (no call at all).
"""

from __future__ import annotations

import threading

__all__ = ["REGULAR_PAGES_MIN_ROWS", "regular_pages"]

#: Fits with at least this many rows allocate n-length float arrays of ~1 MB and
#: cross-product structures of many MB: from here on their arrays get regular pages.
REGULAR_PAGES_MIN_ROWS = 100_000

# numpy's switch is process-wide: fits overlapping in several threads share one request
# count, the first to enter saves numpy's setting and the last to leave restores it (so an
# inner exit never turns huge pages back on under a fit still running)
_LOCK = threading.Lock()
_STATE = {"depth": 0, "previous": None}


def _switch():
    """numpy's ``_set_madvise_hugepage`` (returns the previous setting), or None where this
    numpy has none (then nothing is changed)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray
    return getattr(multiarray, "_set_madvise_hugepage", None)


class regular_pages:  # noqa: N801 - used as a context manager, like contextlib's
    """Context manager: numpy's huge-page request off for a fit of ``n_rows`` rows when
    ``n_rows >= REGULAR_PAGES_MIN_ROWS``; numpy's setting restored when the last such fit
    (of any thread) exits.

    Parameters
    ----------
    n_rows : int
        Rows of the fit.
    """

    __slots__ = ("_set",)

    def __init__(self, n_rows: int):
        self._set = _switch() if int(n_rows) >= REGULAR_PAGES_MIN_ROWS else None

    def __enter__(self) -> regular_pages:
        if self._set is not None:
            with _LOCK:
                if _STATE["depth"] == 0:
                    _STATE["previous"] = bool(self._set(False))
                _STATE["depth"] += 1
        return self

    def __exit__(self, *exc) -> None:
        if self._set is not None:
            with _LOCK:
                _STATE["depth"] -= 1
                if _STATE["depth"] == 0:
                    self._set(_STATE["previous"])
                    _STATE["previous"] = None
