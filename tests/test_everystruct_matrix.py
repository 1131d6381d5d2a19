"""Every G-side structure through every front door (tests/everystruct_cases.py): the
displays, Wald and profile intervals, likelihood-ratio tests against the model without the
term, simulation and prediction, each checked against an independent computation:

* ``anova``: the chi-square is twice the log-likelihood difference of the two fits and
  its df the difference of their parameter counts (counted from the structures);
* ``simulate``: the sample variance of many Gaussian draws per row against
  ``diag(Z Sigma Z') + sigma^2`` from the structure's own ``covariance``;
* ``predict``: fitting rows give the fitted values, a new level (and every spelling of
  ``re_form`` without random effects) gives ``X beta``;
* profile intervals: contain the estimate, the fixed effects' agree with Wald's, the
  Gaussian ``glmmtmb`` intervals equal ``lmer``'s ML ones (two implementations), and at a
  fixed effect's end the deviance of a refit with the coefficient held (an offset) is
  ``qchisq(0.95, 1)`` above the optimum; for the covariance parameters of ``us`` (profiled
  through a chart) the same by a held minimization written here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import everystruct_cases as cases
import mixedmodels as mm

CASES = [(s, d) for s in cases.STRUCTURES for d in cases.DOORS]
FITTED = [c for c in CASES if c not in cases.REFUSED]
GAUSSIAN = [c for c in FITTED if cases.DOORS[c[1]][1] == "gaussian"]
#: Profile-interval cross-checks: end points agree to this fraction of the interval's
#: width (both searches stop at 1e-4 SE; the inner optima differ by their tolerances).
END_RTOL = 2e-3
#: Profile and Wald intervals of a fixed effect: ends within this fraction of the width.
WALD_RTOL = 0.15
#: The deviance at a profile end above the optimum: qchisq(0.95, 1) to this.
CHISQ_ATOL = 2e-2
#: Sample variance of NSIM draws against the model's: the mean over rows to this, relative
#: (the mean's sampling error is ~sqrt(2 / NSIM) / sqrt(effective rows): < 0.02 here).
NSIM = 1000
VAR_RTOL = 0.05
#: Agreement of predictions computed two ways (rounding only).
PRED_ATOL = 1e-8
#: A new site far from every fitted one: its kriged effect is near zero (link scale).
FAR_SITE_ATOL = 0.01
#: glmmTMB 1.1.5's ends (a spline through its profile, or uniroot) against ours,
#: relative to the interval's width; objectives; predictions and their standard errors.
R_END_RTOL = 5e-3
R_OBJ_ATOL = 1e-4
R_PRED_RTOL = 1e-4
#: ... and absolutely: the two optima agree to ~1e-6 in the parameters (ar1_pois)
R_PRED_ATOL = 1e-5
CHI2_95 = float(stats.chi2.ppf(0.95, 1))
FIXTURE = Path(__file__).parent / "fixtures" / "everystruct" / "glmmtmb.json"


def _group(structure: str) -> str:
    return cases.STRUCTURES[structure][2]


def _data(structure: str) -> pd.DataFrame:
    return cases.data(cases.STRUCTURES[structure][1])


def _n_cov_parameters(m) -> int:
    """Free covariance parameters, from the structures (``n_theta``) of the conditional
    model's terms (equalto: none)."""
    return sum(t.structure.n_theta for t in m.design.terms)


# -- fits, refusals, displays ----------------------------------------------------------
@pytest.mark.parametrize("structure,door", sorted(cases.REFUSED))
def test_refused_combinations_say_why(structure, door):
    with pytest.raises(mm.FormulaError, match=cases.REFUSED[(structure, door)]) as err:
        cases.fit(structure, door)
    assert "use" in str(err.value)                    # ... and what to do instead


