"""simulate / refit / bootstrap / pb_test: reproducibility, the simulated distribution
against the model's own moments, refits against fresh fits, failures kept apart, and the
parametric-bootstrap reference distribution against PBmodcomp's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.inference.pbtest import LRT_ZERO_TOL
from test_inference_cases import fit, fixture

#: Monte Carlo checks: allowed deviation in standard errors of the simulation
MC_SE = 4.0
#: refit vs a fresh fit of the same data (both optimizers stop within their tolerances)
REFIT_RTOL = 1e-5


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


def test_simulate_is_reproducible_and_replicate_wise(sleep):
    m = fit("ss_reml")
    a = m.simulate(5, seed=42)
    b = m.simulate(5, seed=42)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == [f"sim_{i}" for i in range(1, 6)]
    assert a.index.equals(sleep.index)
    # replicate i does not depend on nsim
    np.testing.assert_array_equal(m.simulate(2, seed=42).to_numpy(), a.to_numpy()[:, :2])
    assert not np.allclose(a["sim_1"], a["sim_2"])


def test_simulated_moments_match_the_model():
    """Mean X beta and, per subject, covariance sigma^2 (I + Z Lambda Lambda' Z')."""
    m = fit("ss_reml")
    nsim = 3000
    sims = m.simulate(nsim, seed=7).to_numpy()
    d = m.design
    mean = d.X @ m.beta
    t = d.terms[0]
    lam = t.structure.lambda_(m.theta)
    rows = np.flatnonzero(t.grouping.codes == 0)
    Z = t.Z[rows]
    cov = m.sigma ** 2 * (np.eye(rows.size) + Z @ lam @ lam.T @ Z.T)
    sd = np.sqrt(np.diag(cov))
    se_mean = sd / np.sqrt(nsim)
    assert np.all(np.abs(sims[rows].mean(axis=1) - mean[rows]) < MC_SE * se_mean)
    emp = np.cov(sims[rows])
    # sampling sd of a covariance estimate: sqrt((s_ij^2 + s_ii s_jj) / nsim)
    se_cov = np.sqrt((cov ** 2 + np.outer(sd ** 2, sd ** 2)) / nsim)
    assert np.all(np.abs(emp - cov) < MC_SE * se_cov)


def test_conditional_simulation_keeps_the_random_effects():
    m = fit("ss_reml")
    sims = m.simulate(2000, seed=3, re_form=None).to_numpy()
    resid = sims - m.fitted().to_numpy()[:, None]
    assert abs(resid.mean()) < MC_SE * m.sigma / np.sqrt(resid.size)
    assert resid.std() == pytest.approx(m.sigma, rel=0.01)


def test_refit_equals_a_fresh_fit(sleep):
    m = fit("ss_reml")
    y = m.simulate(1, seed=11)["sim_1"].to_numpy()
    r = m.refit(y)
    fresh = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep.assign(Reaction=y))
    assert r.objective == pytest.approx(fresh.objective, abs=1e-6)
    np.testing.assert_allclose(r.beta, fresh.beta, rtol=REFIT_RTOL)
    np.testing.assert_allclose(r.theta, fresh.theta, rtol=1e-3, atol=1e-5)
    assert r.reml and r.design.X is m.design.X
    with pytest.raises(mm.DataError, match="shape"):
        m.refit(y[:-1])


def test_bootstrap_reproducible_across_jobs_and_consistent_with_simulate():
    m = fit("ss_reml")

    def slope(f):
        return f.fixef["Days"]

    one = m.bootstrap(slope, nsim=12, seed=5, n_jobs=1)
    two = m.bootstrap(slope, nsim=12, seed=5, n_jobs=2)
    pd.testing.assert_frame_equal(one.replicates, two.replicates)
    y0 = m.simulate(1, seed=5)["sim_1"].to_numpy()
    assert one.replicates.iloc[0, 0] == pytest.approx(m.refit(y0).fixef["Days"], rel=1e-10)
    assert one.t0.iloc[0] == pytest.approx(m.fixef["Days"])
    assert one.n_failed == 0 and one.nsim == 12


def test_bootstrap_counts_failed_replicates():
    m = fit("ss_reml")
    days = m.fixef["Days"]

    def fragile(f):
        if f.fixef["Days"] > days:
            raise RuntimeError("replicate above the estimate")
        return [f.fixef["Days"], f.sigma]

    res = m.bootstrap(fragile, nsim=20, seed=2)
    assert res.n_failed + len(res.replicates) == 20
    assert 0 < res.n_failed < 20
    assert all("above the estimate" in msg for _, msg in res.failures)
    assert (res.replicates["t1"] <= days).all()
    assert set(res.replicates.index).isdisjoint(i for i, _ in res.failures)


def test_default_bootstrap_and_boot_confint_cover_the_estimates():
    m = fit("ss_reml")
    res = m.bootstrap(nsim=60, seed=1)
    assert list(res.t0.index) == ["sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject",
                                  "sd_Days|Subject", "sigma", "Intercept", "Days"]
    ci = res.confint()
    assert np.all(ci["lower"] < res.t0) and np.all(res.t0 < ci["upper"])
    summ = res.summary()
    assert list(summ.columns) == ["original", "bias", "std. error"]
    # the bootstrap SE of the fixed effects estimates their standard errors
    np.testing.assert_allclose(summ.loc[["Intercept", "Days"], "std. error"],
                               m.se.to_numpy(), rtol=0.35)
    boot_ci = m.confint(method="boot", nsim=60, seed=1)
    pd.testing.assert_frame_equal(boot_ci, ci)


def test_lm_simulate_and_refit(sleep):
    m0 = mm.lm("Reaction ~ Days", sleep)
    sims = m0.simulate(2000, seed=1).to_numpy()
    np.testing.assert_allclose(sims.std(axis=1).mean(), m0.sigma, rtol=0.02)
    r = m0.refit(sims[:, 0])
    assert r.df == m0.df
    np.testing.assert_allclose(r.beta, np.linalg.lstsq(m0.design.X, sims[:, 0],
                                                       rcond=None)[0], rtol=1e-10)


@pytest.fixture(scope="module")
def pb(sleep):
    m2 = mm.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", sleep, REML=False)
    m1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep, REML=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return mm.pb_test(m2, m1, nsim=1000, seed=2024, n_jobs=2), m2, m1


def test_pb_test_statistic_and_pvalue(pb):
    res, m2, m1 = pb
    ref = fixture("pbmodcomp")
    assert res.lrt == pytest.approx(ref["LRT"], abs=1e-4)
    assert res.lrt == pytest.approx(mm.anova(m2, m1).table["Chisq"].iloc[1], rel=1e-12)
    pos = res.reference[res.reference > LRT_ZERO_TOL]
    assert res.p_value == (1 + np.sum(pos > res.lrt)) / (1 + pos.size)
    assert res.table.loc["LRT", "p.value"] == pytest.approx(ref["LRT_p"], rel=1e-3)
    assert res.p_value < 0.01                      # PBmodcomp: 0.002
    assert res.failures == () and res.reference.size == 1000
    assert list(res.summary().index) == ["LRT", "PBtest", "Gamma", "Bartlett", "F"]
    assert "PBtest" in str(res)


def test_pb_reference_distribution_matches_pbmodcomp(pb):
    """Same null distribution as PBmodcomp's 1000 replicates, within Monte Carlo error."""
    res = pb[0]
    ref = fixture("pbmodcomp")
    n = res.reference.size
    zero = np.mean(res.reference <= LRT_ZERO_TOL)
    se_share = np.sqrt(2 * 0.25 / n)
    assert abs(zero - ref["ref_zero_share"]) < MC_SE * se_share
    pos = res.reference[res.reference > LRT_ZERO_TOL]
    se_mean = np.sqrt(ref["ref_pos_var"] / ref["n_pos"] + pos.var(ddof=1) / pos.size)
    assert abs(pos.mean() - ref["ref_pos_mean"]) < MC_SE * se_mean
    assert np.quantile(res.reference, 0.95) == pytest.approx(ref["ref_quantiles"][2], rel=0.3)


def test_pb_test_rejects_wrong_order(pb):
    _, m2, m1 = pb
    with pytest.raises(ValueError, match="larger model first"):
        mm.pb_test(m1, m2, nsim=5)


def test_progress_is_reported_on_request(capsys):
    from mixedmodels.inference.replicates import run_replicates

    run = run_replicates(lambda i: [i, i * i], 5, progress=True, label="demo")
    assert [v[1] for v in run.values] == [0, 1, 4, 9, 16]
    err = capsys.readouterr().err
    assert "demo" in err and "5/5" in err      # tqdm's bar or the plain fallback
    quiet = run_replicates(lambda i: i, 3, progress=False)
    assert quiet.failures == () and capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="nsim"):
        run_replicates(lambda i: i, 0)


def test_unpicklable_task_without_fork_runs_in_one_process(monkeypatch):
    import mixedmodels.inference.replicates as rep

    monkeypatch.setattr(rep, "_fork_available", lambda: False)
    with pytest.warns(rep.ParallelWarning, match="one process"):
        run = rep.run_replicates(lambda i: 2 * i, 4, n_jobs=2)
    assert run.values == [0, 2, 4, 6]
