"""Parity with lme4 for every lmer model in tests/reference/visible.json.

Tolerances (issue 2): deviance function at fixed theta 1e-8 relative; objective within 1e-3
(or lower); fixed effects, standard errors, sigma and fitted values 1e-4 relative;
conditional modes and sds 1e-3 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from reference_models import as_array, models, parse_python_field, r_name, reference

DEVFUN_RTOL = 1e-8
OBJECTIVE_ATOL = 1e-3
BETA_RTOL = 1e-4
SE_RTOL = 1e-4
SIGMA_RTOL = 1e-4
FITTED_RTOL = 1e-4
RANEF_RTOL = 1e-3
# conditional modes that are ~0 in absolute terms are compared on the scale of their sd
RANEF_ATOL_FRAC = 1e-3

# InstEval (73k rows, crossed) fits in about a second: it stays in the default tier.
ALL = models("lmer")


def _design(key):
    ref = reference()[key]
    formula, opts = parse_python_field(ref["python"])
    data = mm.datasets.load(ref["data"])
    reml = opts.get("REML", "True") != "False"
    return ref, formula, data, reml


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(key):
        if key not in cache:
            _ref, formula, data, reml = _design(key)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", mm.SingularFitWarning)
                cache[key] = mm.lmer(formula, data, REML=reml)
        return cache[key]

    return get


@pytest.mark.parametrize("key", [k for k in models("lmer")])
def test_devfun_at_fixed_theta(key):
    ref, formula, data, reml = _design(key)
    obj = mm.LMMObjective(mm.materialize(mm.parse_formula(formula), data), reml=reml)
    for entry in ref["devfun"]:
        value = obj(as_array(entry["theta"]))
        assert value == pytest.approx(entry["value"], rel=DEVFUN_RTOL)


# Where our optimizer finds a lower objective than lme4 by more than this, lme4 stopped short
# on a flat ridge (orthodont: 5.6e-6 lower); estimates are then compared at lme4's theta
# at the full tolerance and at our optimum at the looser FLAT_RTOL.
BETTER_OPTIMUM = 1e-6
FLAT_RTOL = 1e-3


def _compare_estimates(m, ref, rtol):
    beta = {r_name(k): v for k, v in m.fixef.items()}
    se = {r_name(k): v for k, v in m.se.items()}
    assert set(beta) == set(ref["beta"])
    for name, val in ref["beta"].items():
        assert beta[name] == pytest.approx(val, rel=rtol, abs=1e-10), name
        assert se[name] == pytest.approx(ref["se"][name], rel=rtol), name
    assert m.sigma == pytest.approx(ref["sigma"], rel=rtol)
    np.testing.assert_allclose(m.fitted().to_numpy()[:10], ref["fitted_head"], rtol=rtol)
    np.testing.assert_allclose(m.predict(re_form="~0").to_numpy()[:10],
                               ref["fitted_fixed_head"], rtol=rtol)


@pytest.mark.parametrize("key", ALL)
def test_optimized_fit(key, fits):
    ref = reference()[key]
    m = fits(key)
    assert m.objective <= ref["objective"] + OBJECTIVE_ATOL
    assert m.objective == pytest.approx(ref["objective"], abs=5e-2)
    if m.objective < ref["objective"] - BETTER_OPTIMUM:
        _compare_estimates(m, ref, FLAT_RTOL)
        at_ref = mm.fit_lmm(m.design, REML=m.reml, fixed_theta=as_array(ref["theta"]))
        assert at_ref.objective == pytest.approx(ref["objective"], rel=DEVFUN_RTOL)
        _compare_estimates(at_ref, ref, BETA_RTOL)
    else:
        _compare_estimates(m, ref, BETA_RTOL)
    assert m.nobs == ref["nobs"]
    assert m.ngroups == ref["ngrps"]
    assert m.is_singular() == ref["singular"]
    assert m.loglik == pytest.approx(ref["logLik"], abs=OBJECTIVE_ATOL)
    assert m.aic == pytest.approx(ref["AIC"], abs=OBJECTIVE_ATOL)
    assert m.bic == pytest.approx(ref["BIC"], abs=OBJECTIVE_ATOL)
    assert m.df == ref["df"]


@pytest.mark.parametrize("key", ALL)
def test_ranef_and_condsd(key, fits):
    ref = reference()[key]
    m = fits(key)
    if m.objective < ref["objective"] - BETTER_OPTIMUM:
        m = mm.fit_lmm(m.design, REML=m.reml, fixed_theta=as_array(ref["theta"]))
    head = ref["ranef_head"]
    re = m.ranef(cond_var=True)[head["group"]]
    for term, level, value, sd in zip(head["term"], head["level"], head["value"],
                                      head["condsd"], strict=True):
        col = "Intercept" if term == "(Intercept)" else term
        scale = max(abs(value), RANEF_ATOL_FRAC * sd)
        assert re.loc[level, col] == pytest.approx(value, abs=RANEF_RTOL * scale), (term, level)
        assert re.loc[level, f"{col}_condsd"] == pytest.approx(sd, rel=RANEF_RTOL)


@pytest.mark.parametrize("key", ALL)
def test_varcorr(key, fits):
    ref = reference()[key]
    m = fits(key)
    if m.objective < ref["objective"] - BETTER_OPTIMUM:
        m = mm.fit_lmm(m.design, REML=m.reml, fixed_theta=as_array(ref["theta"]))
    vc = m.varcorr
    assert [t.group for t in vc.terms] == [v["group"] for v in ref["varcorr"]]
    for t, v in zip(vc.terms, ref["varcorr"], strict=True):
        sd_ref = as_array(v["sd"])
        np.testing.assert_allclose(t.sd, sd_ref, rtol=1e-3, atol=1e-6 * max(1.0, m.sigma))
        np.testing.assert_allclose(t.corr, np.asarray(v["corr"], dtype=float), atol=2e-3)
