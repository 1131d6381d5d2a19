"""Pieces of the Laplace optimizer's economy: the expected information of the covariance
parameters (against the dense ``tr(V^-1 dV_i V^-1 dV_j)`` of the working model), the watch
that stops a search in the objective's rounding noise, and the refined modes of a quadratic
inner problem with the dispersion fixed near zero."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.fitting.laplace_noise import (
    STALL_EVALUATIONS,
    NoiseWatch,
    StalledInNoiseError,
)
from mixedmodels.objective.laplace.information import theta_information
from structures_fixtures import dense_Z, fit_fixture, load, load_data

#: theta_information against the dense trace formula (both exact linear algebra).
INFO_RTOL = 1e-8
#: Inner gradient ``u - A' l'`` at refined modes with sigma fixed at ~1.2e-4 (its rounding
#: floor is ~1e-7 there; unrefined it reached ~1e-3).
REFINED_INNER_GTOL = 1e-6


def _dense_information(obj, x):
    """``tr(V^-1 dV_i V^-1 dV_j)`` over the theta positions, ``V = W^-1 + Z L L' Z'`` with
    ``W`` the curvature at the modes (one random-effects channel)."""
    _, jet, _ = obj.solve(x, order=2, full=True)
    w = -jet.d2[:, obj.re[0], obj.re[0]]
    n = obj.n
    Zs, lams, dlams, pos = [], [], [], []
    for ts in obj.structure.terms:
        t = ts.term
        sl = obj.theta_index(ts)
        st = t.structure
        Zs.append(dense_Z(t, n))
        eye = np.eye(t.nlevels)
        lams.append(np.kron(eye, st.lambda_(x[sl])))
        dlams.append([np.kron(eye, d) for d in st.lambda_jacobian(x[sl])])
        pos.extend(range(sl.start, sl.stop))
    Z = np.hstack(Zs)
    from scipy.linalg import block_diag

    Lam = block_diag(*lams)
    V = np.diag(1.0 / w) + Z @ Lam @ Lam.T @ Z.T
    Vinv = np.linalg.inv(V)
    dV = []
    for k, dl in enumerate(dlams):
        for d in dl:
            full = [np.zeros_like(lm) for lm in lams]
            full[k] = d
            D = block_diag(*full)
            dV.append(Z @ (D @ Lam.T + Lam @ D.T) @ Z.T)
    info = np.array([[np.trace(Vinv @ a @ Vinv @ b) for b in dV] for a in dV])
    return np.array(pos), info


def _simulated(seed=3):
    rng = np.random.default_rng(seed)
    g, t = np.repeat(np.arange(12), 4), np.tile(np.arange(4), 12)
    h = rng.integers(0, 5, g.size)
    eta = 0.3 + 0.4 * rng.standard_normal(12)[g] + 0.3 * rng.standard_normal(5)[h]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "g": g, "t": t, "h": h,
                         "x": rng.standard_normal(g.size)})


@pytest.mark.parametrize("formula", [
    "y ~ x + cs(0 + factor(t) | g)",                    # one grouping: block-diagonal H
    "y ~ x + (1 | g) + (1 | h)",                        # crossed: dense H
])
def test_theta_information_is_the_dense_trace(formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(formula, _simulated(), family="poisson")
    obj = m.objective_function
    x = m.x.copy()
    x[obj.layout.slice("theta.cond")] += 0.1            # off the optimum, any x will do
    pos_ref, ref = _dense_information(obj, x)
    obj.solve(x, order=2, full=True)
    pos, info = theta_information(obj, x)
    np.testing.assert_array_equal(pos, pos_ref)
    np.testing.assert_allclose(info, ref, rtol=INFO_RTOL, atol=INFO_RTOL * np.abs(ref).max())


def test_noise_watch_stops_in_the_noise_only():
    def fg(z):
        return float(z[0]), np.ones(1)

    watch = NoiseWatch(fg, rtol=1e-8)
    for f in (10.0, 5.0, 2.0, 1.0, 0.5):                # a converging search: never stops
        watch(np.array([f]))
    watch(np.array([50.0]))                             # an overshoot resets the count
    noisy = [0.5 + 1e-9, 0.5 - 1e-10, 0.5 + 2e-9, 0.5 + 1e-9, 0.5 - 3e-10]
    with pytest.raises(StalledInNoiseError) as stop:
        for f in noisy[:STALL_EVALUATIONS]:
            watch(np.array([f]))
    assert stop.value.f == pytest.approx(0.5 - 3e-10, abs=1e-15)   # the best point
    assert watch.n_evals == 6 + STALL_EVALUATIONS


def test_refined_modes_with_the_dispersion_fixed_near_zero():
    fx = load("ar1_disp0")
    m = fit_fixture(fx, "glmmtmb", load_data(fx))
    obj = m.objective_function
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = m.x + 1e-6 * rng.standard_normal(m.x.size)
        sol, jet, a = obj.solve(x, order=3)
        g_inner = obj._penalty * sol.u - obj.structure.scatter(a, jet.d1[:, obj.re])
        assert np.max(np.abs(g_inner)) < REFINED_INNER_GTOL
    assert m.fit.converged and not m.fit.message
