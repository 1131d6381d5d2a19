"""Residual-model parameters at the boundary of their range, against nlme 3.1.162
(tools/r/rside_boundary_fixtures.R -> tests/fixtures/rside_boundary).

* varConstPower's constant running to 0: the fit reaches nlme's optimum (the log-scale
  optimizer stopped up to 0.08 log-likelihood units short; :mod:`.limit_scale`).
* ``intervals()`` where a parameter is flat at its boundary: nlme's numbers where its
  approximate covariance is positive definite, NaN with a note for the flat parameters and
  intervals for the others otherwise (nlme refuses there); never an exception.

Tolerances as tests/test_rside_nlme.py: log-likelihood 1e-4 absolute or higher,
coefficients 1e-4 relative to max(|est|, SE), standard errors 1e-3 relative, variance
parameters and sigma 1e-3 relative to max(1, |value|); interval end points 5e-3 of the
interval's width on nlme's transformed scale.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LOGLIK_TOL = 1e-4
COEF_TOL = 1e-4
SE_TOL = 1e-3
PAR_TOL = 1e-3
INTERVAL_TOL = 5e-3
#: ... where we hold a flat parameter that nlme's positive definite Hessian keeps: the others'
#: intervals are then conditional on it, nlme's joint (a flat constant at 3e-7 correlated
#: with the other stratum's constant moves that one's upper end by 1% of the width)
HELD_TOL = 2e-2
#: nlme's interval of a parameter we hold spans more than this factor (it is flat there too)
FLAT_SPAN = 1e3


@cache
def _corpus() -> dict:
    text = (FIXTURES / "rside_boundary" / "fixtures.json").read_text(encoding="utf-8")
    return {m["name"]: m for m in json.loads(text)["models"]}


def _fit(name: str, call: str | None = None):
    fx = _corpus()[name]
    d = pd.read_csv(FIXTURES / fx["data_file"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.ConvergenceWarning)
        warnings.filterwarnings("ignore", category=mm.SingularFitWarning)
        return eval(call or fx["py_call"], {"mm": mm, "d": d, "np": np})


def _vec(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


CONST_POWER = ["cp_sweep", "cp_strata", "cp_strata_ml", "cp_fitted_strata",
               "cp_lme_strata", "cp_lme_ar1_ml", "cp_hours", "cp_comb_ident"]


@pytest.mark.parametrize("name", CONST_POWER)
def test_const_power_reaches_nlmes_optimum(name):
    """No convergence warning, nlme's log-likelihood (or higher), its estimates. On the
    code before: cp_sweep 2.6e-4 short (the sweep's gls_constpower_strata), cp_lme_strata
    0.08, cp_fitted_strata 6.7e-3 with a fitted(.) loop that never settled."""
    fx = _corpus()[name]
    m = _fit(name)
    assert m.loglik >= fx["logLik"] - LOGLIK_TOL, (m.loglik, fx["logLik"])
    se_ref = _vec(fx["se"])
    coef_ref = _vec(fx["coef"])
    assert np.all(np.abs(m.fixef.to_numpy() - coef_ref)
                  <= COEF_TOL * np.maximum(np.abs(coef_ref), se_ref))
    assert m.se.to_numpy() == pytest.approx(se_ref, rel=SE_TOL)
    assert m.sigma == pytest.approx(fx["sigma"], rel=PAR_TOL)
    ours = m.var_params
    for key, ref in fx["var_params"].items():
        # nlme's varComb names carry the part's letter (A.mid, B.const)
        got = ours[key] if key in ours else ours[key.split(".", 1)[1]]
        assert abs(got - ref) <= PAR_TOL * max(1.0, abs(ref)), (key, got, ref)


def test_const_power_limit_is_var_power():
    """A constant fitted at 0 makes the model varPower in that stratum: the constant is
    reported as 0 (to 1e-12) and the fit is as good as nlme's 5e-7."""
    m = _fit("cp_hours")
    assert m.var_params["const.day shift"] < 1e-12
    assert m.var_params["const.night shift"] == pytest.approx(203.889, rel=1e-3)


def test_const_power_start_value_still_honoured():
    """``value`` starts the optimizer at (c, delta); the natural-scale phase keeps it."""
    fx = _corpus()["cp_strata"]
    m = _fit("cp_strata", "mm.gls('y ~ x', d, variance=mm.var_const_power("
                          "form='~ v | s', const=1.0, power=0.5))")
    assert m.loglik >= fx["logLik"] - LOGLIK_TOL



def test_limit_stage_only_where_a_limit_is_competitive(monkeypatch):
    """The natural-scale stages run where the constant's limit 0 comes near the log-scale
    optimum (cp_hours: one stratum's constant fits at 0) and are skipped where it is far
    (a constant of 7.9 whose limit costs ~300 deviance units): there the fit is the
    log-scale optimum, nlme's log-likelihood to 1e-8."""
    import sys

    from mixedmodels.fitting import rside as fit_rside

    calls = []
    real = fit_rside._limit_competitive

    def spy(obj, x, fval, mask):
        out = real(obj, x, fval, mask)
        calls.append(out[0])
        return out

    monkeypatch.setattr(fit_rside, "_limit_competitive", spy)
    _fit("cp_hours")
    assert calls and calls[-1] is True
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import rside_fixtures as rf

    for fx in (f for f in rf.models("gls", "lme") if "constpower" in f["name"]):
        calls.clear()
        m = rf.fit(fx)
        assert calls == [False], fx["name"]
        assert m.loglik == pytest.approx(fx["logLik"], abs=1e-8)

# -- intervals --------------------------------------------------------------------------------
BOUNDARY = ["cp_sweep", "cp_fitted_strata", "cp_hours", "nest_ar1_sd0", "nb_lme_sd0_ar1",
            "nb_gls_exp_range0", "nb_gls_exp_nugget", "sp_gls_ratio", "sp_gls_gaus",
            "sp_gls_lin_nugget"]
#: nlme's intervals key -> ours
PAIRS = {"corStruct": "correlation", "varStruct": "variance", "sigma": "sigma",
         "reStruct": "random"}


def _intervals(name):
    m = _fit(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iv = m.intervals()
    return m, iv, [w for w in caught if issubclass(w.category, mm.SingularFitWarning)]


def _log_scale(key: str) -> bool:
    return key in ("sigma", "random")


@pytest.mark.parametrize("name", BOUNDARY)
def test_intervals_at_a_boundary_never_fail(name):
    """Fixed effects as nlme's (``which = "coef"``); every variance parameter has an
    interval or NaN bounds with a note naming it; the warning names the NaN ones."""
    fx = _corpus()[name]
    _m, iv, caught = _intervals(name)
    fixed, ref = iv["fixed"], fx["intervals_fixed"]
    width = _vec(ref["upper"]) - _vec(ref["lower"])
    for col, key in (("lower", "lower"), ("est.", "est"), ("upper", "upper")):
        assert np.all(np.abs(fixed[col].to_numpy() - _vec(ref[key]))
                      <= INTERVAL_TOL * width), col
    held = []
    for key, frame in iv.items():
        if key == "fixed":
            continue
        nan = frame["lower"].isna().to_numpy()
        assert np.array_equal(nan, frame["upper"].isna().to_numpy())
        assert np.all(np.isfinite(frame["est."].to_numpy()))
        for name_, is_nan in zip(frame.index, nan, strict=True):
            if is_nan:
                held.append(name_)
                assert any(n.startswith(f"{name_}:") for n in frame.attrs["notes"])
        ok = ~nan
        assert np.all(frame["lower"].to_numpy()[ok] <= frame["est."].to_numpy()[ok])
        assert np.all(frame["est."].to_numpy()[ok] <= frame["upper"].to_numpy()[ok])
    if held:
        assert len(caught) == 1
        assert all(h in str(caught[0].message) for h in held)
    else:
        assert not caught


@pytest.mark.parametrize("name", [n for n in BOUNDARY
                                  if isinstance(_corpus()[n]["intervals"], dict)])
def test_intervals_where_nlme_gives_them(name):
    """Where nlme's approximate covariance is positive definite, ours match its end points
    on the transformed scale for every parameter with an ordinary interval (those with a
    note are flat: nlme's end points there depend on its fdHess step)."""
    fx = _corpus()[name]
    _m, iv, _ = _intervals(name)
    any_held = any(frame["lower"].isna().any() for k, frame in iv.items() if k != "fixed")
    tol = HELD_TOL if any_held else INTERVAL_TOL
    compared = 0
    for r_key, key in PAIRS.items():
        if r_key not in fx["intervals"]:
            continue
        want, got = fx["intervals"][r_key], iv[key]
        lo, est, hi = (_vec(want[k]) for k in ("lower", "est", "upper"))
        n = lo.size
        # nlme's reStruct: the outermost level only (g in these fixtures)
        frame = got[[r.split("|")[-1] == "g" for r in got.index]] if key == "random" \
            else got
        assert len(frame) == n
        f = np.log if _log_scale(key) else (lambda x: x)
        for i in range(n):
            if np.isnan(frame["lower"].iloc[i]):
                assert hi[i] > FLAT_SPAN * max(lo[i], 1e-300), (key, frame.index[i])
                continue
            if any(nm.startswith(f"{frame.index[i]}:") for nm in got.attrs["notes"]):
                continue
            width = f(hi[i]) - f(lo[i])
            for col, ref in (("lower", lo[i]), ("est.", est[i]), ("upper", hi[i])):
                assert abs(f(frame[col].iloc[i]) - f(ref)) <= tol * width, \
                    (key, frame.index[i], col, frame[col].iloc[i], ref)
            compared += 1
    assert compared


@pytest.mark.parametrize("name", ["nb_gls_exp_range0", "nb_gls_exp_nugget", "sp_gls_ratio",
                                  "sp_gls_gaus", "sp_gls_lin_nugget"])
def test_held_correlation_leaves_the_independent_models_sigma_interval(name):
    """With the correlation flat at its boundary (held, or with a note), sigma's interval is
    that of the model without correlation, where REML's curvature in log sigma is
    ``2 (n - p)``: ``sigma exp(+- z / sqrt(2 (n - p)))`` (an independent computation; nlme
    refuses intervals on three of these)."""
    m, iv, _ = _intervals(name)
    assert iv["correlation"].attrs["notes"]
    z = stats.norm.ppf(0.975)
    half = z / np.sqrt(2.0 * (m.nobs - m.design.p))
    got = np.log(iv["sigma"][["lower", "upper"]].to_numpy()[0])
    want = np.log(m.sigma) + np.array([-half, half])
    assert got == pytest.approx(want, abs=INTERVAL_TOL * 2 * half)


def test_flat_sd_is_held_not_refused():
    """The inner standard deviation at ~0 (6e-8; we refused with "standard deviation near
    0"): its interval is NaN, the others' come with it held there."""
    _m, iv, caught = _intervals("nest_ar1_sd0")
    rnd = iv["random"]
    inner = [n for n in rnd.index if "h:g" in n]
    assert inner and rnd.loc[inner[0], "est."] < 1e-6
    assert np.isnan(rnd.loc[inner[0], "lower"])
    assert caught and inner[0] in str(caught[0].message)


def test_sd_exactly_zero_is_held():
    """theta exactly on its bound 0 (log sd = -inf on nlme's scale): held there, est. 0."""
    from dataclasses import replace

    m = _fit("nest_ar1_sd0")
    theta = m.theta.copy()
    k = int(np.argmin(theta))
    theta[k] = 0.0
    sol = m.objective_function.solve(np.concatenate([theta, m.phi]))
    m0 = replace(m, solution=sol)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iv = m0.intervals()
    rnd = iv["random"]
    assert (rnd["est."] == 0.0).sum() == 1
    zero = rnd.index[rnd["est."] == 0.0][0]
    assert np.isnan(rnd.loc[zero, "upper"])
    assert np.all(np.isfinite(iv["sigma"].to_numpy()))
    assert any(zero in str(w.message) for w in caught)