@pytest.mark.parametrize("structure,door", FITTED)
def test_fit_and_displays(structure, door):
    m = cases.fitted(structure, door)
    assert np.isfinite(m.objective)
    group = _group(structure)
    for text in (str(m.varcorr), str(m.summary()), str(m)):
        assert group in text
    if structure not in ("us", "diag"):       # printed as lme4 prints them
        keyword = m.design.terms[0].structure.keyword
        assert keyword in str(m.varcorr)


@pytest.mark.parametrize("structure,door", FITTED)
def test_wald_intervals(structure, door):
    m = cases.fitted(structure, door)
    ci = m.confint(method="wald")
    lo, hi = ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy()
    assert np.all(np.isfinite(lo[:2])) and np.all(lo < hi)
    fixef = np.asarray(m.fixef if door != "glmmtmb" else ci["Estimate"].to_numpy()[:2])
    assert np.all((lo[:2] < fixef[:2]) & (fixef[:2] < hi[:2]))


# -- likelihood-ratio test against the model without the term --------------------------
@pytest.mark.parametrize("structure,door", FITTED)
def test_anova_against_the_model_without_the_term(structure, door):
    m = cases.fitted(structure, door)
    m0 = cases.fit(structure, door, term="")
    res = mm.anova(m0, m)
    chisq = float(res["Chisq"].iloc[1])
    assert chisq == pytest.approx(2 * (m.loglik - m0.loglik), rel=1e-6, abs=1e-6)
    k = _n_cov_parameters(m)
    assert int(res["Df"].iloc[1]) == k
    p = float(res["Pr(>Chisq)"].iloc[1])
    if k == 0:
        assert np.isnan(p)                       # equalto: nothing to test (R: NA)
    else:
        assert p == pytest.approx(stats.chi2.sf(chisq, k), rel=1e-6, abs=1e-12)


# -- simulation ---------------------------------------------------------------------------
@pytest.mark.parametrize("structure,door", FITTED)
def test_simulate_shape_and_seed(structure, door):
    m = cases.fitted(structure, door)
    a = m.simulate(nsim=2, seed=42)
    assert a.shape == (len(_data(structure)), 2)
    assert list(a.columns) == ["sim_1", "sim_2"]
    pd.testing.assert_frame_equal(a, m.simulate(nsim=2, seed=42))
    assert not np.allclose(a.to_numpy(), m.simulate(nsim=2, seed=43).to_numpy())
    assert np.all(np.isfinite(a.to_numpy()))


