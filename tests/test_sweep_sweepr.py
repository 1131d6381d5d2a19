"""Regressions for what the "sweepr" batch of the R-side parity sweep
(tools/r/sweep/sweepr_nlme.R, sweepr.py) found, against nlme 3.1.162 fixtures made by
tools/r/sweep/sweepr_fixtures.R (tests/fixtures/sweep/sweepr_nlme.json, sweepr_sr.csv)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
CASES = json.loads((FIXTURES / "sweepr_nlme.json").read_text(encoding="utf-8"))
#: our log-likelihood may not be below nlme's by more than this
LOGLIK_SLACK = 1e-4
#: optima closer than this are the same: the estimates are compared there
SAME_OPTIMUM = 1e-3
#: fixed effects relative to max(|estimate|, SE); SEs, sigma and structure parameters
#: relative (nlme's own stopping rules leave ~1e-5)
COEF_RTOL = 1e-4
SE_RTOL = 1e-3
PAR_RTOL = 1e-3
#: absolute slack of a structure parameter at its boundary 0 (a nugget of 6e-8 in nlme,
#: 1.5e-5 here: the criterion is flat in it there)
PAR_ATOL = 1e-4
#: sigma's chi-square interval is closed form: only rounding differs
CHISQ_RTOL = 1e-8


def _data(name: str, sort_by=None) -> pd.DataFrame:
    if name in ("sr", "sr_by_group"):
        d = pd.read_csv(FIXTURES / "sweepr_sr.csv", encoding="utf-8")
        for col in ("g", "h", "f"):
            d[col] = pd.Categorical(d[col], categories=sorted(d[col].unique()))
        if sort_by:        # R's order(): stable
            d = d.sort_values(list(np.atleast_1d(sort_by)), kind="stable")
            d = d.reset_index(drop=True)
        return d
    if name == "sleep":
        return mm.datasets.load("sleepstudy")
    d = mm.datasets.load("Orthodont")
    d["occ"] = (d["age"] - 8) // 2
    return d


def _fit(case: str):
    fx = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = eval(fx["py_call"], {"mm": mm, "d": _data(fx["data"], fx.get("sort_by"))})
    return fx, m


def _check_fit(fx: dict, m, cor=None) -> None:
    """Our logLik at least nlme's; at the same optimum the estimates agree (``cor``: our
    correlation parameters mapped to nlme's, in nlme's order)."""
    assert m.loglik >= fx["logLik"] - LOGLIK_SLACK, (m.loglik, fx["logLik"])
    if abs(m.loglik - fx["logLik"]) >= SAME_OPTIMUM:
        return
    ref_coef, ref_se = np.atleast_1d(fx["coef"]), np.atleast_1d(fx["se"])
    scale = np.maximum(np.abs(ref_coef), ref_se)
    np.testing.assert_array_less(np.abs(m.fixef.to_numpy() - ref_coef), COEF_RTOL * scale)
    np.testing.assert_allclose(m.se.to_numpy(), ref_se, rtol=SE_RTOL)
    assert m.sigma == pytest.approx(fx["sigma"], rel=SE_RTOL)
    if "cor_params" in fx:
        ours = list(m.cor_params.values()) if cor is None else cor(m)
        np.testing.assert_allclose(ours, list(fx["cor_params"].values()), rtol=PAR_RTOL,
                                   atol=PAR_ATOL)
    if "var_params" in fx:
        for name, ref in fx["var_params"].items():
            assert m.var_params[name] == pytest.approx(ref, rel=PAR_RTOL), name


@pytest.mark.parametrize("case", ["gls_ratio_max_nug", "gls_gaus_manh", "lme_ratio_max_nug"])
def test_non_euclidean_spatial_correlation_reaches_nlme(case):
    """A Gaussian / rational-quadratic correlation of Manhattan or maximum distances is not
    positive definite at every range: BOBYQA met an infinite criterion and stopped at a
    point that is no minimum (gls_ratio_max_nug: logLik -402.17 against nlme's -383.89;
    gls_gaus_manh -412.70 against -412.02; lme_ratio_max_nug -383.0911 against
    -383.0893). Quasi-Newton continues from there."""
    fx, m = _fit(case)
    _check_fit(fx, m)


@pytest.mark.parametrize("case", ["gls_ident_fixed_partial", "lme_ident_fixed_partial"])
def test_var_ident_fixed_for_some_strata_estimates_the_others(case):
    """nlme's varIdent(fixed = c(b = 1.6)) holds b and estimates the other strata; ours
    held every unnamed stratum at the reference's ratio 1 (lme: logLik 6.9 below)."""
    fx, m = _fit(case)
    _check_fit(fx, m)
    assert set(m.var_params) == set(fx["var_params"])
    names = m.residual.names()
    assert len(names) == 1 and names[0].startswith("var:")


