"""hetdoor: the cheaper check of glmer's route for structured terms. glmer's exact
Laplace gradient factors a one-block ``M`` (a spatial process over all sites, a known
matrix over all levels) by one matrix product instead of per-observation ``P x P``
products, and the route's check at the engine's optimum skips PIRLS's sensitivity of the
modes. Both must leave glmer's numbers as they were (to rounding)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
import mixedmodels.objective.glmm_gradient as gg
import structures_fixtures as sf

#: The one-block product against the per-observation products: the same sums in
#: another order (relative, on deviance and gradient).
ROUNDING_RTOL = 1e-10


def _fit(fid: str):
    fx = sf.load(fid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(fx["formula"], sf.load_data(fx), family=fx["family"],
                        covariance_matrices=sf.known_matrices())


@pytest.mark.parametrize("fid", ["gau_pois", "exp_pois_faq", "propto_pois"])
def test_one_block_gradient_matches_slot_products(fid, monkeypatch):
    m = _fit(fid)
    obj = m.objective_function
    # away from the optimum, where the gradient is not rounding noise around zero
    x = np.asarray(m.opt.x, dtype=float) * 1.05 + 0.01
    fast = gg.LaplaceGradient(obj)
    assert gg._one_block(fast._M, fast.structure)
    f1, g1 = fast(x)
    with monkeypatch.context() as mp:
        mp.setattr(gg, "_one_block", lambda *a: False)
        f0, g0 = gg.LaplaceGradient(obj)(x)
    assert abs(f1 - f0) <= ROUNDING_RTOL * abs(f0)
    assert np.max(np.abs(g0)) > 1e-2
    np.testing.assert_allclose(g1, g0, rtol=ROUNDING_RTOL,
                               atol=ROUNDING_RTOL * float(np.max(np.abs(g0))))


def test_routed_fit_leaves_the_modes_without_a_prediction():
    m = _fit("hetar1_pois")
    assert m.opt.optimizer.startswith("glmmtmb engine")
    pirls = m.objective_function.pirls
    assert pirls.predict            # switched off for the check only
    assert pirls._ref is None       # as the two stages leave it
    np.testing.assert_allclose(pirls.u_start, m.solution.u, rtol=0, atol=0)


def test_predict_from_sets_the_reference_of_the_checked_solve():
    from mixedmodels.fitting.glmm_structured import _checked_value, _predict_from

    m = _fit("ar1_pois")
    obj = m.objective_function
    grad = gg.LaplaceGradient(obj)
    x = np.asarray(m.opt.x, dtype=float)
    f, g = _checked_value(obj, grad, x)
    assert np.isfinite(f) and np.all(np.isfinite(g))
    assert obj.pirls._ref is None
    _predict_from(obj, grad)
    theta, _beta, u, J = obj.pirls._ref
    np.testing.assert_array_equal(theta, obj.split(x)[0])
    np.testing.assert_array_equal(u, grad.last_solve[3].u)
    assert J.shape == (u.size, x.size)
