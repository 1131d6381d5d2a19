"""The BLAS-threads gate (mixedmodels._threads): this process's own share of the load
average is not counted as another job's; a process running this instant closes the gate;
a large dense call whose threads did not get their cores (CPU/wall ratio) sends the rest
of the block to one thread, and the default threads come back once a later try gets
them."""

from __future__ import annotations

import math

import pytest

import mixedmodels._threads as threads_mod


class _Clock:
    """Wall and CPU clocks the test moves by hand."""

    def __init__(self):
        self.wall = 100.0
        self.cpu = 5.0

    def run(self, seconds: float, cores: float) -> None:
        self.wall += seconds
        self.cpu += seconds * cores


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(threads_mod, "_own", None)
    monkeypatch.setattr(threads_mod.time, "monotonic", lambda: c.wall)
    monkeypatch.setattr(threads_mod.time, "process_time", lambda: c.cpu)
    return c


def test_own_load_damps_like_the_load_average(clock):
    assert threads_mod.own_load() == 0.0
    clock.run(60.0, 2.0)                      # one time constant at two busy cores
    expected = 2.0 * (1.0 - math.exp(-1.0))
    assert threads_mod.own_load() == pytest.approx(expected, rel=1e-12)
    clock.run(60.0, 0.0)                      # then idle: the estimate decays by 1/e
    assert threads_mod.own_load() == pytest.approx(expected * math.exp(-1.0), rel=1e-12)


def test_idle_cores_excludes_own_share(clock, monkeypatch):
    monkeypatch.setattr(threads_mod.os, "cpu_count", lambda: 2)
    threads_mod.own_load()
    clock.run(600.0, 1.0)                     # long enough to converge to 1 core
    own = threads_mod.own_load()
    assert own == pytest.approx(1.0, abs=1e-3)
    # the load average is our core plus another job's: one core is left
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert threads_mod.idle_cores() == pytest.approx(1.0, abs=1e-3)
    assert threads_mod.idle_cores() < threads_mod.IDLE_CORES_FOR_THREADS
    # the load is ours alone: both cores are free of other work
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert threads_mod.idle_cores() == pytest.approx(2.0, abs=1e-3)
    # our estimate above the load average never makes more than every core idle
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads_mod.idle_cores() == pytest.approx(2.0)


def test_gate_opens_only_for_large_blocks_on_an_idle_machine(clock, monkeypatch):
    ctl = threads_mod._get_controller()
    if not ctl or not any((lib.get_num_threads() or 1) > 1 for lib in ctl.lib_controllers):
        pytest.skip("BLAS runs one thread here: nothing to limit")
    monkeypatch.setattr(threads_mod.os, "cpu_count", lambda: 2)

    def threads():
        return max(lib.get_num_threads() or 1 for lib in ctl.lib_controllers)

    before = threads()
    monkeypatch.setattr(threads_mod, "running_others", lambda: 0)
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        assert threads() == before
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE - 1):
        assert threads() == 1
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (1.5, 1.5, 1.5))
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        assert threads() == 1
    assert threads() == before


def test_gate_closes_while_another_process_runs(clock, monkeypatch):
    ctl = threads_mod._get_controller()
    if not ctl or not any((lib.get_num_threads() or 1) > 1 for lib in ctl.lib_controllers):
        pytest.skip("BLAS runs one thread here: nothing to limit")
    monkeypatch.setattr(threads_mod.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(threads_mod, "running_others", lambda: 1)   # a job just started
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        assert max(lib.get_num_threads() or 1 for lib in ctl.lib_controllers) == 1


def test_running_others_reads_the_instant_count():
    n = threads_mod.running_others()
    assert isinstance(n, int) and n >= 0


class _Perf:
    """perf_counter and process_time for dense calls: each call lasts ``wall`` seconds
    during which the process gets ``cores`` cores."""

    def __init__(self):
        self.wall, self.cpu = 10.0, 1.0

    def call(self, wall: float, cores: float) -> None:
        self.wall += wall
        self.cpu += wall * cores


@pytest.fixture
def perf(monkeypatch):
    ctl = threads_mod._get_controller()
    if not ctl or not any((lib.get_num_threads() or 1) > 1 for lib in ctl.lib_controllers):
        pytest.skip("BLAS runs one thread here: nothing to watch")
    p = _Perf()
    monkeypatch.setattr(threads_mod.time, "perf_counter", lambda: p.wall)
    monkeypatch.setattr(threads_mod.time, "process_time", lambda: p.cpu)
    monkeypatch.setattr(threads_mod, "_own", None)
    monkeypatch.setattr(threads_mod, "running_others", lambda: 0)
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    p.threads = lambda: max(lib.get_num_threads() or 1 for lib in ctl.lib_controllers)
    return p


def _dense(perf, wall, cores):
    with threads_mod.dense_call():
        perf.call(wall, cores)


def test_contended_call_sends_the_block_to_one_thread(perf, monkeypatch):
    before = perf.threads()
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        _dense(perf, 0.1, before)              # every thread had its core
        assert perf.threads() == before
        _dense(perf, 0.1, 1.05)                # they did not: one thread from here
        assert perf.threads() == 1
        for _ in range(threads_mod.PROBE_AFTER - 1):
            _dense(perf, 0.1, 1.0)
            assert perf.threads() == 1
        # the next call tries the default threads, which get their cores: they stay
        with threads_mod.dense_call():
            assert perf.threads() == before
            perf.call(0.1, before)
        assert perf.threads() == before
    assert perf.threads() == before


def test_contended_try_doubles_the_wait_and_exit_restores(perf, monkeypatch):
    before = perf.threads()
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        _dense(perf, 0.1, 1.0)
        for _ in range(threads_mod.PROBE_AFTER - 1):
            _dense(perf, 0.1, 1.0)
        _dense(perf, 0.1, 1.0)                 # the try: still contended
        assert perf.threads() == 1
        for _ in range(2 * threads_mod.PROBE_AFTER - 1):
            with threads_mod.dense_call():
                assert perf.threads() == 1     # no try before twice the wait
                perf.call(0.1, 1.0)
        # the cores look busy by the load: no try at all
        monkeypatch.setattr(threads_mod, "running_others", lambda: 1)
        with threads_mod.dense_call():
            assert perf.threads() == 1
            perf.call(0.1, 1.0)
    assert perf.threads() == before           # the block's end gives the threads back


def test_short_calls_and_calls_outside_a_block_are_not_judged(perf):
    before = perf.threads()
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        _dense(perf, threads_mod.MEASURE_MIN_S / 2, 1.0)
        assert perf.threads() == before
    _dense(perf, 0.1, 1.0)
    assert perf.threads() == before
