"""Regressions for what the parity sweep (tools/r/sweep/) found, against glmmTMB 1.1.5
fixtures made by tools/r/sweep/regression_fixtures.R (tests/fixtures/sweep/)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.families import ModelDensity, make_response_family

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
#: glmmTMB fits the rounded proportions' non-integer successes as given, we fit the whole
#: numbers they round to: the objectives differ by the rounding's effect (~1e-4 here)
ROUNDED_OBJECTIVE_ATOL = 1e-3
#: estimates relative to max(|estimate|, SE), standard errors (relative)
COEF_RTOL = 1e-3
SE_RTOL = 1e-3


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _cbpp():
    df = mm.datasets.load("cbpp")
    df["prop6"] = np.round(df["incidence"] / df["size"], 6)
    df["pd"] = ("p" + df["period"].astype(str)).astype("category")
    return df


def test_rounded_proportions_with_weights_fit_as_counts():
    """Proportions with 6 decimals times their trials are whole only up to rounding: they
    must fit (glmmTMB does), not be refused as non-integer counts."""
    fx = _fixture("cbpp_prop_rounded")
    m = mm.glmmtmb(fx["formula"], _cbpp(), family="binomial", weights=fx["weights"])
    assert m.objective == pytest.approx(fx["objective"], abs=ROUNDED_OBJECTIVE_ATOL)
    est = m.coef_table()
    for (name, ref), ours, se_ref, se in zip(fx["beta"].items(), est["Estimate"],
                                             fx["se"].values(), est["Std. Error"],
                                             strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref), name
        assert se == pytest.approx(se_ref, rel=SE_RTOL), name


def test_clearly_fractional_successes_still_refused():
    df = _cbpp()
    df["bad"] = df["prop6"] + 0.01
    with pytest.raises(mm.DataError, match="non-integer"):
        mm.glmmtmb("bad ~ period + (1 | herd)", df, family="binomial", weights="size")


def test_structured_theta_labels_as_glmmtmb():
    fx = _fixture("cbpp_ar1_labels")
    m = mm.glmmtmb(fx["formula"], _cbpp(), family="binomial")
    assert m.objective == pytest.approx(fx["objective"], abs=1e-4)
    theta_names = [n for n in fx["vcov_full_names"] if n.startswith("theta_")]
    assert [n for n in m.vcov_full.columns if n.startswith("theta_")] == theta_names


def test_simulate_out_of_range_mean_is_a_clear_error():
    """New random effects under the identity link can give negative Poisson means: a clear
    error naming the family and the link, not numpy's 'lam < 0'."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(30), 8)
    data = pd.DataFrame({"g": pd.Categorical(g), "x": rng.normal(size=g.size)})
    data["y"] = rng.poisson(np.maximum(3.0 + 0.1 * data["x"] + rng.normal(0, 1.5, 30)[g],
                                       0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb("y ~ x + (1 | g)", data, family="poisson", link="identity",
                       start={"beta.cond": [3.0, 0.0]})
        with pytest.raises(ValueError, match="identity link"):
            m.simulate(nsim=50, seed=1)


def test_response_named_once_in_count_errors():
    df = mm.datasets.load("cbpp")
    df.loc[0, "incidence"] = -1
    with pytest.raises(mm.DataError, match=r"the response 'incidence' has 1 negative"):
        mm.glmmtmb("incidence ~ period + (1 | herd)", df, family="poisson")


def test_nested_ar1_singular_inner_variance_matches_nlme_and_intervals_explain():
    """lme(y ~ x, random = ~ 1 | g/h, correlation = corAR1(form = ~ 1 | g/h)) with the
    inner variance at ~0: the fit matches nlme; intervals() used to fail inside numpy's
    eigensolver (curvature steps of thousands on the flat log sd), then refused; now it
    holds the flat parameter and says so."""
    fx = _fixture("nested_ar1")
    df = pd.read_csv(FIXTURES / "nested_ar1.csv")
    df["g"] = df["g"].astype("category")
    df["h"] = df["h"].astype("category")
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("y ~ x + (1 | g/h)", df, correlation=mm.cor_ar1(form="~ 1 | g/h"))
    assert m.loglik >= fx["logLik"] - 1e-4
    for ours, ref, se_ref, se in zip(m.fixef, fx["coef"].values(), fx["se"].values(),
                                     m.se, strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref)
        assert se == pytest.approx(se_ref, rel=SE_RTOL)
    assert m.cor_params["phi"] == pytest.approx(fx["phi"], rel=1e-3)
    # nlme gives intervals here (its apVar is positive definite, the inner sd's spans
    # e^+-30); ours hold the flat inner sd (NaN, named in the warning) and give the rest
    # (tests/test_rside_boundary.py compares them with nlme's)
    with pytest.warns(mm.SingularFitWarning, match=r"h:g.*no Wald interval"):
        iv = m.intervals()
    assert iv["random"]["lower"].isna().sum() == 1
    assert np.all(np.isfinite(iv["correlation"].to_numpy()))


def test_genpois_under_dispersed_ones_beyond_support_match_glmmtmb():
    """Strong under-dispersion (phi ~ 0.18): many y = 1 with theta + lambda < 0. Their pmf
    is theta exp(-theta - lambda) (the power (theta + lambda)^0 is 1), as glmmTMB
    evaluates it; we returned NaN and stopped 55 deviance units above its optimum."""
    fx = _fixture("genpois_under")
    df = pd.read_csv(FIXTURES / fx["data"])
    df["g"] = df["g"].astype("category")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(fx["formula"], df, family="genpois")
    assert m.objective <= fx["objective"] + 1e-4
    assert m.objective == pytest.approx(fx["objective"], abs=1e-4)
    for (name, ref), ours, se_ref, se in zip(fx["beta"].items(), m.fixef, fx["se"].values(),
                                             m.se, strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref), name
        assert se == pytest.approx(se_ref, rel=SE_RTOL), name
    assert m.fixef_disp.iloc[0] == pytest.approx(fx["beta_disp"]["(Intercept)"], rel=1e-3)
    assert m.varcorr_of("cond").terms[0].sd[0] == pytest.approx(fx["sd"], rel=1e-3)


def test_genpois_one_beyond_support_has_the_pmf_value():
    """The density at y = 1 is theta exp(-theta - lambda) for any lambda (direct formula)."""
    md = ModelDensity(make_response_family("genpois"))
    mu, phi = np.array([0.3, 2.0]), np.array([0.2, 0.2])
    theta, lam = mu / np.sqrt(phi), 1.0 - 1.0 / np.sqrt(phi)
    etas = {"mu": np.log(mu), "phi": np.log(phi)}
    ll = md.log_density_value(np.array([1.0, 1.0]), etas)
    np.testing.assert_allclose(ll, np.log(theta) - theta - lam, rtol=1e-12)


def test_t_with_dispersion_model_reaches_glmmtmb_optimum():
    """t_family with dispformula = ~Sex on Orthodont: the stage without random effects sent
    the df to its flat Gaussian limit and the full fit stayed there (417.20 vs 410.96)."""
    fx = _fixture("orth_t_disp_sex")
    m = mm.glmmtmb(fx["formula"], mm.datasets.load(fx["data"]), family="t",
                   dispformula=fx["dispformula"])
    assert m.objective <= fx["objective"] + 1e-4
    for (name, ref), ours, se_ref, se in zip(fx["beta"].items(), m.fixef, fx["se"].values(),
                                             m.se, strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref), name
        assert se == pytest.approx(se_ref, rel=SE_RTOL), name
    np.testing.assert_allclose(m.fixef_disp, list(fx["beta_disp"].values()), rtol=1e-3)
    assert m.family_params["df"] == pytest.approx(fx["df"], rel=1e-3)


@pytest.mark.parametrize(("start", "pattern"), [
    ({"beta.cond": [1.0, 2.0, 3.0]}, r"start\['beta.cond'\] has 3 values but the block has 4"),
    ({"theta.zi": [0.5]}, r"no parameter block 'theta.zi'.*beta.cond, theta.cond"),
])
def test_start_that_does_not_fit_is_an_error(start, pattern):
    """A start= block with a wrong name or size was silently ignored."""
    with pytest.raises(ValueError, match=pattern):
        mm.glmmtmb("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   mm.datasets.load("cbpp"), family="binomial", start=start)


def test_rside_forms_take_unicode_and_backticked_grouping_names():
    """nlme's gls on Orthodont with the grouping columns renamed to `subject id` (quoted)
    and kön: the form parser accepted only ASCII names."""
    fx = _fixture("orth_gls_cs_ident")
    df = mm.datasets.load("Orthodont").rename(columns={"Subject": "subject id", "Sex": "kön"})
    m = mm.gls("distance ~ age", df, correlation=mm.cor_comp_symm(form="~ 1 | `subject id`"),
               variance=mm.var_ident(form="~ 1 | kön"))
    assert m.loglik == pytest.approx(fx["logLik"], abs=1e-4)
    for ours, ref, se_ref, se in zip(m.fixef, fx["coef"].values(), fx["se"].values(), m.se,
                                     strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref)
        assert se == pytest.approx(se_ref, rel=SE_RTOL)
    assert m.cor_params["rho"] == pytest.approx(fx["rho"], rel=1e-3)
    assert m.var_params == pytest.approx(fx["var_params"], rel=1e-3)


#: a spatial fit's objective against glmmTMB's (deviance units; the two optima of
#: gau_pois_short are 1.94 apart)
SPATIAL_OBJECTIVE_ATOL = 1e-4
#: its theta (log sd, log range) against glmmTMB's (absolute, log scale)
SPATIAL_THETA_ATOL = 1e-3


def _spatial(scale: float = 1.0, shift: float = 0.0) -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "gau_pois_short.csv")
    df["cx"] = df["cx"] * scale + shift
    df["cy"] = df["cy"] * scale - shift
    df["g"] = "a"
    return df


@pytest.mark.parametrize("name", ["gau_pois_short", "exp_pois_short"])
def test_spatial_range_reaches_glmmtmb_short_range_optimum(name):
    """The sweep's gau_pois: the range started at the median distance (5.2) and the fit
    stopped in the long-range optimum (objective 180.856, log sd -2.68) where glmmTMB, from
    range 1, reaches the short one (178.912, range 0.21). The exponential correlation on
    the same sites (already right) must stay so."""
    fx = _fixture(name)
    m = mm.glmmtmb(fx["formula"], _spatial(), family="poisson")
    assert m.objective == pytest.approx(fx["objective"], abs=SPATIAL_OBJECTIVE_ATOL)
    np.testing.assert_allclose(m.theta, fx["theta"], atol=SPATIAL_THETA_ATOL)
    for (nm, ref), ours, se_ref, se in zip(fx["beta"].items(), m.fixef, fx["se"].values(),
                                           m.se, strict=True):
        assert abs(ours - ref) <= COEF_RTOL * max(abs(ref), se_ref), nm
        assert se == pytest.approx(se_ref, rel=SE_RTOL), nm


def test_spatial_range_check_is_unit_free():
    """Coordinates in other units (times 100, shifted): the same optimum, its log range
    moved by log(100) -- the ranges tried follow the distances, not fixed numbers."""
    fx = _fixture("gau_pois_short")
    m = mm.glmmtmb(fx["formula"], _spatial(100.0, 37.0), family="poisson")
    assert m.objective == pytest.approx(fx["objective"], abs=SPATIAL_OBJECTIVE_ATOL)
    np.testing.assert_allclose(m.theta, [fx["theta"][0], fx["theta"][1] + np.log(100.0)],
                               atol=SPATIAL_THETA_ATOL)


def test_spatial_theta_start_given_is_kept():
    """A theta start of the user's is fitted as given (no range check): from the median
    distance the long-range optimum, 1.94 above glmmTMB's."""
    fx = _fixture("gau_pois_short")
    df = _spatial()
    d = np.hypot(df["cx"].to_numpy()[:, None] - df["cx"].to_numpy(),
                 df["cy"].to_numpy()[:, None] - df["cy"].to_numpy())
    median = np.median(d[d > 0])
    m = mm.glmmtmb(fx["formula"], df, family="poisson",
                   start={"theta.cond": [-0.35, np.log(median)]})
    assert m.objective > fx["objective"] + 1.0


@pytest.mark.parametrize("cls", ["Exponential", "Gaussian", "Matern", "OrnsteinUhlenbeck"])
def test_range_lengths_span_the_distances_and_invert(cls):
    """The lengths the range check tries: the median nearest-neighbour distance and the
    10/50/90% quantiles of the pairwise distances (numpy on the distances directly), and
    ``range_of`` inverts ``cor_at_range`` (a rate for ou)."""
    from mixedmodels.covariance import spatial
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 5, size=(12, 1 if cls == "OrnsteinUhlenbeck" else 2))
    s = getattr(spatial, cls)(12, pts)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    off = d[~np.eye(12, dtype=bool)]
    nn = np.median(np.where(np.eye(12, dtype=bool), np.inf, d).min(axis=1))
    np.testing.assert_allclose(s.range_lengths(),
                               np.sort([nn, *np.quantile(off, [0.1, 0.5, 0.9])]))
    for length in (0.3, 2.0):
        assert s.range_of(s.cor_at_range(length)) == pytest.approx(length)
    assert s.range_of(s.start(1.0)[1:]) == pytest.approx(np.median(off))