def test_var_ident_fixed_for_every_stratum_still_holds_all():
    d = _data("sr")
    m = mm.gls("y ~ x", d, variance=mm.var_ident(value={"b": 1.6, "c": 0.7},
                                                 form="~ 1 | f", fixed=True))
    assert m.residual.n_par == 0
    assert m.var_params == pytest.approx({"a": 1.0, "b": 1.6, "c": 0.7})


def test_variance_covariate_side_is_one_expression():
    """nlme evaluates varPower(form = ~ Days + 1)'s covariate as Days + 1; ours dropped
    the '+ 1' and refused the zeros of Days."""
    fx, m = _fit("sleep_power_days_plus_1")
    _check_fit(fx, m)


def test_serial_time_side_is_one_expression_and_leaves_phi_zero():
    """corAR1(form = ~ t + t | g): the times are 2 t (nlme's reading; ours refused two
    covariates). On times 2 t the criterion depends on phi^2, so phi = 0 -- the start --
    is stationary, and the fit must still leave it: the model is the one on times t
    with phi^2 = nlme's phi there."""
    fx, m = _fit("gls_ar1_t_plus_t")
    _check_fit(fx, m, cor=lambda m: [m.cor_params["phi"] ** 2])


@pytest.mark.parametrize("case", ["orth_gls_ar1_age", "lme_ar1_even_times"])
def test_ar1_on_times_with_even_gaps_leaves_the_stationary_start(case):
    """Orthodont's ages 8, 10, 12, 14 (and the sweep data's times doubled): nlme and our
    quasi-Newton searches stopped at phi = 0 after one evaluation (gls: logLik -254.58,
    the optimum -228.56; the lmer with 6 parameters: -366.96 against -351.08); the
    reference is the same model on halved times."""
    fx, m = _fit(case)
    _check_fit(fx, m, cor=lambda m: [m.cor_params["phi"] ** 2])
    assert m.cor_params["phi"] > 0.5


@pytest.mark.parametrize("case", ["gls_power_fixed", "gls_plain_ml"])
def test_gls_sigma_interval_without_structure_parameters_is_chisquare(case):
    """With nothing but sigma estimated nlme has no apVar and gives sigma's chi-square
    interval (ours was Wald on log sigma: 1.4762 - 1.7833 against 1.4826 - 1.7918)."""
    fx, m = _fit(case)
    _check_fit(fx, m)
    iv = m.intervals()["sigma"]
    np.testing.assert_allclose(iv.loc["sigma", ["lower", "est.", "upper"]].to_numpy(float),
                               fx["sigma_interval"], rtol=CHISQ_RTOL)


@pytest.mark.parametrize("fit", [mm.gls, mm.lmer])
def test_fixed_correlation_that_is_not_positive_definite_is_a_clear_error(fit):
    """cor_ratio of maximum distances at range 80, nugget 0.05 (fixed) is not positive
    definite on these coordinates: a DataError naming the structure and its values, not
    numpy's LinAlgError 'at []'."""
    d = _data("sr")
    cor = mm.cor_ratio(value=(80.0, 0.05), form="~ cx + cy | g", metric="maximum",
                       nugget=True, fixed=True)
    formula = "y ~ x" if fit is mm.gls else "y ~ x + (1 | g)"
    with pytest.raises(mm.DataError, match=r"cor_ratio\(form=.*range=80, nugget=0\.05 "
                                           r"\(fixed\).*not positive definite"):
        fit(formula, d, correlation=cor)


#: normalized residuals: ours against nlme's (its estimates agree to ~1e-7)
NORMALIZED_ATOL = 1e-5


@pytest.mark.parametrize("case", ["gls_cs_normalized", "lme_cs_normalized"])
def test_compound_symmetry_normalized_residuals_are_nlmes(case):
    """nlme normalizes compound symmetry with its Helmert factor (the group mean, then
    contrasts), not the Cholesky factor ours used (1.3 apart on the sweep data)."""
    fx, m = _fit(case)
    _check_fit(fx, m)
    np.testing.assert_allclose(m.residuals(type="normalized").to_numpy(), fx["normalized"],
                               atol=NORMALIZED_ATOL)


def test_normalized_residuals_do_not_depend_on_the_row_order():
    """Rows of the groups interleaved (the sweep data as simulated) or sorted by group:
    the same normalized residual per row (nlme's are misaligned in the first case)."""
    shuffled = _data("sr")
    shuffled["row"] = np.arange(len(shuffled))
    by_group = shuffled.sort_values("g", kind="stable").reset_index(drop=True)
    for cor in (mm.cor_ar1(form="~ t | g"), mm.cor_comp_symm(form="~ 1 | g")):
        a = mm.gls("y ~ x", shuffled, correlation=cor).residuals(type="normalized")
        b = mm.gls("y ~ x", by_group, correlation=cor).residuals(type="normalized")
        b = pd.Series(b.to_numpy(), index=by_group["row"]).sort_index()
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-8)
