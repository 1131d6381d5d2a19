"""Prediction at positions (and known-matrix levels) the fit did not see.

A spatial or temporal term (``exp``, ``gau``, ``mat``, ``ou``) has one effect per fitted
position. A new position is refused unless ``allow_new_levels=True`` (as a new level of a
grouping factor is); with it, the effect is kriged from the fitted ones. The reference is
glmmTMB's own ``predict(allow.new.levels = TRUE, se.fit = TRUE)`` on new rows
(tests/fixtures/kriging.json, made by tools/r/kriging_fixtures.R with glmmTMB
1.1.5), which refits the joint density with the new positions added and the parameters
fixed. The glmmtmb door's standard errors are TMB's delta method, glmmTMB's; lmer's and
glmer's are lme4's recipe (conditional on the covariance parameters) and are checked only
at a fitted position, where the kriging row is the fitted indicator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from structures_fixtures import fit_fixture, load

KRIGING = json.loads((Path(__file__).parent / "fixtures" / "kriging.json").read_text())
#: Kriged link-scale predictions vs glmmTMB's (absolute: both optima agree to ~1e-6).
FIT_ATOL = 2e-5
#: Standard errors of the glmmtmb door vs glmmTMB's (relative).
SE_RTOL = 2e-4
#: A fitted position's prediction in new data vs the fitting row's (absolute).
SAME_ATOL = 1e-10


def _newdata(fid: str) -> pd.DataFrame:
    nd = pd.DataFrame(KRIGING[fid]["newdata"])
    nd["obs"] = "new"         # our FAQ spelling groups by observation: one group
    return nd


def _cases():
    for fid in KRIGING:
        for door in load(fid)["doors"]:
            yield fid, door


@pytest.mark.parametrize(("fid", "door"), list(_cases()))
def test_kriged_predictions_match_glmmtmb(fid, door):
    ref = KRIGING[fid]
    m = fit_fixture(load(fid), door)
    p = m.predict(_newdata(fid), allow_new_levels=True, se_fit=True)
    np.testing.assert_allclose(p["fit"].to_numpy(), ref["fit"], atol=FIT_ATOL)
    se = p["se_fit"].to_numpy()
    if door == "glmmtmb":
        np.testing.assert_allclose(se, ref["se"], rtol=SE_RTOL)
    else:
        # the last row sits at a fitted position (lme4's recipe there, not glmmTMB's)
        assert np.all(se[:-1] > 0) and np.all(np.isfinite(se))


@pytest.mark.parametrize("fid", list(KRIGING))
def test_new_positions_need_allow_new_levels(fid):
    m = fit_fixture(load(fid), "glmmtmb")
    nd = _newdata(fid)
    with pytest.raises(mm.DataError, match=r"did not see.*allow_new_levels=True to predict "
                                           "them by kriging"):
        m.predict(nd)
    # only the fitted position: no error, and the fitting row's prediction
    fitted = m.predict(nd.iloc[[-1]]).to_numpy()
    np.testing.assert_allclose(fitted, KRIGING[fid]["fit"][-1], atol=FIT_ATOL)


def test_kriging_weights_of_ou_are_markov():
    """An independent check of the weights: the OU process is Markov, so the conditional
    mean between two fitted times uses those two only, with the closed-form weights of a
    bivariate normal regression."""
    from mixedmodels.covariance.spatial import OrnsteinUhlenbeck

    times = np.array([0.0, 1.0, 2.5, 4.0, 7.0])
    s = OrnsteinUhlenbeck(times.size, times)
    rate = 0.6
    theta = np.array([0.3, np.log(rate)])
    W = s.kriging_weights(theta, np.array([[1.7], [times[3]], [9.0]]))
    r1, r2 = np.exp(-rate * 0.7), np.exp(-rate * 0.8)
    r12 = np.exp(-rate * 1.5)
    expect = np.zeros(times.size)
    expect[1] = (r1 - r2 * r12) / (1 - r12 ** 2)
    expect[2] = (r2 - r1 * r12) / (1 - r12 ** 2)
    np.testing.assert_allclose(W[0], expect, atol=1e-12)
    np.testing.assert_allclose(W[1], np.eye(times.size)[3], atol=1e-12)
    np.testing.assert_allclose(W[2], np.exp(-rate * 2.0) * np.eye(times.size)[4],
                               atol=1e-12)
    var = s.kriging_variance(theta, np.array([[9.0]]))
    np.testing.assert_allclose(var, np.exp(0.6) * (1 - np.exp(-2 * rate * 2.0)), rtol=1e-12)


@pytest.mark.parametrize("door", ["glmmtmb", "glmer"])
def test_new_level_of_a_known_matrix(door):
    """A species outside the known matrix has no covariance with the fitted ones: refused
    without allow_new_levels, the population level with it."""
    fx = load("propto_pois")
    m = fit_fixture(fx, door)
    nd = pd.DataFrame({"sp": ["sp03", "a new species"], "x": [0.4, -0.2], "dummy": "a"})
    with pytest.raises(mm.DataError, match=r"'sp'.*did not see: a new species"):
        m.predict(nd)
    p = m.predict(nd, allow_new_levels=True).to_numpy()
    population = m.predict(nd, re_form="~0").to_numpy()
    assert abs(p[1] - population[1]) < SAME_ATOL
    assert abs(p[0] - population[0]) > 1e-3        # a fitted species keeps its effect
