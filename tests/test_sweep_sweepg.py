"""Regressions for what the batch-3 parity sweep (tools/r/sweep/sweepg_glmmtmb.R) found,
against glmmTMB 1.1.5 fixtures made by tools/r/sweep/sweepg_fixtures.R
(tests/fixtures/sweep/sweepg_*)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sweep"
#: objective (absolute), estimates relative to max(|estimate|, SE), SEs (relative)
OBJECTIVE_ATOL = 1e-4
COEF_RTOL = 1e-4
SE_RTOL = 1e-3
#: predictions' standard errors (relative): glmmTMB's se.fit and ours both come from the
#: delta method at the optimum; the optimum agrees to ~1e-6
PRED_SE_RTOL = 1e-3
#: predictions (relative, and absolute near 0)
PRED_RTOL = 1e-5


def _fixture(name: str) -> tuple[dict, pd.DataFrame]:
    rec = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    data = pd.read_csv(FIXTURES / f"{name}.csv")
    for col in data.columns:
        if not pd.api.types.is_numeric_dtype(data[col]):
            data[col] = pd.Categorical(data[col], categories=sorted(data[col].unique()))
    return rec, data


def _check_fit(m, rec: dict) -> None:
    assert m.objective == pytest.approx(rec["objective"], abs=OBJECTIVE_ATOL)
    tab = m.coef_table()
    for (name, ref), est, se_ref, se in zip(rec["beta"].items(), tab["Estimate"],
                                            rec["se"].values(), tab["Std. Error"],
                                            strict=True):
        assert abs(est - ref) <= COEF_RTOL * max(abs(ref), se_ref), name
        assert se == pytest.approx(se_ref, rel=SE_RTOL), name


def test_zero_inflation_that_vanishes_without_random_effects_is_restarted():
    """Without random effects the negative binomial absorbs the 4% excess zeros and the
    zero-inflation logit runs off to about -27; carried into the full model from there
    (a flat logistic) it stayed, 3.18 deviance units above glmmTMB's optimum (logit -2.80).
    """
    rec, data = _fixture("sweepg_zinb2_restart")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb(rec["formula"], data, family=rec["family"],
                       ziformula=rec["ziformula"])
    _check_fit(m, rec)
    zi_ref = rec["beta_zi"]["(Intercept)"]
    assert m.fixef_zi.iloc[0] == pytest.approx(zi_ref, abs=COEF_RTOL * abs(zi_ref) + 1e-3)


@pytest.fixture(scope="module")
def crossed():
    return _fixture("sweepg_crossed_sefit")


def test_prediction_se_of_crossed_terms(crossed):
    """se_fit with two crossed grouping factors (the blocked Laplace Hessian): on the
    fitting rows and on new rows with a new level, as glmmTMB's predict(se.fit = TRUE)."""
    fx, data = crossed
    rec = fx["poisson"]
    m = mm.glmmtmb(rec["formula"], data, family="poisson")
    _check_fit(m, rec)
    p = m.predict(type="link", se_fit=True)
    np.testing.assert_allclose(p["fit"].to_numpy()[:12], rec["link_fit"],
                               rtol=PRED_RTOL, atol=PRED_RTOL)
    np.testing.assert_allclose(p["se_fit"].to_numpy()[:12], rec["link_se"],
                               rtol=PRED_SE_RTOL)
    nd = data.iloc[rec["new_rows"]].copy()
    nd["g"] = pd.Categorical(rec["new_g"])
    q = m.predict(nd, type="response", se_fit=True, allow_new_levels=True)
    np.testing.assert_allclose(q["fit"].to_numpy(), rec["new_response_fit"],
                               rtol=PRED_RTOL, atol=PRED_RTOL)
    np.testing.assert_allclose(q["se_fit"].to_numpy(), rec["new_response_se"],
                               rtol=PRED_SE_RTOL)


def test_prediction_se_of_structured_plus_crossed_term(crossed):
    fx, data = crossed
    rec = fx["gaussian"]
    m = mm.glmmtmb(rec["formula"], data, family="gaussian")
    _check_fit(m, rec)
    p = m.predict(se_fit=True)
    np.testing.assert_allclose(p["fit"].to_numpy()[:12], rec["link_fit"],
                               rtol=PRED_RTOL, atol=PRED_RTOL)
    np.testing.assert_allclose(p["se_fit"].to_numpy()[:12], rec["link_se"],
                               rtol=PRED_SE_RTOL)


def test_prediction_se_of_a_new_level_has_its_prior_variance(crossed):
    """A new level (no data) has its random effect at 0 with the prior's variance: glmmTMB's
    se.fit includes it (its refit gives the new rows weight 0); we had left it out, 0.14
    instead of 0.50 on the link scale for a new g here."""
    fx, data = crossed
    rec, nd_rec = fx["poisson_one"], fx["poisson"]
    m = mm.glmmtmb(rec["formula"], data, family="poisson")
    _check_fit(m, rec)
    nd = data.iloc[nd_rec["new_rows"]].copy()
    nd["g"] = pd.Categorical(nd_rec["new_g"])
    q = m.predict(nd, type="link", se_fit=True, allow_new_levels=True)
    np.testing.assert_allclose(q["fit"].to_numpy(), rec["new_link_fit"], rtol=PRED_RTOL,
                               atol=PRED_RTOL)
    np.testing.assert_allclose(q["se_fit"].to_numpy(), rec["new_link_se"], rtol=PRED_SE_RTOL)


