"""BLAS threads chosen by the size of the work, not left to the library's default.

OpenBLAS starts one thread per core and spins them on every call. For the small matrices of
most mixed models (a few hundred columns at most) the threads cost more than they save, and
on a busy machine their spinning makes a fit several times slower than with one thread (a
sleepstudy fit of glmmTMB's class: 0.06 s with one thread, 0.5 s with two under a load of
three). :func:`blas_threads` limits BLAS to one thread unless the largest dense matrix the
fit factors has at least :data:`PARALLEL_MIN_SIZE` columns and the machine has a core to
spare (:data:`IDLE_CORES_FOR_THREADS`), using threadpoolctl (the library scikit-learn uses
for the same purpose); without threadpoolctl it does nothing.

Why the load matters: with a load average of 15 on 2 cores (other jobs), a 3,000-column
Cholesky took 1.3-1.5 s with one OpenBLAS thread and 3.8-14 s with two, and a 1,142-column
one 14 ms against 83 ms: threads that wait for busy cores cost more than they can save at
any size measured, so the default-thread run is never allowed to be slower than one thread.
The gate also reads the kernel's instantaneous count of running processes (a job started
a moment ago has not yet moved the load average), and inside a block left on the default
threads every large dense factorization is watched (:class:`dense_call`): one whose CPU
time shows its threads did not get their cores sends the rest of the block to one thread.
"""

from __future__ import annotations

import math
import os
import time

__all__ = ["CONTENDED_SHARE", "IDLE_CORES_FOR_THREADS", "LOAD_TIME_CONSTANT_S",
           "MEASURE_MIN_S", "PARALLEL_MIN_SIZE", "PROBE_AFTER", "SERIAL_TRTRI_MAX",
           "blas_threads", "dense_block_size", "dense_call", "idle_cores", "own_load",
           "running_others"]

#: Dense factorizations at least this many columns wide get the library's default threads
#: (on a quiet 2-core machine two threads factor and invert a dense matrix 1.6-1.75x faster
#: than one from 300 columns to 2,000; InstEval's 1,142-column block: 0.43 s a fit
#: against 0.54 s) ...
PARALLEL_MIN_SIZE = 1000
#: ... when at least this many cores are not used by other processes (CPUs less the
#: one-minute load average, this process's own share of it taken out: :func:`idle_cores`):
#: on a quiet 2-core machine about 2 (this fit's second thread has a core), with one other
#: job running about 1 (it has not).
IDLE_CORES_FOR_THREADS = 1.25

#: OpenBLAS inverts a triangular matrix of at most this order unblocked, on the calling
#: thread, whatever its thread count (``dtrtri``'s parallel driver hands orders up to
#: ``DTB_ENTRIES``, 64 on its x86 kernels, to the level-2 ``trti2``): a fit whose dense
#: work is such inversions and level-2 products below their thresholds (``dgemv`` 9216,
#: ``dger`` 8192 entries: :data:`~mixedmodels.design.fixed.SERIAL_QR_SIZE`) needs no
#: thread limit. (``dtrtrs`` has no such size: its parallel driver splits any right-hand
#: sides among the threads.)
SERIAL_TRTRI_MAX = 64

#: A dense call on the default threads counts as contended -- its threads did not all get
#: a core -- when the process's CPU time during it is below ``1 + CONTENDED_SHARE * (T - 1)``
#: times its wall time (``T`` threads). Measured on this 2-core machine, a 2,200-column
#: Cholesky and triangular inverse: 116 ms at a CPU/wall ratio of 1.97-2.00 with a core
#: to spare; 0.7-1.8 s at 1.03-1.13 with another job on the second core, where one thread
#: takes 185 ms (a single contended call of crossed_slopes_200k: 2.8-3.6 s against 85 ms).
#: Neither the load average nor the running count at the fit's start (:func:`_cores_free`)
#: sees a job that starts during the fit: crossed_slopes_200k took 52 s instead of 5.5 s
#: so.
CONTENDED_SHARE = 0.6
#: After a contended call the fit's dense calls run on one thread; the default threads are
#: tried again after this many of them (twice as many after each contended try).
PROBE_AFTER = 4
#: Shortest call (wall seconds) whose CPU/wall ratio is read: below it the threads'
#: wake-up and the clocks' resolution dominate.
MEASURE_MIN_S = 2e-3

