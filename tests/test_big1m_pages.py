"""regular_pages: numpy's huge-page request off during large fits, restored after."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels import _pages

_set = _pages._switch()
pytestmark = pytest.mark.skipif(_set is None, reason="this numpy has no huge-page switch")


def _current() -> bool:
    """numpy's setting, read by setting it and putting it back."""
    value = _set(True)
    _set(value)
    return bool(value)


@pytest.mark.parametrize("initial", [True, False])
def test_large_fit_turns_the_request_off_and_restores_it(initial):
    before = _set(initial)
    try:
        with _pages.regular_pages(_pages.REGULAR_PAGES_MIN_ROWS):
            assert _current() is False
            a = np.ones(1 << 20)                   # 8 MB: an array numpy would madvise
            assert a.sum() == a.size
        assert _current() is initial
        with pytest.raises(RuntimeError), _pages.regular_pages(10**7):
            raise RuntimeError("a failing fit")
        assert _current() is initial
    finally:
        _set(before)


def test_small_fit_changes_nothing():
    before = _set(True)
    try:
        with _pages.regular_pages(_pages.REGULAR_PAGES_MIN_ROWS - 1):
            assert _current() is True
        assert _current() is True
    finally:
        _set(before)


def test_nested_fits_restore_the_outer_setting():
    before = _set(True)
    try:
        with _pages.regular_pages(10**6):
            with _pages.regular_pages(10**6):
                assert _current() is False
            assert _current() is False
        assert _current() is True
    finally:
        _set(before)


def test_overlapping_fits_in_two_threads_restore_only_at_the_last_exit():
    """Fits in two threads whose spans overlap without nesting (A enters, B enters, A
    leaves, B leaves): huge pages stay off until B leaves, then numpy's setting is back."""
    import threading

    before = _set(True)
    a_in, a_out, b_in = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def fit_a():
        with _pages.regular_pages(10**6):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def fit_b():
        a_in.wait(5)
        with _pages.regular_pages(10**6):
            b_in.set()
            a_out.wait(5)
            seen["after A left"] = _current()
        seen["after B left"] = _current()

    try:
        threads = [threading.Thread(target=fit_a), threading.Thread(target=fit_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == {"after A left": False, "after B left": True}
    finally:
        _set(before)


def test_large_lmer_result_is_unchanged_by_the_page_policy(monkeypatch):
    """The same fit with and without the switch: identical numbers (pages change no
    arithmetic)."""
    import pandas as pd

    import mixedmodels as mm

    rng = np.random.default_rng(7)
    n = 120_000
    g1, g2 = rng.integers(0, 400, n), rng.integers(0, 60, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + 0.6 * rng.normal(size=400)[g1] + 0.3 * rng.normal(size=60)[g2] \
        + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g1": pd.Categorical(g1), "g2": pd.Categorical(g2)})
    a = mm.lmer("y ~ x + (1 | g1) + (1 | g2)", df)
    monkeypatch.setattr(_pages, "REGULAR_PAGES_MIN_ROWS", 10**9)
    b = mm.lmer("y ~ x + (1 | g1) + (1 | g2)", df)
    assert a.objective == b.objective
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.beta, b.beta)
