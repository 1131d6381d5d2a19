"""Parity with lme4 and glmmTMB for every GLMM in tests/reference/visible.json and in the
R fixtures tests/fixtures/glmm/glmm_fixtures.json (made by tools/r/glmm_fixtures.R).

visible.json holds lme4's default fits. Its PIRLS tolerance (1e-7) leaves lme4's optimum up to
~1e-3 above the maximum likelihood and its Hessian-based standard errors up to 1.3% off (see
the R script); the fixtures refit the same models tightly. So:

* against visible.json (issue 3's tolerances): objective within 1e-2 (or lower); fixed effects
  within 1e-3 of max(|beta|, SE), standard errors 1e-2 relative, random-effect sds 1e-2
  relative, overdispersion 1e-3 relative -- each widened by exactly the distance between
  lme4's default and tight fits where the tight fixture exists (lme4's own slack);
* against the tight fixtures: objective within 1e-4 (or lower), fixed effects 2e-4 of
  max(|beta|, SE), standard errors 3e-3, sds 1e-3, and the deviance function at fixed
  parameters 1e-7 relative.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.fitting.glmm import glmm_design
from reference_models import as_array, models, parse_python_field, r_name, reference

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "glmm" / "glmm_fixtures.json")
                      .read_text())["fixtures"]

OBJECTIVE_ATOL = 1e-2
BETA_TOL = 1e-3          # in units of max(|beta|, SE)
SE_RTOL = 1e-2
SD_RTOL = 1e-2
OVERDISP_RTOL = 1e-3
FITTED_RTOL = 1e-3
RANEF_TOL = 1e-2         # conditional modes in units of their conditional sd

TIGHT_OBJECTIVE_ATOL = 1e-4
TIGHT_BETA_TOL = 2e-4
TIGHT_SE_RTOL = 3e-3
TIGHT_SD_RTOL = 1e-3
TIGHT_SIGMA_RTOL = 1e-4
TIGHT_FITTED_RTOL = 1e-4
TIGHT_RANEF_TOL = 1e-3
DEVFUN_RTOL = 1e-7

VISIBLE = [*models("glmer"), *models("glmer.nb"), "gammasim_tmb"]
#: visible.json id -> tight fixture id (lme4's slack); grouseticks_poisson has none: its
#: tight refit stops at a worse point than lme4's default (see the R script)
TIGHT_OF = {"cbpp_laplace": "cbpp_laplace", "cbpp_agq25": "cbpp_agq25",
            "contraception": "contraception", "verbagg_crossed": "verbagg_crossed",
            "grouseticks_nb": "grouseticks_nb", "gammasim_tmb": "gammasim_tmb"}
TIGHT = [k for k in FIXTURES if not k.endswith("_devfun")]


def parse_entry(entry: dict):
    """(formula, data, family, nAGQ, keyword arguments) of a visible.json / fixture entry."""
    formula, opts = parse_python_field(entry["python"])
    data = (pd.DataFrame(entry["inline_data"]) if entry["data"] == "inline"
            else mm.datasets.load(entry["data"]))
    fam, link, nb_theta = opts.get("family", "binomial"), None, None
    call = re.match(r"(\w+)\s*\((.*)\)", fam)
    if call:
        fam = call.group(1)
        for arg in call.group(2).split(","):
            key, _, val = arg.partition("=")
            if key.strip() == "link":
                link = val.strip()
            elif key.strip() == "theta":
                nb_theta = float(val)
    if fam == "negative_binomial":
        family = mm.families.NegativeBinomial(nb_theta or 1.0)
    else:
        family = mm.families.make_family(fam, link)
    kwargs = {"weights": opts["weights"]} if "weights" in opts else {}
    return formula, data, family, int(opts.get("nAGQ", 1)), kwargs


def fit_entry(entry: dict):
    """Fit a visible.json / fixture entry from its ``python`` field."""
    formula, data, family, nagq, kwargs = parse_entry(entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        if entry["engine"] == "glmer.nb":
            return mm.glmer_nb(formula, data, nAGQ=nagq, **kwargs)
        return mm.glmer(formula, data, family=family, nAGQ=nagq, **kwargs)


@pytest.fixture(scope="module")
def fitted():
    cache: dict = {}

    def get(source: str, key: str):
        if (source, key) not in cache:
            entry = reference()[key] if source == "visible" else FIXTURES[key]
            cache[(source, key)] = fit_entry(entry)
        return cache[(source, key)]

    return get


def _named(series) -> dict:
    return {r_name(k): v for k, v in series.items()}


def _sds(m) -> np.ndarray:
    return np.concatenate([t.sd for t in m.varcorr.terms])


def _ref_sds(ref) -> np.ndarray:
    if "varcorr" in ref:
        return np.concatenate([as_array(v["sd"]) for v in ref["varcorr"]])
    if "sd" in ref:
        return as_array(ref["sd"])
    return as_array(ref["theta"]) * ref["sigma"]


def _slack(key, name, field):
    """|lme4 default - lme4 tight| for one coefficient, in the test's units."""
    tight = FIXTURES.get(TIGHT_OF.get(key, ""), None)
    if tight is None:
        return 0.0
    ref = reference()[key]
    if field == "beta":
        scale = max(abs(ref["beta"][name]), ref["se"][name])
        return abs(ref["beta"][name] - tight["beta"][name]) / scale
    return abs(ref["se"][name] / tight["se"][name] - 1.0)