def test_prediction_se_of_a_new_level_of_a_structured_term(crossed):
    fx, data = crossed
    rec = fx["gaussian"]
    m = mm.glmmtmb(rec["formula"], data, family="gaussian")
    nd = data.iloc[rec["new_rows"]].copy()
    nd["s"] = pd.Categorical(rec["new_s"])
    q = m.predict(nd, se_fit=True, allow_new_levels=True)
    np.testing.assert_allclose(q["fit"].to_numpy(), rec["new_fit"], rtol=PRED_RTOL,
                               atol=PRED_RTOL)
    np.testing.assert_allclose(q["se_fit"].to_numpy(), rec["new_se"], rtol=PRED_SE_RTOL)


def test_start_with_a_singular_structured_correlation_is_a_clear_error():
    """A start whose gau correlation is 1 to rounding between every pair of sites (range
    e^6 = 403 over distances under 5) raised numpy's 'Matrix is not positive definite'
    from deep inside the covariance factor."""
    rng = np.random.default_rng(11)
    sites = np.array([0.5, 1.3, 2.2, 3.0, 4.1])
    data = pd.DataFrame({"g": pd.Categorical(np.repeat([f"g{i}" for i in range(8)], 5)),
                         "sx": np.tile(sites, 8)})
    data["y"] = rng.normal(size=len(data)) + np.repeat(rng.normal(size=8), 5)
    with pytest.raises(mm.MixedModelsError, match="not numerically positive definite"):
        mm.glmmtmb("y ~ 1 + gau(0 + pos(sx) | g)", data, family="gaussian",
                   start={"theta.cond": [0.0, 6.0]})


#: our quadrature log-likelihood keeps the full -2 log p (lme4's nAGQ > 1 drops the
#: saturated part, another scale): it is within this of the Laplace one on this set
AGQ_LAPLACE_ATOL = 0.5


def test_glmer_cbind_with_prior_weights_loglik_as_lme4():
    """lme4 weights the binomial log-density of a cbind response, p log dbinom(k; n, mu);
    we had the binomial coefficients of p k successes in p n trials: logLik -859.43 for
    lme4's -1151.50 on the sweep's set (estimates equal)."""
    rec = json.loads((FIXTURES / "sweepg_cbind_weights.json").read_text(encoding="utf-8"))
    data = pd.read_csv(FIXTURES / "sweepg_cbind_weights.csv")
    data["g"] = data["g"].astype("category")
    lap = mm.glmer(rec["formula"], data, family="binomial", weights=rec["weights"])
    assert lap.loglik == pytest.approx(rec["laplace"]["logLik"], abs=1e-5)
    assert lap.aic == pytest.approx(rec["laplace"]["AIC"], abs=1e-5)
    assert -2.0 * lap.loglik == pytest.approx(rec["glmmTMB_objective"], abs=OBJECTIVE_ATOL)
    np.testing.assert_allclose(lap.fixef.to_numpy(), list(rec["laplace"]["beta"].values()),
                               rtol=1e-4)
    agq = mm.glmer(rec["formula"], data, family="binomial", weights=rec["weights"], nAGQ=7)
    np.testing.assert_allclose(agq.fixef.to_numpy(), list(rec["agq7"]["beta"].values()),
                               rtol=1e-4)
    assert agq.loglik == pytest.approx(rec["laplace"]["logLik"], abs=AGQ_LAPLACE_ATOL)


def test_glmer_unit_weights_and_proportions_unchanged():
    """The shift is zero without prior weights, and a proportion response with the trials
    as weights already has lme4's coefficients (its trials are the weights)."""
    data = pd.read_csv(FIXTURES / "sweepg_cbind_weights.csv")
    data["g"] = data["g"].astype("category")
    data["prop"] = data["succ"] / data["trials"]
    a = mm.glmer("cbind(succ, trials - succ) ~ x + (1 | g)", data, family="binomial")
    b = mm.glmer("prop ~ x + (1 | g)", data, family="binomial", weights="trials")
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)


def test_dask_glmer_cbind_with_prior_weights_as_in_memory():
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    rec = json.loads((FIXTURES / "sweepg_cbind_weights.json").read_text(encoding="utf-8"))
    data = pd.read_csv(FIXTURES / "sweepg_cbind_weights.csv")
    data["g"] = data["g"].astype("category")
    with dask.config.set(scheduler="synchronous"):
        m = mm.glmer(rec["formula"], dd.from_pandas(data, npartitions=3), family="binomial",
                     weights=rec["weights"])
    assert m.loglik == pytest.approx(rec["laplace"]["logLik"], abs=1e-5)