_controller = None
#: The :class:`_Scope` of the innermost :class:`blas_threads` block that left the default
#: threads (None outside one): :class:`dense_call` reads it.
_scope = None
#: "this block set no scope" (None is a valid outer scope)
_NO_SCOPE = object()


def _get_controller():
    """threadpoolctl's controller of the BLAS libraries only, made once: selecting them
    at every fit cost a small fit ~20 us (a quarter of the limit's own cost)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _controller = False
        else:
            _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def dense_block_size(terms) -> int:
    """Columns of the largest dense matrix an lme4-class fit factors: the rest block of the
    blocked factorization (every term but the first, whose levels factor one by one).

    Parameters
    ----------
    terms : sequence of random-effects terms (with ``q``), first term first
    """
    return int(sum(t.q for t in terms[1:]))


#: Time constant of the kernel's one-minute load average, in seconds (its exponential
#: damping), which :func:`own_load` mirrors.
LOAD_TIME_CONSTANT_S = 60.0

#: (wall clock, this process's CPU seconds, damped CPU rate) at the last :func:`own_load`
_own = None


def own_load() -> float:
    """This process's share of the one-minute load average: its CPU rate (cores busy,
    BLAS threads included) between calls, damped as the kernel damps the load average
    (time constant :data:`LOAD_TIME_CONSTANT_S`). 0 on the first call.

    Without it, a process that fits for more than a few seconds sees its own work as
    another job: fitting InstEval back to back on a quiet 2-core machine, two threads
    took 0.43 s a fit until the load average, all of it this process, reached 1.0 after
    ~25 s, and one thread 0.54 s after that."""
    global _own
    now, cpu = time.monotonic(), time.process_time()
    if _own is None:
        _own = (now, cpu, 0.0)
        return 0.0
    t0, c0, rate0 = _own
    dt = now - t0
    if dt <= 0.0:
        return rate0
    decay = math.exp(-dt / LOAD_TIME_CONSTANT_S)
    rate = decay * rate0 + (1.0 - decay) * max(cpu - c0, 0.0) / dt
    _own = (now, cpu, rate)
    return rate


def running_others() -> int:
    """Threads of other processes running or runnable right now: the kernel's
    instantaneous count (``/proc/loadavg``'s fourth field) less this process's own
    running threads (the caller, and BLAS threads still spinning after their last call);
    0 where the platform has neither. Unlike the one-minute load average it sees a job
    that has just started -- and one that runs only for a moment, which costs a fit at
    most its second thread."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            field = fh.read().split()[3]
        total = int(field.split(b"/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat", "rb") as fh:
                # the state follows the command name's closing parenthesis
                own += fh.read().rpartition(b")")[2].split()[0] == b"R"
    except (OSError, IndexError, ValueError):
        return 0
    return max(total - max(own, 1), 0)


def _cores_free(threads: int) -> bool:
    """Whether ``threads`` BLAS threads would each find a core: the load average leaves
    :data:`IDLE_CORES_FOR_THREADS` idle and nothing else is running this instant beyond
    what the other cores absorb."""
    return (idle_cores() >= IDLE_CORES_FOR_THREADS
            and running_others() <= max((os.cpu_count() or 1) - threads, 0))


def idle_cores() -> float:
    """CPUs less the one-minute load average of the other processes (the load average
    less :func:`own_load`; infinite where the load is unknown)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):      # no load average on this platform
        return float("inf")
    return (os.cpu_count() or 1) - max(load - own_load(), 0.0)


class blas_threads:  # noqa: N801 - used as a function: ``with blas_threads(q):``
    """Run the block with one BLAS thread unless ``dense_size`` (columns of the largest
    dense matrix factored) reaches :data:`PARALLEL_MIN_SIZE` and the machine has
    :data:`IDLE_CORES_FOR_THREADS` idle cores.

    A context manager class rather than a generator (``contextlib.contextmanager``): its
    generator, helper object and ``next`` calls cost a small fit more than the thread
    queries themselves (the same reason as :class:`~mixedmodels._messages.collecting`).

    Parameters
    ----------
    dense_size : int
        Columns of the largest dense matrix the block factors.
    """

    __slots__ = ("_changed", "_dense_size", "_outer")

    def __init__(self, dense_size: int = 0):
        self._dense_size = dense_size
        self._changed: list = []
        # the enclosing block's scope while this block watches its dense calls
        self._outer = _NO_SCOPE

    def __enter__(self) -> None:
        global _scope
        ctl = _get_controller()
        if not ctl:
            return
        if self._dense_size >= PARALLEL_MIN_SIZE and _cores_free(2):
            # the default threads, watched call by call (dense_call)
            libs = [(lib, n) for lib in ctl.lib_controllers
                    if (n := lib.get_num_threads()) is not None and n > 1]
            if libs:
                self._outer = _scope
                _scope = _Scope(libs)
            return
        # each library's own get/set (~1 us) rather than threadpoolctl's limiter object
        # (~13 us, twice per small fit); libraries already at one thread are left alone
        changed = self._changed
        for lib in ctl.lib_controllers:
            n = lib.get_num_threads()
            if n is not None and n > 1:
                lib.set_num_threads(1)
                changed.append((lib, n))

    def __exit__(self, *exc) -> bool:
        global _scope
        if self._outer is not _NO_SCOPE:        # this block's watch: threads back, popped
            _scope.restore()
            _scope, self._outer = self._outer, _NO_SCOPE
        changed = self._changed
        while changed:
            lib, n = changed.pop()
            lib.set_num_threads(n)
        return False


class _Scope:
    """The default-thread state of a :class:`blas_threads` block: the libraries' thread
    counts, whether the block has fallen back to one thread, and when to try again."""

    __slots__ = ("calls", "libs", "probe_after", "serial", "threads")

    def __init__(self, libs):
        self.libs = libs
        self.threads = max(n for _, n in libs)
        self.serial = False
        self.calls = 0
        self.probe_after = PROBE_AFTER

    def set_threads(self, serial: bool) -> None:
        for lib, n in self.libs:
            lib.set_num_threads(1 if serial else n)

    def restore(self) -> None:
        if self.serial:
            self.set_threads(False)


class dense_call:  # noqa: N801 - used as a function: ``with dense_call():``
    """Watch one large dense BLAS/LAPACK call in a block that left the default threads.

    The CPU/wall ratio of a call on the default threads tells whether they got their
    cores (:data:`CONTENDED_SHARE`); where not, the rest of the block's BLAS runs on one
    thread, with the default threads tried again after :data:`PROBE_AFTER` dense calls
    (doubling after each contended try). Outside such a block: nothing. Callers use it
    for matrices of at least :data:`PARALLEL_MIN_SIZE` columns only (its clocks cost
    ~1 us).
    """

    __slots__ = ("_c", "_probe", "_s", "_t")

    def __enter__(self) -> None:
        s = self._s = _scope
        if s is None:
            return
        self._probe = False
        if s.serial:
            s.calls += 1
            # (a contended try costs ~30 calls on one thread: only when the cores look
            # free again)
            if s.calls < s.probe_after or not _cores_free(2):
                self._s = None          # one thread: nothing to measure
                return
            self._probe = True
            s.set_threads(False)
        self._t = time.perf_counter()
        self._c = time.process_time()

    def __exit__(self, *exc) -> bool:
        s = self._s
        if s is None:
            return False
        wall = time.perf_counter() - self._t
        cpu = time.process_time() - self._c
        if wall < MEASURE_MIN_S:
            if self._probe:             # too short to tell: stay on one thread
                s.set_threads(True)
            return False
        if cpu < wall * (1.0 + CONTENDED_SHARE * (s.threads - 1)):
            s.probe_after = 2 * s.probe_after if self._probe else PROBE_AFTER
            s.calls = 0
            s.serial = True
            s.set_threads(True)
        elif self._probe:
            s.serial = False            # the cores are back: the default threads stay
        return False
