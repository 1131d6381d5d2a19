"""Parity of mm.glmmtmb with glmmTMB 1.1.5 on combinations of features (lane sweepx):
covariance structures x families x extras (zero inflation, dispersion models, offsets,
weights, crossed / nested terms, factor slopes, missing values, scaled covariates, odd
names), on a simulated set and the bundled data sets. The fixture is made by
tools/r/sweep/sweepx_glmmtmb.R (tests/fixtures/sweepx/); models whose fit takes more than a
half a second here are marked slow (``-m slow``).

Where glmmTMB did not converge (listed in ``GLMMTMB_WRONG`` with the evidence) only our
objective is checked: it must be at or below glmmTMB's.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sweepx"
RECORDS = json.loads((FIXTURE / "sweepx_glmmtmb.json").read_text(encoding="utf-8"))

#: objective (-2 log-likelihood or REML criterion), absolute
OBJECTIVE_ATOL = 1e-4
#: fixed effects of every component, relative to max(|estimate|, SE)
COEF_RTOL = 1e-4
#: standard errors of the fixed effects, relative
SE_RTOL = 1e-3
#: random-effect standard deviations, relative (absolute below SD_FLOOR); two sds both
#: below SD_ZERO are the same boundary estimate (the objective is flat there to ~sd^2:
#: glmmTMB stops at 6e-5 where we reach 3e-11)
SD_RTOL = 1e-3
SD_FLOOR = 1e-2
SD_ZERO = 5e-3
#: random-effect correlations, absolute
CORR_ATOL = 1e-3
#: response-scale predictions (relative, absolute near 0)
PRED_RTOL = 1e-4

#: glmmTMB's fit is not an optimum here (its convergence code, pdHess and our lower
#: objective are in benchmarks/results/sweepx_notes.md): ours must be at or below it
GLMMTMB_WRONG: dict[str, str] = {
    "us3_gauss_dispx": "glmmTMB false convergence (code 1), non-pd Hessian; ours 2.8e-5 lower",
    "us3_nb2_zi1": "code 1, non-pd, zi logit running to -inf; ours 2.2e-4 lower",
    "us3_gamma_crossed": "code 1, non-pd; ours 1.6e-5 lower",
    "us3_tweedie": "code 1, non-pd; ours 2.2e-4 lower",
    "fslope_nb1_dispf": "code 1, non-pd; ours 4.4e-4 lower",
    "xsmall_gauss_slope": "slope on x * 1e-3: glmmTMB stops 9.99 above the optimum that "
                          "lme4 and mm.lmer reach (non-pd Hessian)",
}

#: the optimum is on a boundary or a flat ridge: what is not determined there is not
#: compared ("se": the SEs of every component; a component name: its estimates); the
#: objective and everything else still are
BOUNDARY: dict[str, tuple[str, frozenset]] = {
    "sal_nb2_zi_disp": ("zero-inflation logit of mined = yes runs to -inf (glmmTMB -14.5 "
                        "with SE 3035, ours -17.2; objectives 2e-7 apart)",
                        frozenset({"se", "zi"})),
    "exp_nb2_zi1": ("exp() range e^18.8: correlation 1, a flat direction (glmmTMB's Hessian "
                    "not positive definite)", frozenset({"se"})),
}

#: our fit takes longer than a couple of seconds on the shared machine
SLOW = {"us3_tweedie", "toep_beta", "verbagg_crossed", "exp_nb2_zi1", "ar1sim_ou_reml",
        "ar1_tweedie", "owls_nb1_offset_fslope", "grouse_pois_crossed_obs", "contra_fslope",
        "sal_nb2_zi_disp", "tweedie_dispx_offset", "cake_gamma_disp_recipe",
        "orth_gamma_disp_sex", "beta_zi_crossed", "us3_nb2_zi1", "crossed_genpois_zi1",
        "us3_gamma_crossed", "fslope_nb1_dispf", "nested_nb2_zix", "diag_nb1_zix",
        "diag_beta_crossed", "cs_nb2_zix", "ar1_binom_cbind_h"}


def _load(name: str) -> pd.DataFrame:
    if name in mm.datasets.names():
        return mm.datasets.load(name)
    df = pd.read_csv(FIXTURE / "data" / f"{name}.csv", encoding="utf-8")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.Categorical(df[col], categories=sorted(df[col].dropna().unique()))
    return df


_DATA: dict[str, pd.DataFrame] = {}


def _data(name: str) -> pd.DataFrame:
    if name not in _DATA:
        _DATA[name] = _load(name)
    return _DATA[name].copy()


def _fit(rec: dict, data: pd.DataFrame):
    kw = dict(family=rec["family"], link=rec["link"], ziformula=rec["ziformula"],
              dispformula=rec["dispformula"], REML=bool(rec["REML"]))
    for key in ("weights", "offset"):
        if rec.get(key):
            kw[key] = rec[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmmtmb(rec["formula"], data, **kw)


def _params():
    out = []
    for rid, rec in RECORDS.items():
        marks = [pytest.mark.slow] if rid in SLOW or rec.get("slow") else []
        out.append(pytest.param(rid, id=rid, marks=marks))
    return out


def _check_component(m, rec: dict, comp: str, key: str, sekey: str,
                     check_se: bool = True) -> None:
    ref = rec.get(key) or {}
    if not ref:
        return
    tab = m.coef_table(comp)
    names = list(m.design.components[comp].fixed.r_names)
    est = dict(zip(names, tab["Estimate"], strict=True))
    se = dict(zip(names, tab["Std. Error"], strict=True))
    ref_se = rec.get(sekey) or {}
    assert set(est) == set(ref), (comp, sorted(est), sorted(ref))
    for name, r in ref.items():
        # glmmTMB's vcov() leaves out the dispersion model: our SE scales it there
        scale = max(abs(r), abs(ref_se.get(name) or se[name]))
        assert abs(est[name] - r) <= COEF_RTOL * scale, (comp, name, est[name], r)
        if ref_se.get(name) is not None and check_se:
            assert se[name] == pytest.approx(ref_se[name], rel=SE_RTOL), (comp, name)


def _check_varcorr(m, rec: dict) -> None:
    for comp in ("cond", "zi"):
        refs = (rec.get("varcorr") or {}).get(comp) or []
        if not refs:
            continue
        ours = m.varcorr_of(comp).terms
        assert len(ours) == len(refs), comp
        unused = list(ours)
        for r in refs:
            sd_ref = np.atleast_1d(np.asarray(r["sd"], dtype=float))
            cor_ref = np.atleast_1d(np.asarray([np.nan if c is None else c
                                                for c in (r.get("cor") or [])], dtype=float))

            def err(t, sd_ref=sd_ref, cor_ref=cor_ref):
                if len(t.sd) != len(sd_ref):
                    return np.inf
                sd = np.asarray(t.sd)
                dev = np.abs(sd - sd_ref) / np.maximum(np.abs(sd_ref), SD_FLOOR) / SD_RTOL
                e = np.max(np.where((sd < SD_ZERO) & (sd_ref < SD_ZERO), 0.0, dev))
                if cor_ref.size and np.isfinite(cor_ref).any():
                    # R's lower.tri() runs down the columns
                    c = np.asarray(t.corr).T[np.triu_indices(len(t.sd), 1)]
                    ok = np.isfinite(cor_ref)
                    e = max(e, np.max(np.abs(c[ok] - cor_ref[ok])) / CORR_ATOL)
                return e

            best = min(unused, key=err)
            assert err(best) <= 1.0, (comp, r["group"], best.sd, sd_ref)
            unused.remove(best)


@pytest.mark.parametrize("rid", _params())
def test_sweepx_matches_glmmtmb(rid):
    rec = RECORDS[rid]
    m = _fit(rec, _data(rec["data"]))
    if "error" in rec:
        pytest.fail(f"glmmTMB failed ({rec['error']}); record it in GLMMTMB_WRONG")
    # never above glmmTMB's optimum
    assert m.objective <= rec["objective"] + OBJECTIVE_ATOL
    if rid in GLMMTMB_WRONG:
        return
    assert m.objective == pytest.approx(rec["objective"], abs=OBJECTIVE_ATOL)
    for comp, key, sekey in (("cond", "beta", "se"), ("zi", "beta_zi", "se_zi"),
                             ("disp", "beta_disp", "se_disp")):
        skip = BOUNDARY.get(rid, ("", frozenset()))[1]
        if comp not in skip:
            _check_component(m, rec, comp, key, sekey, check_se="se" not in skip)
    _check_varcorr(m, rec)
    ref = np.asarray([np.nan if v is None else v for v in rec["pred_resp_head"]], float)
    ours = np.asarray(m.predict(type="response"), dtype=float)[:5]
    np.testing.assert_allclose(ours, ref, rtol=PRED_RTOL, atol=PRED_RTOL)


def test_truncated_nbinom2_start_off_the_log_series_ridge():
    """Without random effects the truncated nbinom2 fit ran off along its log-series limit
    (size and mean -> 0 together: log size -23.9, intercept -22.7) and the full model,
    started there, stayed: 882.392, 1.40 above glmmTMB's interior optimum. The dispersion
    and conditional coefficients now restart at their moment starts
    (fitting/glmmtmb.py DISP_CARRY_MAX_SHIFT)."""
    rec = RECORDS["diag_tnb2"]
    m = _fit(rec, _data(rec["data"]))
    assert m.objective == pytest.approx(rec["objective"], abs=OBJECTIVE_ATOL)
    ref = rec["beta_disp"]["(Intercept)"]
    assert m.fixef_disp.iloc[0] == pytest.approx(ref, abs=COEF_RTOL * abs(ref) + 1e-3)


def test_ar1_repeated_times_replicates_or_a_clear_error():
    """ar1 over the crossed factor h repeats each time on 3 rows per group (median): a
    replicated design, which glmmTMB 1.1.5 fits with the rows of a cell sharing one
    random effect, and so do we. Over g (one row per cell) one time typed twice is a
    data error naming the term, the time and the group."""
    d = _data("sx")
    m = mm.glmmtmb("y_pos ~ x + ar1(0 + ftt | h)", d, family="Gamma", link="log")
    assert np.isfinite(m.objective)
    bad = d.copy()
    first = bad.index[bad["g"] == bad["g"].iloc[0]]
    bad.loc[first[1], "ftt"] = bad.loc[first[0], "ftt"]
    with pytest.raises(mm.DataError, match=r"ar1\(\).*appears 2 times in group"):
        mm.glmmtmb("y_pos ~ x + ar1(0 + ftt | g)", bad, family="Gamma", link="log")
