"""Lane bayessweep: blmer / bglmer against blme on models tests/test_bayes_blme.py does not
cover (tests/fixtures/sweep/bayessweep_parity.json from tools/r/sweep/bayessweep_fixtures.R),
and bad prior specifications.

The fixture holds blme's fit at the minimum of blme's own objective (re-minimized from
several starts) and blme's deviance function there. Tolerances:

* the penalized objective at blme's parameters: 1e-9 relative for LMMs (the same closed
  form) and 1e-7 for GLMMs (blme's PIRLS stops ~1e-9 relative above the modes);
* the fitted LMM: objective 1e-6 absolute, beta 1e-5 relative to max(|beta|, SE), SEs,
  theta and sigma 1e-4 relative (the sweep found them equal to ~1e-7);
* the fitted GLMM: objective 1e-6, beta 1e-4 (our default optimizer tolerance: the
  objective is within 1e-8 of blme's there), SEs 1e-3 (finite-difference Hessians).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from blme_cases import fit as _fit
from blme_cases import objective_at as _objective_at
from blme_cases import vec as _vec
from mixedmodels._errors import MixedModelsError
from mixedmodels.bayes import priors as P  # noqa: N812 - blme's prior calls, short
from mixedmodels.bayes.model_priors import PriorWarning

DATA = json.loads((Path(__file__).parent / "fixtures" / "sweep" / "bayessweep_parity.json")
                  .read_text())
CASES = {c["name"]: c for c in DATA["cases"]}

#: objective at blme's parameters, relative: LMM (closed form) ...
DEVFUN_RTOL_LMM = 1e-9
#: ... and GLMM (blme's PIRLS tolerance)
DEVFUN_RTOL_GLMM = 1e-7
#: fitted objective, absolute
OBJECTIVE_ATOL = 1e-6
#: fixed effects relative to max(|beta|, SE): LMM, GLMM
BETA_RTOL = {"blmer": 1e-5, "bglmer": 1e-4}
#: standard errors, relative: LMM, GLMM
SE_RTOL = {"blmer": 1e-4, "bglmer": 1e-3}
#: theta, absolute
THETA_ATOL = 1e-4
#: sigma, relative
SIGMA_RTOL = 1e-4


@pytest.fixture(scope="module")
def fits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: _fit(c) for name, c in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_objective_at_blme_parameters(name):
    c = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PriorWarning)
        pairs = _objective_at(c)
    rtol = DEVFUN_RTOL_GLMM if c["py"]["fun"] == "bglmer" else DEVFUN_RTOL_LMM
    for ours, blme in pairs:
        assert ours == pytest.approx(blme, rel=rtol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_blme(fits, name):
    c, m = CASES[name], fits[name]
    fun = c["py"]["fun"]
    assert m.objective == pytest.approx(c["objective"], abs=OBJECTIVE_ATOL)
    np.testing.assert_allclose(m.theta, _vec(c["theta"]), atol=THETA_ATOL, rtol=0)
    beta, se = _vec(c["beta"]), _vec(c["se"])
    assert np.all(np.abs(m.beta - beta) <= BETA_RTOL[fun] * np.maximum(np.abs(beta), se))
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=SE_RTOL[fun])
    if fun == "blmer":
        assert m.sigma == pytest.approx(c["sigma"], rel=SIGMA_RTOL)


def test_normal_sd_longer_than_fixef_warns_as_blme():
    """blme: "length of sd in normal prior exceeds number of fixed effects", the extra sds
    dropped (the fit above matches blme's); we were silent."""
    c = CASES["sleep_normal_sd_too_long"]
    with pytest.warns(PriorWarning, match=r"normal\(\) prior.*3 sds for 2 fixed effects"):
        _fit(c)


# -- bad prior specifications: the package's own error, naming the prior and the term ------

SLEEP = "Reaction ~ Days + (Days | Subject)"
SLEEP1 = "Reaction ~ Days + (1 | Subject)"
BAD = {
    "gamma negative rate": (SLEEP1, {"cov_prior": P.gamma(shape=2, rate=-1)},
                            r"gamma\(\) prior for the \(Intercept \| Subject\) term: rate"),
    "invgamma negative scale": (SLEEP1, {"cov_prior": P.invgamma(scale=-3)},
                                r"invgamma\(\).*scale must be non-negative"),
    "wishart 3x3 scale on a 2x2 term": (SLEEP, {"cov_prior": P.wishart(scale=np.eye(3))},
                                        r"Days \| Subject\) term: scale must be a 2 x 2"),
    "wishart indefinite scale": (SLEEP, {"cov_prior": P.wishart(scale=np.array([[1.0, 2.0],
                                                                                [2.0, 1.0]]))},
                                 "not positive definite"),
    "invwishart df too small": (SLEEP, {"cov_prior": P.invwishart(df=0.5)}, "df must exceed"),
    "unknown grouping factor": (SLEEP, {"cov_prior": {"Nope": P.wishart()}},
                                r"\['Nope'\] that are not in the model"),
    "not a prior": (SLEEP, {"cov_prior": "wishart"}, "must be a prior"),
    "prior dict entry not a prior": (SLEEP, {"cov_prior": {"Subject": 3}},
                                     r"cov_prior\['Subject'\] must be a prior"),
    "normal cov wrong dimension": (SLEEP, {"fixef_prior": P.normal(cov=np.eye(3))},
                                   "cov must be 2 x 2"),
    "t mean wrong length": (SLEEP, {"fixef_prior": P.t(mean=[1, 2, 3])},
                            "mean has 3 values for 2 fixed effects"),
    "point negative": (SLEEP, {"resid_prior": P.point(-1)}, "value must be positive"),
    "gamma as fixef prior": (SLEEP, {"fixef_prior": P.gamma()},
                             "cannot be a fixed-effect prior"),
}


@pytest.mark.parametrize("label", sorted(BAD))
def test_bad_prior_raises_package_error(label):
    formula, kw, match = BAD[label]
    with pytest.raises(MixedModelsError, match=match):
        mm.blmer(formula, mm.datasets.load("sleepstudy"), **kw)


def test_bad_prior_error_types_stay_compatible():
    """The prior errors are still ValueError / TypeError (what they were before)."""
    sleep = mm.datasets.load("sleepstudy")
    with pytest.raises(ValueError):
        mm.blmer(SLEEP, sleep, cov_prior=P.wishart(scale=np.eye(3)))
    with pytest.raises(TypeError):
        mm.blmer(SLEEP, sleep, cov_prior="wishart")
    assert issubclass(P.PriorError, MixedModelsError)
