"""The range check of distance-based terms (fitting/range_start.py) in both front doors,
against glmmTMB 1.1.5 (tools/r/sweep/spatial_gauss_fixtures.R on the sweep's gau_pois
data, tests/fixtures/sweep/gau_pois_short.csv).

* glmer's start ran the gau range to 0 -- an independent effect per site, 179.096 --
  where glmmTMB reaches 178.912 at a range of 0.21 (the check was glmmtmb's only).
* glmmtmb's mat ran range and smoothness to 0 the same way (179.096 against 178.912): a
  collapsed range now tries lengths around the nearest-neighbour distances.
* On coordinates rescaled to hundreds glmmTMB itself stops at the collapsed optimum; both
  our doors reach the one of the original coordinates (lower: the same model).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
OBJECTIVE_ATOL = 1e-4
THETA_ATOL = 1e-3
#: the collapsed optimum (an independent effect per site), glmmTMB's on the rescaled data
COLLAPSED = 179.0965


def _fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sites():
    d = pd.read_csv(FIXTURES / "gau_pois_short.csv")
    d["g"] = "a"
    d["east"] = 100 * d["cx"] + 5000
    d["north"] = 100 * d["cy"]
    return d


def _glmer(formula, d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(formula, d, family="poisson")


def test_glmer_gau_reaches_glmmtmbs_optimum(sites):
    fx = _fixture("gau_pois_cx")
    m = _glmer(fx["formula"], sites)
    assert -2 * m.loglik == pytest.approx(fx["objective"], abs=OBJECTIVE_ATOL)
    # glmer's theta of a scaled-correlation term: log sd, log range (glmmTMB's)
    assert m.theta == pytest.approx(np.asarray(fx["theta"]), abs=THETA_ATOL)
    se_ref = np.asarray(list(fx["se"].values()))
    assert m.se.to_numpy() == pytest.approx(se_ref, rel=1e-2)   # glmer's finite differences


def test_glmer_and_glmmtmb_agree_on_rescaled_coordinates(sites):
    """Coordinates in hundreds: the same optimum as the original ones in both doors;
    glmmTMB (range started at 1) stops at the collapsed one there."""
    ref = _fixture("gau_pois_cx")["objective"]
    tmb_scaled = _fixture("gau_pois_east")["objective"]
    assert tmb_scaled == pytest.approx(COLLAPSED, abs=1e-3)
    formula = "y_pois ~ x + gau(0 + pos(east, north) | g)"
    assert -2 * _glmer(formula, sites).loglik == pytest.approx(ref, abs=OBJECTIVE_ATOL)
    m = mm.glmmtmb(formula, sites, family="poisson")
    assert m.objective == pytest.approx(ref, abs=OBJECTIVE_ATOL)


@pytest.mark.parametrize("coords", ["cx, cy",
                                    pytest.param("east, north", marks=pytest.mark.slow)])
def test_glmmtmb_matern_leaves_the_collapsed_optimum(sites, coords):
    fx = _fixture("mat_pois_cx")
    m = mm.glmmtmb(f"y_pois ~ x + mat(0 + pos({coords}) | g)", sites, family="poisson")
    assert m.objective == pytest.approx(fx["objective"], abs=OBJECTIVE_ATOL)
    assert m.objective < COLLAPSED - 0.1


def test_collapsed_rule():
    """A correlation that is the identity (a range far below the distances, or a Matern
    smoothness run to 0 at a huge range) is collapsed; the trial points then keep the
    fit's standard deviation and restart the other correlation parameters."""
    from mixedmodels.covariance.spatial import Matern
    from mixedmodels.fitting.range_start import collapsed, trial_points

    rng = np.random.default_rng(5)
    s = Matern(30, rng.uniform(0, 10, size=(30, 2)))
    x = np.array([-0.9, np.log(1e-4), -9.0])
    assert collapsed(s, x[1:])
    pts = list(trial_points(s, x, np.array([0.0, 1.0, 0.0])))
    assert len(pts) >= len(s.range_lengths())
    assert all(sd == -0.9 and cor[1] == 0.0 for sd, cor in pts)
    assert not collapsed(s, np.array([np.log(3.0), 0.0]))
    assert collapsed(s, np.array([28.5, -29.3]))


def test_gaussian_start_is_positive_definite():
    """A Gaussian correlation over many positions at the median distance is numerically
    singular (the sweep's gau(0 + pos(cx, cy) | g) on its 288 sites: the fit failed at its
    start with numpy's 'Matrix is not positive definite'); the start range is halved
    until the matrix factors."""
    from mixedmodels.covariance.spatial import Gaussian

    rng = np.random.default_rng(11)
    s = Gaussian(288, rng.uniform(0, 10, size=(288, 2)))
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(s.correlation(s.cor_at_range(s.scale)))
    start = s.start(1.0)
    np.linalg.cholesky(s.correlation(start[1:]))
    assert s.range_of(start[1:]) < s.scale
    # where the median distance works it stays the start (no change for other fits)
    small = Gaussian(20, rng.uniform(0, 10, size=(20, 2)))
    assert small.range_of(small.start(1.0)[1:]) == pytest.approx(small.scale)
