"""BLAS threads chosen by the size of the work, not left to the library's default.

OpenBLAS starts one thread per core and spins them on every call. For the small matrices of
most mixed models (a few hundred columns at most) the threads cost more than they save, and
on a busy machine their spinning makes a fit several times slower than with one thread (a
sleepstudy fit of glmmTMB's class: 0.06 s with one thread, 0.5 s with two under a load of
three). :func:`blas_threads` limits BLAS to one thread unless the largest dense matrix the
fit factors has at least :data:`PARALLEL_MIN_SIZE` columns, using threadpoolctl (the
library scikit-learn uses for the same purpose); without threadpoolctl it does nothing.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

__all__ = ["PARALLEL_MIN_SIZE", "blas_threads", "dense_block_size"]

#: Dense factorizations at least this many columns wide get the library's default threads.
PARALLEL_MIN_SIZE = 4000

_controller = None


def _get_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


def dense_block_size(terms) -> int:
    """Columns of the largest dense matrix an lme4-class fit factors: the rest block of the
    blocked factorization (every term but the first, whose levels factor one by one).

    Parameters
    ----------
    terms : sequence of random-effects terms (with ``q``), first term first
    """
    return int(sum(t.q for t in terms[1:]))


@contextmanager
def blas_threads(dense_size: int = 0):
    """Run the block with one BLAS thread unless ``dense_size`` (columns of the largest
    dense matrix factored) reaches :data:`PARALLEL_MIN_SIZE`."""
    ctl = _get_controller()
    if not ctl or dense_size >= PARALLEL_MIN_SIZE:
        ctx = nullcontext()
    else:
        ctx = ctl.limit(limits=1, user_api="blas")
    with ctx:
        yield
