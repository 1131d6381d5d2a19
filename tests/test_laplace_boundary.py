"""The glmmtmb optimizer's handling of a log standard deviation heading for zero (a jump
ahead along it, refused where the optimum is a small positive sd), on functions whose
optimum is known, and on the hetar1 Poisson fixture against the fit without jumps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels.fitting.laplace_fit as laplace_fit
from mixedmodels.fitting.laplace_boundary import (
    CRAWL_ITERATIONS,
    CrawlWatch,
    jump_ahead,
)
from mixedmodels.fitting.laplace_fit import bfgs_with_jumps
from structures_fixtures import fit_fixture, load, load_data

#: BFGS options as the optimizer's.
OPTS = {"gtol": 1e-5, "maxiter": 500}


def _boundary(z):
    """``F = e^{z_0} + (z_1 - 1)^2 + 0.3 z_1 e^{z_0}``: at ``s = e^{z_0} = 0`` on the
    boundary (``dF/ds = 1 + 0.3 z_1 > 0`` near ``z_1 = 1``); infimum 0 at ``z_1 = 1``."""
    s = np.exp(z[0])
    f = s + (z[1] - 1.0) ** 2 + 0.3 * z[1] * s
    return f, np.array([s * (1.0 + 0.3 * z[1]), 2.0 * (z[1] - 1.0) + 0.3 * s])


def _interior(z):
    """``F = (s - s*)^2`` in ``s = e^{z_0}`` with ``s* = e^{-6}``: a small positive
    optimum that a jump to ``s ~ 0`` would step over."""
    s, target = np.exp(z[0]), np.exp(-6.0)
    return (s - target) ** 2, np.array([2.0 * (s - target) * s])


class _Result:
    def __init__(self, x):
        self.x = np.asarray(x, dtype=float)


def test_the_watch_stops_a_steady_fall_only():
    watch = CrawlWatch(np.array([0, 1]))
    path = [[-1.0 - 0.5 * k, 0.3 * (-1) ** k] for k in range(CRAWL_ITERATIONS)]
    for x in path:
        watch(_Result(x))
    with pytest.raises(StopIteration):
        watch(_Result([-1.0 - 0.5 * CRAWL_ITERATIONS, 0.0]))
    assert watch.crawling.tolist() == [0]
    refused = CrawlWatch(np.array([0, 1]), skip={0})
    for x in [*path, [-3.0, 0.0], [-3.5, 0.0]]:
        refused(_Result(x))                   # not watched again after a refused jump


def test_jump_lands_where_the_gradient_is_negligible():
    z = np.array([-3.0, 0.8])
    f0, g0 = _boundary(z)
    z1, f1, g1 = jump_ahead(_boundary, z, f0, g0, np.array([0]))
    assert f1 < f0 and 0 < g1[0] < 1e-8
    assert z1[1] == z[1] and z1[0] < z[0] - 15


def test_jump_is_refused_over_a_small_positive_optimum():
    z = np.array([-4.0])            # s = e^-4 above s* = e^-6: F falls as s does
    f0, g0 = _interior(z)
    assert jump_ahead(_interior, z, f0, g0, np.array([0])) is None


def test_bfgs_with_jumps_reaches_the_boundary_in_fewer_evaluations():
    z0 = np.array([0.0, 0.0])
    plain = bfgs_with_jumps(_boundary, z0, OPTS, np.array([], dtype=int))
    jumped = bfgs_with_jumps(_boundary, z0, OPTS, np.array([0]))
    assert _boundary(jumped.x)[0] <= _boundary(plain.x)[0] + 1e-9
    assert _boundary(jumped.x)[0] < 1e-8
    assert jumped.nfev < plain.nfev


def test_hetar1_fixture_jump_saves_gradients_at_the_same_optimum(monkeypatch):
    fx = load("hetar1_pois")
    data = load_data(fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = fit_fixture(fx, "glmmtmb", data)
        monkeypatch.setattr(laplace_fit, "MAX_JUMPS", 0)
        slow = fit_fixture(fx, "glmmtmb", data)
    assert fast.objective <= slow.objective + 1e-8
    assert fast.objective <= fx["objective"]
    assert fast.objective_function.n_grads < slow.objective_function.n_grads - 10
    np.testing.assert_allclose(np.asarray(fast.se, float), np.asarray(slow.se, float),
                               rtol=1e-4)
