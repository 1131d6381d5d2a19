"""The BLAS-threads gate (mixedmodels._threads): this process's own share of the load
average is not counted as another job's."""

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
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        assert threads() == before
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE - 1):
        assert threads() == 1
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (1.5, 1.5, 1.5))
    with threads_mod.blas_threads(threads_mod.PARALLEL_MIN_SIZE):
        assert threads() == 1
    assert threads() == before