@pytest.mark.parametrize("key", VISIBLE)
def test_visible_parity(key, fitted):
    ref = reference()[key]
    m = fitted("visible", key)
    assert m.objective <= ref["objective"] + OBJECTIVE_ATOL
    assert m.objective == pytest.approx(ref["objective"], abs=OBJECTIVE_ATOL)
    beta, se = _named(m.fixef), _named(m.se)
    assert set(beta) == set(ref["beta"])
    for name, val in ref["beta"].items():
        scale = max(abs(val), ref["se"][name])
        assert abs(beta[name] - val) <= (BETA_TOL + _slack(key, name, "beta")) * scale, name
        assert se[name] == pytest.approx(
            ref["se"][name], rel=SE_RTOL + _slack(key, name, "se")), name
    np.testing.assert_allclose(_sds(m), _ref_sds(ref), rtol=SD_RTOL)
    if ref.get("sigma", 1) != 1:
        assert m.sigma == pytest.approx(ref["sigma"], rel=SD_RTOL)
    assert m.nobs == ref["nobs"]
    assert m.df == ref["df"]
    assert m.loglik == pytest.approx(-0.5 * m.objective)
    if not ref.get("rescaled"):
        # (for nAGQ > 1 visible.json keeps lme4's own AIC/BIC, on the other scale)
        assert m.aic == pytest.approx(ref["AIC"], abs=OBJECTIVE_ATOL)
        assert m.bic == pytest.approx(ref["BIC"], abs=OBJECTIVE_ATOL)
    if "ngrps" in ref:
        assert m.ngroups == ref["ngrps"]
    if "singular" in ref:
        assert m.is_singular() == ref["singular"]
    np.testing.assert_allclose(m.fitted().to_numpy()[:10], ref["fitted_head"],
                               rtol=FITTED_RTOL)
    if "fitted_fixed_head" in ref:
        np.testing.assert_allclose(m.predict(re_form="~0").to_numpy()[:10],
                                   ref["fitted_fixed_head"], rtol=FITTED_RTOL, atol=1e-6)


@pytest.mark.parametrize("key", [k for k in VISIBLE if "ranef_head" in reference()[k]])
def test_visible_conditional_modes(key, fitted):
    head = reference()[key]["ranef_head"]
    re = fitted("visible", key).ranef(cond_var=True)[head["group"]]
    for level, value, sd in zip(head["level"], head["value"], head["condsd"], strict=True):
        assert re.loc[level, "Intercept"] == pytest.approx(value, abs=RANEF_TOL * sd)
        assert re.loc[level, "Intercept_condsd"] == pytest.approx(sd, rel=RANEF_TOL)


