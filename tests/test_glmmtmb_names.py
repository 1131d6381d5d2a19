"""Random-effect names and VarCorr's Residual line against glmmTMB 1.1.5.

Fixture: tests/fixtures/names/glmmtmb_names.json, made by tools/r/glmmtmb_names_fixtures.R
(ranef columns and VarCorr rows per component and term, VarCorr's ``sc``/``useSc``, the
printed tables). Under ``coef_names="r"`` our names are glmmTMB's; by default formulaic's,
as for the fixed effects.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "names" /
                      "glmmtmb_names.json").read_text())
#: Relative tolerance of standard deviations at well-determined optima.
SD_RTOL = 2e-3
#: Fits whose random-effect standard deviations are compared (the others did not converge
#: in glmmTMB -- us_phase's non-positive Hessian, dispformula ~0's degenerate fit).
#: cs_ftime's optimum has rho = 1: the Gaussian start once stopped at a worse point with
#: sigma -> 0 (objective 689.80 against 679.91; fitting/lmm.residual_vanishing).
SD_COMPARED = ("gauss_disp1", "gauss_dispx", "ar1_ftime", "ar1_factor", "diag_phase",
               "zip_re", "zip_zire", "cs_ftime")
#: Fits whose residual sd is compared (ar1's sits at the boundary, ~1e-5, in both fits).
SIGMA_COMPARED = ("gauss_disp1", "diag_phase", "cs_ftime")


def _data(name: str):
    if name == "ar1sim_t4":
        d = mm.datasets.load("ar1sim")
        d = d[d["time"] < 4].reset_index(drop=True)
    else:
        d = mm.datasets.load(name)
    if name.startswith("ar1sim"):
        d["ftime"] = d["time"].astype(str)
    if name == "sleepstudy":
        d["phase"] = np.array(["a", "b", "c"])[np.minimum(d["Days"] // 4, 2)]
    return d


@pytest.fixture(scope="module")
def fits():
    out = {}
    for key, ref in FIXTURE.items():
        kwargs = {}
        if ref["zi_r"] != "none":
            kwargs["ziformula"] = ref["zi_r"]
        if ref["disp_r"] != "none":
            kwargs["dispformula"] = ref["disp_r"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[key] = mm.glmmtmb(ref["formula_r"], _data(ref["data"]),
                                  family=ref["family"], **kwargs)
    return out


@pytest.mark.parametrize("key", list(FIXTURE))
def test_r_names_of_random_effects(fits, key):
    m, ref = fits[key], FIXTURE[key]
    with mm.options(coef_names="r"):
        for comp, cref in ref["components"].items():
            vc = m.varcorr_of(comp)
            for term in vc.terms:
                assert list(term.names) == list(np.atleast_1d(cref["terms"][term.group]["names"]))
            re = m.ranef(comp)
            for group, cols in cref["ranef_columns"].items():
                assert list(re[group].columns) == list(np.atleast_1d(cols))
            frame = vc.as_frame()
            assert set(frame["var1"].dropna()) <= {n for t in vc.terms for n in t.names}


@pytest.mark.parametrize("key", SD_COMPARED)
def test_standard_deviations(fits, key):
    m, ref = fits[key], FIXTURE[key]
    for comp, cref in ref["components"].items():
        for term in m.varcorr_of(comp).terms:
            want = np.atleast_1d(cref["terms"][term.group]["sd"])
            np.testing.assert_allclose(term.sd, want, rtol=SD_RTOL)


@pytest.mark.parametrize("key", list(FIXTURE))
def test_residual_line(fits, key):
    """glmmTMB prints Residual for Gaussian fits (NA with dispersion covariates), none
    with dispformula ~0 or for families without a residual sd."""
    m, ref = fits[key], FIXTURE[key]
    sections = dict(zip(("cond", "zi"),
                        ref["printed_varcorr"].split("Zero-inflation model:"), strict=False))
    for comp, cref in ref["components"].items():
        vc = m.varcorr_of(comp)
        text = vc.to_text()
        if cref["use_sc"] is True:
            assert "Residual" in sections[comp]
            assert vc.sigma is not None and "Residual" in text
            frame = vc.as_frame()
            assert frame["grp"].iloc[-1] == "Residual"
            if cref["sc"] == "NA":
                assert math.isnan(vc.sigma)
                assert text.splitlines()[-1].split() == ["Residual", "NA"]
            elif key in SIGMA_COMPARED:
                assert vc.sigma == pytest.approx(cref["sc"], rel=SD_RTOL)
                assert frame["sdcor"].iloc[-1] == pytest.approx(cref["sc"], rel=SD_RTOL)
        else:
            assert "Residual" not in sections[comp]
            assert vc.sigma is None and "Residual" not in text
            assert "Residual" not in set(vc.as_frame()["grp"])


@pytest.mark.parametrize("key", ["gauss_disp1", "gauss_dispx", "gauss_disp0", "zip_zire"])
def test_summary_random_effects(fits, key):
    """The summary's random-effects block has glmmTMB's rows: R's names, a Residual line
    exactly where VarCorr prints one (with the variance; NA NA without a single sigma)."""
    m, ref = fits[key], FIXTURE[key]
    with mm.options(coef_names="r"):
        block = str(m.summary()).split("Random effects:")[1].split("Number of obs")[0]
    rows = [line.split() for line in block.splitlines() if line.strip()
            and not line.strip().endswith(":") and not line.lstrip().startswith("Groups")]
    want = [line.split() for line in ref["printed_summary_re"].splitlines() if line.strip()
            and not line.strip().endswith(":") and not line.lstrip().startswith("Groups")]
    assert [r[0] for r in rows] == [w[0] for w in want]
    resid = [r for r in rows if r[0] == "Residual"]
    if ref["sigma"] == "NA":
        assert resid == [["Residual", "NA", "NA"]]
    elif resid:
        assert float(resid[0][2]) == pytest.approx(ref["sigma"], rel=1e-3)


def test_default_names_are_formulaic(fits):
    """Without the option, random effects are named as the fixed effects are."""
    m = fits["ar1_factor"]
    assert list(m.ranef()["subject"].columns)[:2] == ["C(time)[0]", "C(time)[1]"]
    assert m.varcorr.terms[0].names[0] == "C(time)[0]"
    assert list(fits["gauss_disp1"].ranef()["Subject"].columns) == ["Intercept", "Days"]


def test_lmer_names_match_glmmtmb(fits):
    """lme4 names random-effect columns by R's model.matrix too: the same terms fitted by
    lmer carry the names glmmTMB printed."""
    sleep = _data("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Reaction ~ Days + (0 + phase | Subject)", sleep)
    with mm.options(coef_names="r"):
        assert list(m.ranef()["Subject"].columns) == \
            FIXTURE["us_phase"]["components"]["cond"]["ranef_columns"]["Subject"]
        assert list(m.varcorr.terms[0].names) == ["phasea", "phaseb", "phasec"]
        assert list(m.coef()["Subject"].columns) == ["(Intercept)", "Days", "phasea",
                                                     "phaseb", "phasec"]
        assert m.varcorr.as_frame()["grp"].iloc[-1] == "Residual"
    assert list(m.ranef()["Subject"].columns) == ["phase[a]", "phase[b]", "phase[c]"]


#: Deviance agreement with glmmTMB's objective for the ML lmer fit of the same model.
OBJECTIVE_ATOL = 1e-4


@pytest.mark.parametrize("optimizer", ["auto", "gradient"])
def test_cs_gaussian_reaches_rho_one_optimum(fits, optimizer):
    """cs(0 + ftime | subject) on ar1sim's first four times: the optimum has rho = 1 and
    sigma = 0.68; lmer's quasi-Newton path ran off to sigma -> 0 (9.9 deviance units
    higher) and glmmtmb's Gaussian start inherited it. Both reach glmmTMB's objective."""
    ref = FIXTURE["cs_ftime"]
    assert fits["cs_ftime"].objective == pytest.approx(ref["objective"], abs=OBJECTIVE_ATOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(ref["formula_r"], _data(ref["data"]), REML=False, optimizer=optimizer)
    assert -2 * m.loglik == pytest.approx(ref["objective"], abs=OBJECTIVE_ATOL)
    assert m.sigma == pytest.approx(ref["sigma"], rel=SD_RTOL)