def _implied_variance(m, door: str) -> np.ndarray:
    """``diag(Z Sigma Z') + sigma^2`` per row, each term's ``Sigma`` from its structure's
    ``covariance`` (relative to sigma^2 in lmer, absolute in glmmtmb) and its dense
    model matrix (level-major columns)."""
    import structures_fixtures as sf

    n = m.nobs
    if door == "lmer":
        theta, scale = np.asarray(m.theta, float), m.sigma ** 2
        slices = m.design.theta_slices()
    else:
        theta, scale = m.objective_function.theta(m.x), 1.0
        slices = m.design.components["cond"].theta_slices()
    v = np.full(n, m.sigma ** 2)
    for t, sl in zip(m.design.terms, slices, strict=True):
        Z = sf.dense_Z(t, n)
        S = np.kron(np.eye(t.q // t.p), t.structure.covariance(theta[sl]))
        v += scale * np.einsum("ij,jk,ik->i", Z, S, Z)
    return v


@pytest.mark.parametrize("structure,door", GAUSSIAN)
def test_simulated_variance_is_the_models(structure, door):
    m = cases.fitted(structure, door)
    sims = m.simulate(nsim=NSIM, seed=1).to_numpy()
    sample = sims.var(axis=1, ddof=1)
    implied = _implied_variance(m, door)
    assert sample.mean() == pytest.approx(implied.mean(), rel=VAR_RTOL)
    # and row by row, loosely (each row's variance has a 4.5% sampling sd at NSIM)
    assert np.median(np.abs(sample / implied - 1)) < 0.1


#: structures whose term spans the positions or levels (one process over them)
SPANNING = ("exp", "gau", "mat", "propto", "equalto")


# -- prediction --------------------------------------------------------------------------
def _response_predict(m, door, newdata, **kw):
    if door == "lmer":
        return m.predict(newdata, **kw).to_numpy()
    return m.predict(newdata, type="response", **kw).to_numpy()


@pytest.mark.parametrize("structure,door", FITTED)
def test_predict_levels_and_re_form_spellings(structure, door):
    m = cases.fitted(structure, door)
    d = _data(structure)
    np.testing.assert_allclose(_response_predict(m, door, d), m.fitted().to_numpy(),
                               rtol=0, atol=PRED_ATOL)
    np.testing.assert_allclose(_response_predict(m, door, d, re_form=None),
                               m.fitted().to_numpy(), rtol=0, atol=PRED_ATOL)
    nd = d.head(5).copy()
    g = _group(structure)
    nd[g] = nd[g].astype(object)
    nd.loc[nd.index[-1], g] = "NEWLEVEL"
    if structure in ("exp", "gau", "mat"):
        nd.loc[nd.index[-1], ["east", "north"]] = [200.0, 200.0]  # a new site far away
    beta = np.asarray(m.fixef, dtype=float)
    xb = beta[0] + beta[1] * nd["x"].to_numpy()
    link = m.predict(nd, allow_new_levels=True).to_numpy()
    if structure in ("exp", "gau", "mat"):
        # kriged from the fitted sites (tests/test_kriging_predict.py checks the value
        # against glmmTMB): a site this far from every fitted one is near the population
        # level, but not at it
        assert link[-1] == pytest.approx(xb[-1], abs=FAR_SITE_ATOL)
    else:
        assert link[-1] == pytest.approx(xb[-1], abs=PRED_ATOL)      # population level
    np.testing.assert_allclose(link[:-1], m.predict(d.head(4)).to_numpy(), atol=PRED_ATOL)
    for spelling in ("~0", "NA", np.nan, False):
        np.testing.assert_allclose(m.predict(nd, re_form=spelling).to_numpy(), xb,
                                   rtol=0, atol=PRED_ATOL)
    # a term over positions or over the levels themselves (one process) has no column for
    # a new site or species: refused as a new grouping level is
    with pytest.raises(mm.DataError, match=r"\(200,200\)|NEWLEVEL"):
        m.predict(nd)


# -- profile intervals ------------------------------------------------------------------
def _check_profile_basics(ci, wald, slope: str, est_col=None):
    """No NaN end; each interval holds its estimate (where the table has one); the slope's
    (a well-determined fixed effect) agrees with its Wald interval."""
    lo, hi = ci.iloc[:, 0].to_numpy(dtype=float), ci.iloc[:, 1].to_numpy(dtype=float)
    # an lmer end may be NaN only where its note says the walk stopped short of the cut
    # (mat's range and smoothness form a ridge)
    noted = (ci["note"].str.contains("beyond the profiled range").to_numpy()
             if "note" in ci else np.zeros(len(ci), dtype=bool))
    assert not np.any((np.isnan(lo) | np.isnan(hi)) & ~noted), ci
    if est_col is not None:
        est = ci[est_col].to_numpy()
        assert np.all((lo <= est + 1e-9) & (est - 1e-9 <= hi)), ci
    p, w = ci.loc[slope].to_numpy()[:2].astype(float), wald.loc[slope].to_numpy()[:2]
    np.testing.assert_allclose(p, w, atol=WALD_RTOL * (w[1] - w[0]))


def _tmb_rows(ci) -> pd.DataFrame:
    """glmmtmb's profile table in lmer's order and names: betas, then covariance rows
    (``keyword:param|g`` -> ``keyword_param|g``), disp left out."""
    beta = ci.loc[[r for r in ci.index if r.startswith("cond~")]]
    beta.index = [r.removeprefix("cond~") for r in beta.index]
    cov = ci.loc[[r for r in ci.index if "|" in r]]
    return pd.concat([beta, cov])


def _lmer_row(tmb_name: str, m_lmer, ci_lmer) -> str:
    """The lmer profile's row of a glmmtmb covariance row (``keyword:param|g``): lmer
    lists the term's parameters first, in the structure's order."""
    par = tmb_name.split(":", 1)[1].split("|")[0]
    names = m_lmer.design.terms[0].structure.parameter_names()
    return ci_lmer.index[names.index(par)]


def _profile_pair(structure):
    """Profile intervals of the Gaussian glmmtmb fit and of the lmer ML fit."""
    g, lm_ = cases.fitted(structure, "glmmtmb"), cases.fitted(structure, "lmer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return g, lm_, g.confint(method="profile"), lm_.confint(method="profile")


PROFILE_FAST = ["us", "ar1", "propto"]
PROFILE_SLOW = [s for s in cases.STRUCTURES if s not in PROFILE_FAST and s != "equalto"]


def _check_profile_pair(structure):
    g, lm_, ci_t, ci_l = _profile_pair(structure)
    _check_profile_basics(ci_t, g.confint(method="wald"), "cond~x", est_col="Estimate")
    _check_profile_basics(ci_l, lm_.confint(method="wald"), "x")
    # every covariance parameter of the structure is profiled (the us gap: sd_2, cor)
    rows = _tmb_rows(ci_t)
    n_cov = len(lm_.design.terms[0].structure.parameter_names())
    assert len(rows) == 2 + n_cov, ci_t
    for name in rows.index:
        lname = name if "|" not in name else _lmer_row(name, lm_, ci_l)
        a, b = rows.loc[name].to_numpy()[:2], ci_l.loc[lname].to_numpy()[:2].astype(float)
        assert np.all(np.isfinite(a)) or structure == "mat", name
        both = np.isfinite(a) & np.isfinite(b)
        width = max(b[1] - b[0], 1e-8) if np.all(np.isfinite(b)) else max(abs(b[both]).max(), 1)
        np.testing.assert_allclose(a[both], b[both], atol=END_RTOL * width, err_msg=name)


@pytest.mark.parametrize("structure", PROFILE_FAST)
def test_profile_glmmtmb_equals_lmer(structure):
    _check_profile_pair(structure)


@pytest.mark.slow
@pytest.mark.parametrize("structure", PROFILE_SLOW)
def test_profile_glmmtmb_equals_lmer_slow(structure):
    _check_profile_pair(structure)


@pytest.mark.parametrize("structure", ["propto", pytest.param("ar1", marks=pytest.mark.slow)])
def test_profile_glmer(structure):
    m = cases.fitted(structure, "glmer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = m.confint(method="profile")
    _check_profile_basics(ci, m.confint(method="wald"), "x")
    assert len(ci) == 2 + _n_cov_parameters(m)
    assert not ci.iloc[:, :2].isna().any().any()


@pytest.mark.parametrize("structure,door", [
    ("ar1", "glmmtmb"), ("us", "glmmtmb"),
    pytest.param("ar1", "glmer", marks=pytest.mark.slow)])
def test_profile_end_of_a_fixed_effect_is_the_chisq_cut(structure, door):
    """Refit with the coefficient of x held at each end (an offset): the deviance rises by
    qchisq(0.95, 1) -- the fitter, not the profiler, finds the minimum."""
    m = cases.fitted(structure, door)
    d = _data(structure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = m.confint(method="profile", parm=["cond~x"] if door == "glmmtmb" else ["x"])
        ends = ci.iloc[0, :2].to_numpy(dtype=float)
        response, family = cases.DOORS[door]
        f = f"{response} ~ 1 + {cases.STRUCTURES[structure][0]}"
        for b in ends:
            off = b * d["x"].to_numpy()
            kw = {"covariance_matrices": cases.matrices(), "offset": off}
            held = (mm.glmmtmb(f, d, family=family, **kw) if door == "glmmtmb"
                    else mm.glmer(f, d, family=family, **kw))
            assert held.objective - m.objective == pytest.approx(CHI2_95, abs=CHISQ_ATOL)


def test_profile_end_of_us_parameters_is_the_chisq_cut():
    """The us parameters profiled through a chart (sd_2 and the correlation): at each end
    the objective minimized with that natural parameter held (Nelder-Mead over the other
    parameters, natural scale, written here) is qchisq(0.95, 1) above the optimum."""
    m = cases.fitted("us", "glmmtmb")
    s = m.design.terms[0].structure
    sl = m.design.components["cond"].theta_slices()[0]
    obj = m.objective_function
    base = m.layout.slice("theta.cond").start
    idx = np.arange(base + sl.start, base + sl.stop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = m.confint(method="profile", parm=["us:cor_2.1|subject", "us:sd_2|subject"])
    nat_hat = s.parameters(m.x[idx])
    for row, j in (("us:cor_2.1|subject", 1), ("us:sd_2|subject", 2)):
        for v in ci.loc[row].to_numpy()[:2]:
            others = [k for k in range(m.x.size) if k not in idx]

            def f(z, v=v, j=j, others=others):
                nat = nat_hat.copy()
                free_nat = [k for k in range(nat.size) if k != j]
                nat[free_nat] = z[len(others):]
                nat[j] = v
                if nat[0] < 0 or nat[2] < 0 or abs(nat[1]) >= 1:
                    return 1e10
                x = m.x.copy()
                x[others] = z[:len(others)]
                x[idx] = s.theta_from_parameters(nat)
                return obj(x)

            z0 = np.r_[m.x[others], np.delete(nat_hat, j)]
            res = optimize.minimize(f, z0, method="Nelder-Mead",
                                    options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 20000,
                                             "maxfev": 20000})
            assert res.fun - m.objective == pytest.approx(CHI2_95, abs=CHISQ_ATOL), row


def test_profile_refuses_unknown_and_says_what_is_profiled():
    m = cases.fitted("us", "glmmtmb")
    with pytest.raises(ValueError, match="cannot profile"):
        m.confint(method="profile", parm=["us:sd_9|subject"])


# -- glmmTMB 1.1.5 (tools/r/everystruct_fixtures.R) ---------------------------------------
R_MODELS = {
    # key: (formula, data, family, our group, (R natural map per covariance row))
    "ar1_reps": ("y ~ x + ar1(0 + factor(time) | subject)", "reps", "gaussian"),
    "ou_reps": ("y ~ x + ou(0 + pos(tt) | subject)", "reps", "gaussian"),
    "us_gauss": ("y ~ x + us(1 + x | subject)", "long", "gaussian"),
    "us_pois": ("yc ~ x + us(1 + x | subject)", "long", "poisson"),
    "ar1_pois": ("yc ~ x + ar1(0 + factor(time) | subject)", "long", "poisson"),
    "cs_pois": ("yc ~ x + cs(0 + factor(time) | subject)", "long", "poisson"),
}


def _r_data(name: str) -> pd.DataFrame:
    import structures_fixtures as sf

    if name == "reps":
        return pd.read_csv(FIXTURE.parent / "long_reps.csv")
    return pd.read_csv(sf.DATA / f"{name}.csv")


def _r_fixture(key):
    if not FIXTURE.exists():
        pytest.skip("tests/fixtures/everystruct/glmmtmb.json not made")
    fx = json.loads(FIXTURE.read_text())
    if key not in fx:
        pytest.skip(f"{key} not in the fixture")
    return fx[key]


def _fit_r_model(key):
    formula, data, family = R_MODELS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb(formula, _r_data(data), family=family)


@pytest.mark.parametrize("key", sorted(R_MODELS))
def test_predict_se_equals_glmmtmbs(key):
    ref = _r_fixture(key)
    m = _fit_r_model(key)
    assert m.objective == pytest.approx(ref["objective"], abs=R_OBJ_ATOL)
    d = _r_data(R_MODELS[key][1])
    p = m.predict(d.head(5), se_fit=True)
    np.testing.assert_allclose(p["fit"], ref["predict"]["fit"], rtol=R_PRED_RTOL, atol=R_PRED_ATOL)
    np.testing.assert_allclose(p["se_fit"], ref["predict"]["se"], rtol=R_PRED_RTOL * 10,
                               atol=R_PRED_ATOL)
    nd = d.head(5).copy()
    g = m.design.terms[0].group
    if g in nd:
        nd[g] = nd[g].astype(object)
        nd.loc[nd.index[-1], g] = "NEWLEVEL"
    p0 = m.predict(nd, se_fit=True, re_form="~0")
    np.testing.assert_allclose(p0["fit"], ref["predict_re0"]["fit"], rtol=R_PRED_RTOL,
                               atol=R_PRED_ATOL)
    np.testing.assert_allclose(p0["se_fit"], ref["predict_re0"]["se"], rtol=R_PRED_RTOL * 10,
                               atol=R_PRED_ATOL)


def _r_to_ours(m, rows, lo, hi):
    """glmmTMB's profile rows (betas, then ``theta_``/``sigma`` on its scale) mapped to
    ours: fixed effects as they are, each covariance coordinate through the structure's
    natural map (exp of a log sd, t / sqrt(1 + t^2) of a correlation parameter) by
    evaluating ``parameters(from_glmmtmb(.))`` with that coordinate at its end."""
    s = m.design.terms[0].structure
    sl = m.design.components["cond"].theta_slices()[0]
    base = m.layout.slice("theta.cond").start
    v_hat = np.asarray(s.to_glmmtmb(m.x[base + sl.start:base + sl.stop]), dtype=float)
    theta_rows = [k for k, r in enumerate(rows) if r.startswith("theta_")]
    out = {}
    for j, k in enumerate(theta_rows):
        ends = []
        for v in (lo[k], hi[k]):
            w = v_hat.copy()
            w[j] = np.clip(v, -1e8, 1e8)
            nat = s.parameters(s.from_glmmtmb(w))
            ends.append(nat)
        out[j] = ends
    return theta_rows, out


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(R_MODELS))
def test_profile_equals_glmmtmbs(key):
    ref = _r_fixture(key)
    m = _fit_r_model(key)
    rows = ref["rows"]
    # (jsonlite writes R's NA -- an end uniroot did not find -- as "NA")
    lo = [np.nan if v in (None, "NA") else float(v) for v in ref["lower"]]
    hi = [np.nan if v in (None, "NA") else float(v) for v in ref["upper"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = m.confint(method="profile")
    n_beta = m.design.p
    ours = ci.iloc[:, :2].to_numpy(dtype=float)
    width = np.asarray(hi[:n_beta]) - np.asarray(lo[:n_beta])
    np.testing.assert_allclose(ours[:n_beta, 0], lo[:n_beta], atol=R_END_RTOL * width.max())
    np.testing.assert_allclose(ours[:n_beta, 1], hi[:n_beta], atol=R_END_RTOL * width.max())
    # covariance coordinates that carry one natural parameter alone
    cov = ci.loc[[r for r in ci.index if "|" in r]]
    s = m.design.terms[0].structure
    _, ends = _r_to_ours(m, rows, lo, hi)
    names = s.parameter_names()
    for e_lo, e_hi in ends.values():
        moved = np.flatnonzero(~np.isclose(e_lo, e_hi, rtol=0, atol=1e-12))
        if moved.size != 1:
            continue                   # a coordinate that mixes parameters (p > 2 cors)
        n = int(moved[0])
        label = f"{s.keyword}:{names[n]}|{m.design.terms[0].group}"
        if label not in cov.index or not np.all(np.isfinite([e_lo[n], e_hi[n]])):
            continue
        r_ends = sorted((e_lo[n], e_hi[n]))
        w = max(r_ends[1] - r_ends[0], 1e-8)
        np.testing.assert_allclose(cov.loc[label].to_numpy()[:2].astype(float), r_ends,
                                   atol=R_END_RTOL * w + 1e-6, err_msg=label)
