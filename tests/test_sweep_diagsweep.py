"""Regressions found by the diagnostics / prediction parity sweep (lane diagsweep:
tools/r/sweep/diagsweep.R + diagsweep.py; fixtures from tools/r/sweep/diagsweep_fixtures.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
#: residuals relative to the largest one (the fits agree to ~1e-7 in beta)
RESID_RTOL = 1e-6


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"diagsweep_{name}.json").read_text())


def close(ours, ref, rtol):
    ours = np.asarray(ours, float)
    ref = np.asarray(ref, float)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rtol * np.max(np.abs(ref)))


def _sleep():
    d = mm.datasets.load("sleepstudy").copy()
    d["w3"] = 1.0 + np.arange(len(d)) % 3
    return d


@pytest.mark.parametrize("case", ["weighted", "na_rows"])
def test_lmer_residuals_of_every_lme4_type(case):
    """lmer fits had only 'response' and 'pearson': lme4's 'deviance' and 'working' raised
    (deviance = pearson = sqrt(w) (y - mu), working = response for the identity link)."""
    fx = load("lmer_resid")[case]
    d = _sleep()
    kw = {}
    if case == "weighted":
        kw["weights"] = d["w3"].to_numpy()
    else:
        d.loc[d.index[np.asarray(fx["na"]) - 1], "Reaction"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(fx["formula"], d, REML=fx["REML"], **kw)
    for tp, ref in fx["residuals"].items():
        r = m.residuals(tp)
        close(r, ref, RESID_RTOL)
        if case == "na_rows":
            assert list(r.index) == [i - 1 for i in fx["rows"]]
    scaled = m.residuals("deviance", scaled=True)
    close(scaled * m.sigma, fx["residuals"]["deviance"], RESID_RTOL)
    with pytest.raises(ValueError, match=r"unknown residual type 'partial'.*deviance"):
        m.residuals("partial")


def test_glmmtmb_pearson_residuals_differ_from_glmmtmb_as_documented():
    """The definition choice of GlmmTMBResult.residuals (documented there): ours include
    the prior weights and the dispersion, glmmTMB 1.1.5's leave both out. The difference
    is exactly sqrt(w) (weighted binomial) and sigma (Gamma); overdispersion() of the
    weighted binomial equals glmer's Pearson chi-square, not performance's glmmTMB one."""
    fx = load("tmb_pearson")
    cbpp = mm.datasets.load("cbpp").copy()
    w = 1.0 + np.arange(len(cbpp)) % 3
    f = fx["binom_weights"]["formula"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tb = mm.glmmtmb(f, cbpp, family="binomial", weights=w)
        gb = mm.glmer(f, cbpp, family="binomial", weights=w)
        tg = mm.glmmtmb(fx["gamma"]["formula"], mm.datasets.load("gammasim"),
                        family="Gamma", link="log")
    close(tb.residuals("pearson") / np.sqrt(w), fx["binom_weights"]["pearson"], 1e-4)
    assert tb.overdispersion()["chisq"] == pytest.approx(gb.overdispersion().chisq, rel=1e-6)
    ref_chisq = fx["binom_weights"]["overdispersion_chisq"]
    assert tb.overdispersion()["chisq"] > 1.5 * ref_chisq      # 102.1 against 65.7
    close(tg.residuals("pearson") * tg.sigma, fx["gamma"]["pearson"], 1e-4)
    assert tg.sigma == pytest.approx(fx["gamma"]["sigma"], rel=1e-4)


#: R2 / ICC against performance where the definitions agree (fits agree to ~1e-6)
R2_RTOL = 1e-4


@pytest.mark.parametrize("family", ["beta", "genpois"])
def test_r2_icc_of_beta_and_generalized_poisson_match_performance(family):
    """r2/icc raised for glmmTMB's beta and genpois families, which performance 0.10.2
    covers (beta: its odd ``mu0 = exp(logit intercept)``, documented in r2.py)."""
    fx = load("r2_families")
    ref = fx[family]
    d = pd.read_csv(FIXTURES / fx["data"])
    d["g"] = pd.Categorical(d["g"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(ref["formula"], d, family=family)
        r2, icc = m.r2(), m.icc()
    assert m.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert r2.conditional == pytest.approx(ref["r2"]["conditional"], rel=R2_RTOL)
    assert r2.marginal == pytest.approx(ref["r2"]["marginal"], rel=R2_RTOL)
    assert icc.adjusted == pytest.approx(ref["icc"]["adjusted"], rel=R2_RTOL)
    assert icc.unadjusted == pytest.approx(ref["icc"]["unadjusted"], rel=R2_RTOL)
    assert r2.variances.distribution == pytest.approx(ref["distribution"], rel=R2_RTOL)


def test_r2_still_refuses_families_performance_has_no_sound_value_for():
    d = pd.read_csv(FIXTURES / load("r2_families")["data"])
    d["g"] = pd.Categorical(d["g"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb("cnt ~ x + (1 | g)", d, family="compois")
    with pytest.raises(mm.MixedModelsError, match="compois family"):
        m.r2()
