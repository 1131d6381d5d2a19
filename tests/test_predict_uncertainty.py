"""Standard errors and intervals of predictions against R (tests/fixtures/diag, made by
tools/r/diag_fixtures.R) and against independent computations.

* lmer / glmer: the GLMM FAQ's recipe with nlme::lme on Orthodont (pred, SE, SE2); the joint
  covariance of (b, beta) -- lme4's vcov(full = TRUE), computed in R with dense algebra --
  for conditional predictions; the FAQ's x V x' with lme4's vcov for glmer.
* glmmtmb: glmmTMB 1.1.5's predict(se.fit = TRUE) -- the fitting rows of 18 corpus models
  (``predict_se_head``), new data with and without random effects, every type, an offset,
  REML; and d(modes)/d(parameters) against finite differences of re-solved modes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from glmmtmb_fixtures import ids, load
from test_glmmtmb_parity import fit_fixture

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diag"
#: The FAQ's Orthodont numbers (nlme at its optimum; ours is the same optimum).
FAQ_RTOL = 1e-6
#: lme4's joint covariance: at lme4's estimates vs ours (optima agree to ~1e-6).
JOINT_RTOL = 1e-5
#: glmer's Hessian-based vcov (lme4's finite differences against ours).
GLMER_VCOV_RTOL = 1e-3
#: glmmTMB's predict(se.fit = TRUE): both optima and Hessians agree to ~1e-5.
TMB_RTOL = 1e-4
#: Finite differences of the modes against the implicit-function derivative.
FD_RTOL = 1e-5


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def close(a, b, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol,
                               atol=atol)


# -- lmer / glmer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ortho_fit():
    ortho = mm.datasets.load("Orthodont")
    return mm.lmer("distance ~ age * Sex + (1 + age | Subject)", ortho), ortho


def test_faq_orthodont_recipe(ortho_fit):
    m, ortho = ortho_fit
    ref = pd.DataFrame(fixture("predict_lme4.json")["faq_orthodont"]["right_levels"])
    new = ref[["age", "Sex"]].copy()
    new["Sex"] = pd.Categorical(new["Sex"], categories=ortho["Sex"].cat.categories)
    conf = m.predict(new, re_form="~0", se_fit=True, interval="confidence")
    pred = m.predict(new, re_form="~0", se_fit=True, interval="prediction", level=0.9)
    close(conf["fit"], ref["pred"], FAQ_RTOL)
    close(conf["se_fit"], ref["SE"], FAQ_RTOL)
    z95, z90 = stats.norm.ppf(0.975), stats.norm.ppf(0.95)
    close(conf["upper"] - conf["fit"], z95 * ref["SE"], FAQ_RTOL)
    close(pred["upper"] - pred["fit"], z90 * ref["SE2"], FAQ_RTOL)
    close(pred["fit"] - pred["lower"], z90 * ref["SE2"], FAQ_RTOL)


def test_faq_as_printed_swaps_the_sexes(ortho_fit):
    """The FAQ's grid has the levels (Female, Male); its model.matrix therefore codes the
    Female rows as the data's reference level: its SE column is the other sex's."""
    fx = fixture("predict_lme4.json")["faq_orthodont"]
    printed, right = pd.DataFrame(fx["faq_as_printed"]), pd.DataFrame(fx["right_levels"])
    swap = right.set_index(["age", "Sex"])["SE"]
    other = {"Male": "Female", "Female": "Male"}
    close(printed["SE"], [swap[(a, other[s])] for a, s in zip(printed["age"], printed["Sex"],
                                                              strict=True)], 1e-12)
    close(printed["pred"], right.set_index(["age", "Sex"]).loc[
        list(zip(printed["age"], printed["Sex"], strict=True)), "pred"], 1e-10)


def test_lmer_conditional_se_is_lme4s_joint_covariance():
    fx = fixture("predict_lme4.json")["lmer_sleep"]
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    new = pd.DataFrame(fx["newdata"])
    out = m.predict(new, se_fit=True)
    close(out["fit"], fx["fit_cond"], JOINT_RTOL)
    close(out["se_fit"], fx["se_cond"], JOINT_RTOL)
    pop = m.predict(new, re_form="~0", se_fit=True)
    close(pop["se_fit"], fx["se_pop"], JOINT_RTOL)
    close(m.predict(se_fit=True)["se_fit"], fx["se_fitting_rows"], JOINT_RTOL)


def test_lmer_crossed_conditional_se():
    fx = fixture("predict_lme4.json")["lmer_penicillin"]
    m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    close(m.predict(se_fit=True)["se_fit"], fx["se_fitting_rows"], JOINT_RTOL)


def test_glmer_population_recipe_and_joint():
    fx = fixture("predict_lme4.json")["glmer_cbpp"]
    cbpp = mm.datasets.load("cbpp")
    m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    cond = m.predict(se_fit=True, interval="confidence")
    pop = m.predict(cbpp, re_form="~0", se_fit=True)
    close(cond["fit"], fx["eta"], JOINT_RTOL)
    close(cond["se_fit"], fx["se_cond"], 1e-4)
    close(pop["fit"], fx["eta_pop"], JOINT_RTOL)
    # x V x' with lme4's finite-difference Hessian vcov: as the glmer parity tests, its SEs
    # agree with ours to ~1e-4
    close(pop["se_fit"], fx["se_pop"], GLMER_VCOV_RTOL)
    # response scale: the ends of the link-scale interval through the inverse link
    resp = m.predict(type="response", se_fit=True, interval="confidence")
    inv = m.family.link.linkinv
    close(resp["lower"], inv(cond["lower"].to_numpy()), 1e-12)
    close(resp["upper"], inv(cond["upper"].to_numpy()), 1e-12)
    mu = inv(cond["fit"].to_numpy())
    close(resp["se_fit"], cond["se_fit"] * mu * (1 - mu), 1e-6)       # delta method
    assert (resp["lower"] > 0).all() and (resp["upper"] < 1).all()


def test_joint_covariance_matches_a_dense_inverse():
    """The sparse Schur-complement path against the explicit inverse of the penalized
    system, on simulated crossed data with weights and a random slope."""
    rng = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({"g": rng.integers(0, 12, n).astype(str),
                       "h": rng.integers(0, 7, n).astype(str), "x": rng.normal(size=n)})
    a, s_, c = rng.normal(size=12), 0.5 * rng.normal(size=12), rng.normal(size=7)
    gi, hi = df["g"].astype(int).to_numpy(), df["h"].astype(int).to_numpy()
    df["y"] = 1 + (0.5 + s_[gi]) * df["x"] + a[gi] + c[hi] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    m = mm.lmer("y ~ x + (x | g) + (1 | h)", df, weights=w)
    Z = m.get_matrix("Z").toarray()
    Lam = m.get_matrix("Lambda").toarray()
    X = m.design.X
    M = np.hstack([Z @ Lam, X])
    C = M.T @ (w[:, None] * M)
    C[np.arange(Z.shape[1]), np.arange(Z.shape[1])] += 1.0
    var = m.sigma ** 2 * np.einsum("ij,jk,ik->i", M, np.linalg.inv(C), M)
    close(m.predict(se_fit=True)["se_fit"], np.sqrt(var), 1e-10)
    # a new grid with a new level (allowed): its random effects contribute nothing
    new = pd.DataFrame({"g": ["0", "3", "zz"], "h": ["1", "1", "2"], "x": [0.0, 1.0, -1.0]})
    out = m.predict(new, se_fit=True, allow_new_levels=True)
    Zn = m.random_matrix(new, allow_new_levels=True).toarray()
    Mn = np.hstack([Zn @ Lam, m.model_matrix(new).to_numpy()])
    vn = m.sigma ** 2 * np.einsum("ij,jk,ik->i", Mn, np.linalg.inv(C), Mn)
    close(out["se_fit"], np.sqrt(vn), 1e-10)
    g_columns = m.design.terms[0].q                      # (x | g): the first term
    assert m.design.terms[0].group == "g" and not Zn[2, :g_columns].any()


def test_model_and_random_matrices_match_the_fit():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_array_equal(m.model_matrix().to_numpy(), m.design.X)
    np.testing.assert_array_equal(m.model_matrix(sleep).to_numpy(), m.design.X)
    np.testing.assert_array_equal(m.random_matrix(sleep).toarray(),
                                  m.get_matrix("Z").toarray())
    intercepts = m.random_matrix(sleep, re_form="~(1 | Subject)").toarray()
    assert intercepts[:, 1::2].sum() == 0 and intercepts[:, ::2].sum() == len(sleep)
    gaps = sleep.head(4).copy()
    gaps.loc[gaps.index[1], "Days"] = np.nan
    X = m.model_matrix(gaps)
    assert X.iloc[1].isna().all() and not X.iloc[0].isna().any()
    assert m.random_matrix(gaps).toarray()[1].sum() == 0
    out = m.predict(gaps, se_fit=True, interval="confidence")
    assert out.iloc[1].isna().all() and out.drop(out.index[1]).notna().all().all()


def test_bootstrap_intervals_cover_the_wald_ones():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    new = pd.DataFrame({"Days": [0.0, 9.0]})
    wald = m.predict(new, re_form="~0", se_fit=True, interval="confidence")
    boot = m.predict(new, re_form="~0", se_fit=True, interval="confidence", method="boot",
                     nsim=120, seed=3)
    again = m.predict(new, re_form="~0", se_fit=True, interval="confidence", method="boot",
                      nsim=120, seed=3)
    pd.testing.assert_frame_equal(boot, again)
    close(boot["fit"], wald["fit"], 1e-12)
    # 120 replicates: the bootstrap sd within 20% of the Wald SE
    close(boot["se_fit"], wald["se_fit"], 0.2)
    pi = m.predict(new, re_form="~0", interval="prediction", method="boot", nsim=120, seed=3)
    assert (pi["upper"] - pi["lower"] > boot["upper"] - boot["lower"]).all()


def test_bad_requests():
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="interval must be"):
        m.predict(interval="wald")
    with pytest.raises(ValueError, match="level must be"):
        m.predict(se_fit=True, level=95)
    with pytest.raises(ValueError, match="method must be"):
        m.predict(se_fit=True, method="mcmc")
    gm = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                  mm.datasets.load("cbpp"), family="binomial")
    with pytest.raises(NotImplementedError, match="Gaussian"):
        gm.predict(interval="prediction")
    with pytest.raises(ValueError, match="type must be"):
        gm.predict(type="zprob", se_fit=True)


# -- glmmtmb ------------------------------------------------------------------------------
SE_IDS = [i for i in ids() if load(i).get("predict_se_head")]


@pytest.mark.parametrize("fid", SE_IDS)
def test_glmmtmb_se_fit_on_the_fitting_rows(fid):
    fx = load(fid)
    m = fit_fixture(fx)
    for tp in ("link", "response"):
        ref = fx["predict_se_head"][tp]
        out = m.predict(type=tp, se_fit=True)
        close(out["fit"].to_numpy()[:10], ref["fit"], TMB_RTOL)
        close(out["se_fit"].to_numpy()[:10], ref["se_fit"], TMB_RTOL)


@pytest.fixture(scope="module")
def salamanders():
    fx = fixture("predict_glmmtmb.json")["salamanders_zinb2"]
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(fx["formula"], sal, ziformula=fx["ziformula"], family="nbinom2")
    return m, fx


@pytest.mark.parametrize("which", ["cond", "pop"])
@pytest.mark.parametrize("tp", ["link", "response", "conditional", "zprob", "zlink"])
def test_glmmtmb_se_fit_on_new_data(salamanders, which, tp):
    m, fx = salamanders
    new = pd.DataFrame(fx["newdata"])
    out = m.predict(new, type=tp, re_form=None if which == "cond" else "~0", se_fit=True)
    close(out["fit"], fx[which][tp]["fit"], TMB_RTOL)
    close(out["se_fit"], fx[which][tp]["se_fit"], TMB_RTOL)


def test_glmmtmb_offset_and_reml():
    fx = fixture("predict_glmmtmb.json")
    owls = mm.datasets.load("Owls")
    o = fx["owls_poisson"]
    m = mm.glmmtmb(o["formula"], owls, family="poisson")
    new = pd.DataFrame(o["newdata"])
    close(m.predict(new, se_fit=True)["se_fit"], o["link"]["se_fit"], TMB_RTOL)
    close(m.predict(new, type="response", se_fit=True)["se_fit"], o["response"]["se_fit"],
          TMB_RTOL)
    close(m.predict(new, re_form="~0", se_fit=True)["se_fit"], o["pop"]["se_fit"], TMB_RTOL)
    r = fx["sleep_reml"]
    sleep = mm.datasets.load("sleepstudy")
    mr = mm.glmmtmb(r["formula"], sleep, REML=True)
    new = pd.DataFrame(r["newdata"])
    close(mr.predict(new, se_fit=True)["se_fit"], r["cond"]["se_fit"], TMB_RTOL)
    # population level under REML: glmmTMB 1.1.5 maps b to 0 and integrates beta out of the
    # model *without* random effects, which drops the between-subject variance from the
    # fixed effects' covariance (its SEs are ~half lmer's); ours are the FAQ recipe with
    # the REML vcov, i.e. lmer's
    pop = mr.predict(new, re_form="~0", se_fit=True)["se_fit"]
    lmer_pop = fixture("predict_lme4.json")["lmer_sleep"]["se_pop"]
    close(pop, lmer_pop, 1e-4)
    assert np.all(pop > 1.5 * np.asarray(r["pop"]["se_fit"]))


def test_glmmtmb_intervals(salamanders):
    m, _ = salamanders
    link = m.predict(type="zlink", se_fit=True, interval="confidence")
    prob = m.predict(type="zprob", se_fit=True, interval="confidence")
    logistic = stats.logistic.cdf
    close(prob["lower"], logistic(link["lower"]), 1e-10)
    close(prob["upper"], logistic(link["upper"]), 1e-10)
    # the response of a zero-inflated model depends on two linear predictors: fit -+ z se
    resp = m.predict(type="response", se_fit=True, interval="confidence", level=0.8)
    close(resp["upper"] - resp["fit"], stats.norm.ppf(0.9) * resp["se_fit"], 1e-10)
    with pytest.raises(NotImplementedError, match="Gaussian"):
        m.predict(interval="prediction")


def test_mode_jacobian_against_finite_differences(salamanders):
    from mixedmodels.objective.laplace.sensitivity import mode_jacobian

    m, _ = salamanders
    obj, x = m.objective_function, m.x.copy()
    J = mode_jacobian(obj, x)
    for j in m.layout.free_index:
        h = 1e-5 * max(1.0, abs(x[j]))
        up, dn = x.copy(), x.copy()
        up[j] += h
        dn[j] -= h
        fd = (obj.solve(up)[0].u - obj.solve(dn)[0].u) / (2 * h)
        close(J[:, j], fd, FD_RTOL, atol=FD_RTOL * np.abs(fd).max())
    obj.solve(x)


@pytest.fixture(scope="module")
def salamanders_disp():
    fx = fixture("predict_glmmtmb_disp.json")
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(fx["formula"], sal, ziformula=fx["ziformula"],
                       dispformula=fx["dispformula"], family=fx["family"])
    return m, fx


#: The model's likelihood is flat along a ridge (the mined sites' dispersion and
#: zero-inflation are weakly determined): at objectives equal to 1e-8 our estimates and
#: glmmTMB's differ by ~1e-4 relative, and the predictions' SEs (curvatures there) by up to
#: ~8e-4.
DISP_RTOL = 2e-3


@pytest.mark.parametrize("which", ["cond", "pop"])
@pytest.mark.parametrize("tp", ["link", "response", "conditional", "zprob", "zlink", "disp"])
def test_glmmtmb_se_fit_of_every_type_with_a_dispersion_model(salamanders_disp, which, tp):
    m, fx = salamanders_disp
    assert -2 * m.loglik == pytest.approx(fx["objective"], rel=1e-7)
    close(m.fixef, list(fx["fixef"]["cond"].values()), 3e-4)
    new = pd.DataFrame(fx["newdata"])
    out = m.predict(new, type=tp, re_form=None if which == "cond" else "~0", se_fit=True)
    close(out["fit"], fx[which][tp]["fit"], DISP_RTOL)
    close(out["se_fit"], fx[which][tp]["se_fit"], DISP_RTOL)