def _od_slack(key, field):
    tight = FIXTURES.get(TIGHT_OF.get(key, ""), None)
    if tight is None or "overdispersion" not in tight:
        return 0.0
    return abs(reference()[key]["overdispersion"][field] / tight["overdispersion"][field] - 1)


@pytest.mark.parametrize("key", [k for k in VISIBLE if "overdispersion" in reference()[k]])
def test_visible_overdispersion(key, fitted):
    ref = reference()[key]["overdispersion"]
    od = fitted("visible", key).overdispersion()
    for field in ("chisq", "ratio", "p"):
        assert getattr(od, field) == pytest.approx(
            ref[field], rel=OVERDISP_RTOL + _od_slack(key, field), abs=1e-12), field
    assert od.rdf == ref["rdf"]


@pytest.mark.parametrize("key", TIGHT)
def test_tight_fixture_parity(key, fitted):
    ref = FIXTURES[key]
    m = fitted("fixture", key)
    assert m.objective <= ref["objective"] + TIGHT_OBJECTIVE_ATOL
    assert m.objective == pytest.approx(ref["objective"], abs=10 * TIGHT_OBJECTIVE_ATOL)
    beta, se = _named(m.fixef), _named(m.se)
    assert set(beta) == set(ref["beta"])
    for name, val in ref["beta"].items():
        scale = max(abs(val), ref["se"][name])
        assert abs(beta[name] - val) <= TIGHT_BETA_TOL * scale, name
        assert se[name] == pytest.approx(ref["se"][name], rel=TIGHT_SE_RTOL), name
    np.testing.assert_allclose(_sds(m), _ref_sds(ref), rtol=TIGHT_SD_RTOL)
    assert m.sigma == pytest.approx(ref["sigma"], rel=TIGHT_SIGMA_RTOL)
    # lme4 counts a scale parameter for every family but the binomial and Poisson, so a
    # negative binomial with its shape *fixed* gets df = p + n_theta + 1; we count only
    # estimated parameters (glmer.nb's estimated shape does count, and agrees)
    nb_fixed_extra = int(key == "grouseticks_nb_fixed")
    assert m.df + nb_fixed_extra == ref["df"]
    np.testing.assert_allclose(m.fitted().to_numpy()[:10], ref["fitted_head"],
                               rtol=TIGHT_FITTED_RTOL)
    if "nb_theta" in ref:
        assert m.family.theta == pytest.approx(ref["nb_theta"], rel=TIGHT_SD_RTOL)
    if "overdispersion" in ref:
        od = m.overdispersion()
        assert od.rdf - nb_fixed_extra == ref["overdispersion"]["rdf"]
        for field in ("chisq",) if nb_fixed_extra else ("chisq", "ratio", "p"):
            assert getattr(od, field) == pytest.approx(ref["overdispersion"][field],
                                                       rel=OVERDISP_RTOL, abs=1e-12), field
    if "ranef_head" in ref:
        head = ref["ranef_head"]
        re = m.ranef(cond_var=True)[head["group"]]
        for level, value, sd in zip(head["level"], head["value"], head["condsd"],
                                    strict=True):
            assert re.loc[level].iloc[0] == pytest.approx(value, abs=TIGHT_RANEF_TOL * sd)
            assert re.loc[level, "Intercept_condsd"] == pytest.approx(sd, rel=TIGHT_RANEF_TOL)


@pytest.mark.parametrize("key", [k for k in FIXTURES if "devfun" in FIXTURES[k]])
def test_deviance_at_fixed_parameters(key):
    """lme4's deviance function (tight PIRLS) at its optimum and at a shifted point."""
    ref = FIXTURES[key]
    formula, data, family, nagq, kwargs = parse_entry(ref)
    obj = mm.GLMMObjective(glmm_design(formula, data, family, **kwargs), family, nagq)
    for entry in ref["devfun"]:
        x = obj.join(entry["theta"], entry["beta"])
        assert obj(x) == pytest.approx(entry["value"], rel=DEVFUN_RTOL)
