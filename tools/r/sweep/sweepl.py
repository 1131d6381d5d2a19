"""Compare our lmer / glmer / glmer_nb fits with the lme4 results of sweepl_lme4.R.

    python tools/r/sweep/sweepl.py --out /tmp/sweepl [--only id1,id2]

Per variant: the objective (ours minus lme4's; negative = ours lower), the worst fixed-effect
difference relative to max(|estimate|, SE), the worst SE difference (relative), theta
(absolute over max(1, |theta|)), sigma, nobs / ngroups / isSingular / dropped columns, and
where the variant asks for it: anova of nested fits (Chisq, Df, p), profile and Wald
intervals (relative to the interval's width), Satterthwaite and Kenward-Roger df / SE / p
(lmerTest, pbkrtest) with their F tables, predictions with new levels and re.form=NA,
simulate and bootstrap shapes. Estimates are compared only where the optima agree
(|d objective| < SAME_OPTIMUM relative). Prints one line per variant, the failures marked
``!!``, and writes OUT/python_sweepl.json.
"""

from __future__ import annotations

import argparse
import json
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

RANEF_ATOL = 1e-3         #: conditional modes / sds: absolute slack (near-singular fits)
SAME_OPTIMUM = 1e-6      #: relative objective difference under which optima are the same
TOL = {"objective": 1e-6, "beta": 1e-5, "se": 1e-4, "theta": 1e-4, "sigma": 1e-5,
       "df": 1e-3, "p": 1e-4, "F": 1e-4, "chisq": 1e-4, "ci": 1e-3, "wald": 1e-5,
       "pred": 1e-5, "nb_theta": 1e-4, "ranef": 1e-4}

_NOISY_HESSIAN = ("lme4's finite-difference Hessian of a devfun noisy at ~5e-6: our SEs "
                  "are stable to 1e-7 over steps 1e-2..1e-4, R's move by up to 0.2% "
                  "between steps (numDeriv on lme4's devfun agrees with ours at d=0.1)")
_DISPERSION = ("documented: Gamma / inverse Gaussian maximize the Laplace likelihood over "
               "the dispersion (glmmTMB's fit); lme4 estimates it from the residuals")
#: Variants whose differences are explained (not bugs of ours); marked "ok*" in the table.
KNOWN = {
    "l_dbar_fac": "(f || g) with a factor: both expand to (1 | g) + (0 + f | g), which is "
                  "over-parameterized: theta is not identified (objectives equal to 1e-12)",
    "l_ns": "ns() is not a formulaic transform (bs() is, and matches)",
    "l_wts": "lme4's profile of fixed effects ignores non-integer prior weights: its x "
             "interval (0.6129, 0.6223) is 1/25 of its own Wald width (0.4979, 0.7305); "
             "ours (0.4969, 0.7299); theta / sigma profiles agree to 1e-6",
    "l_fslope0": "lme4's profile of the 3x3 (0 + f | g) returns NaN for 6 of 7 covariance "
                 "parameters; where it has numbers they agree but cor_fb.fa's lower end",
    "p_slope": "profile interval of a correlation at its +1 bound: 2.3e-3 of the width "
               "(lme4 interpolates the profile by splines); others 1e-5",
    "l_shift": "lme4 stops short on the 1e5-shifted slope (ours 0.47 lower); predictions "
               "follow the fits",
    "gau_log": _DISPERSION,
    "b_cbind_wi": "cbind() with prior weights: estimates and SEs agree; lme4's -2 log L is "
                  "sum w_i (-2 log dbinom(k_i; n_i)), ours -2 log dbinom(w_i k_i; w_i n_i): "
                  "a constant (here 355); fixed on branch h/s13-sweepg (0bfc19f)",
    "p_nb_anova": "R side: lme4's anova refuses models fitted to different data objects",
    "G_log": _DISPERSION, "G_inv": _DISPERSION, "ig_inv": _DISPERSION, "ig_log": _DISPERSION,
    "l_ddf_wts": "pbkrtest ignores prior weights (residual covariance sigma^2 I); ours uses "
                 "sigma^2 W^-1 (tests/test_inference_ddf.py); Satterthwaite agrees",
    "l_wts_zero": "documented: zero-weight rows are left out; lme4 keeps them in n "
                  "(criterion -Inf, sigma and theta from n = 240)",
    "b_prop_wnonint": "non-integer binomial trials: lme4's aic rounds w and w*y inside the "
                      "Laplace criterion; ours is the continuous likelihood (glmmTMB's)",
    **{k: _NOISY_HESSIAN for k in ("b_prop_w", "b_off", "b_agq1", "p_off_term", "p_off_arg",
                                   "b_anova", "b_prof", "p_off_pred", "b_zero_trials",
                                   "p_wts")},
}


def load(out: Path, name: str, rec: dict | None = None) -> pd.DataFrame:
    df = pd.read_csv(out / "data" / f"{name}.csv", encoding="utf-8")
    rec = rec or {}
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) and col != rec.get("as_string"):
            df[col] = pd.Categorical(df[col], categories=sorted(df[col].dropna().unique()))
    if rec.get("ordered"):
        df[rec["ordered"]] = pd.Categorical(df[rec["ordered"]], categories=["lo", "mid", "hi"],
                                            ordered=True)
    if rec.get("unused"):
        col = rec["unused"]
        df[col] = df[col].cat.add_categories(["zz_unused"])
    return df


def rel(a, b, scale=None) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return np.inf
    s = np.maximum(np.abs(b), 1e-12) if scale is None else scale
    return float(np.max(np.abs(a - b) / s)) if a.size else 0.0


def ranef_rel(m, ref: dict) -> float:
    """Worst difference of the conditional modes and their sds (first levels of the first
    grouping factor) relative to max(|mode|, sd)."""
    re = m.ranef(cond_var=True).get(ref["group"])
    if re is None:
        return np.inf
    sd_cols = [c for c in re.columns if str(c).endswith("_condsd")]
    val_cols = [c for c in re.columns if c not in sd_cols]
    rows = re.loc[[type(re.index[0])(lv) for lv in ref["levels"]]] \
        if len(re.index) else re
    val = rows[val_cols].to_numpy(float).ravel()
    sd = rows[sd_cols].to_numpy(float).ravel()
    ref_v, ref_sd = np.asarray(ref["value"], float), np.asarray(ref["condsd"], float)
    if val.shape != ref_v.shape or sd.shape != ref_sd.shape:
        return np.inf
    # absolute slack at singular fits (lme4's theta 4e-8 where ours is 0)
    scale = np.maximum(np.maximum(np.abs(ref_v), ref_sd), RANEF_ATOL)
    return float(max(np.max(np.abs(val - ref_v) / scale),
                     np.max(np.abs(sd - ref_sd) / np.maximum(ref_sd, RANEF_ATOL))))


def fit(rec: dict, data: pd.DataFrame, formula: str | None = None):
    formula = formula or rec["formula"]
    kw = {}
    if rec.get("weights"):
        kw["weights"] = rec["weights"]
    if rec.get("offset"):
        off = rec["offset"]
        kw["offset"] = np.log(data["expo"].to_numpy()) if off == "log(expo)" else off
    if rec["fn"] == "lmer":
        return mm.lmer(formula, data, REML=bool(rec["REML"]), **kw)
    if rec["fn"] == "glmer":
        return mm.glmer(formula, data, family=rec["family"], link=rec.get("link"),
                        nAGQ=int(rec["nAGQ"]), **kw)
    return mm.glmer_nb(formula, data, **kw)


def compare(m, rec: dict, out: Path, data: pd.DataFrame) -> dict:
    r = {}
    bad = []
    if rec["objective"] is None:         # lme4's log-likelihood is -Inf (zero weights)
        r["note"] = "R objective not finite"
        d_obj, same = np.nan, True
    else:
        d_obj = float(m.objective - rec["objective"])
        if d_obj > TOL["objective"] * abs(rec["objective"]):
            bad.append("objective higher")
        same = abs(d_obj) < SAME_OPTIMUM * abs(rec["objective"])
    r["d_obj"] = d_obj
    if not same and d_obj < 0:
        r["note"] = "ours lower"
    ref_b = np.array(list(rec["beta"].values()), float)
    ref_se = np.array(list(rec["se"].values()), float)
    beta, se = np.asarray(m.beta, float), np.asarray(m.se, float)
    names = list(m.design.fixed.r_names)
    if names != list(rec["beta"]):
        r["names"] = f"{names} vs R {list(rec['beta'])}"
        bad.append("names")
    if same:
        r["beta"] = rel(beta, ref_b, np.maximum(np.abs(ref_b), ref_se))
        r["se"] = rel(se, ref_se)
        th = np.asarray(rec["theta"], float)
        r["theta"] = rel(m.theta, th, np.maximum(1.0, np.abs(th)))
        r["sigma"] = rel(m.sigma, rec["sigma"])
        if rec.get("ranef"):
            r["ranef"] = ranef_rel(m, rec["ranef"])
        for k in ("beta", "se", "theta", "sigma") + (("ranef",) if "ranef" in r else ()):
            if not r[k] <= TOL[k]:
                bad.append(k)
        if "nb_theta" in rec:
            r["nb_theta"] = rel(m.family.theta, rec["nb_theta"])
            if not r["nb_theta"] <= TOL["nb_theta"]:
                bad.append("nb_theta")
    if m.nobs != rec["nobs"]:
        bad.append(f"nobs {m.nobs} vs {rec['nobs']}")
    ng = {str(k): int(v) for k, v in m.ngroups.items()}
    if sorted(ng.values()) != sorted(rec["ngroups"].values()):
        bad.append(f"ngroups {ng} vs {rec['ngroups']}")
    if bool(m.is_singular()) != bool(rec["singular"]):
        bad.append(f"singular {m.is_singular()} vs {rec['singular']}")
    dropped = list(getattr(m.design.fixed, "dropped", []) or [])
    if len(dropped) != len(rec.get("dropped") or []):
        bad.append(f"dropped {dropped} vs {rec.get('dropped')}")
    r["bad"] = bad
    return r


def extras(m, rec: dict, out: Path, data: pd.DataFrame, r: dict) -> None:
    bad = r["bad"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if rec.get("anova"):
            m0 = fit(rec, data, rec["anova_formula"])
            a = mm.anova(m0, m, refit=rec.get("anova_refit", True) is not False).table
            ref = rec["anova"]
            r["anova"] = (rel(a["Chisq"].iloc[1], ref["Chisq"]), int(a["Df"].iloc[1]),
                          abs(a["Pr(>Chisq)"].iloc[1] - ref["p"]))
            if not (r["anova"][0] < TOL["chisq"] and r["anova"][1] == ref["Df"]
                    and r["anova"][2] < TOL["p"]):
                bad.append(f"anova {a.iloc[1].to_dict()} vs {ref}")
            if rel(a["deviance"], ref["deviance"]) > TOL["objective"]:
                bad.append("anova deviance")
        if rec.get("ddf"):
            for key, ddf in (("satt", "satterthwaite"), ("kr", "kenward-roger")):
                tab = m.coef_table(ddf=ddf)
                ref = rec[key]
                rd = rel(tab["df"], list(ref["df"].values()))
                rp = float(np.max(np.abs(tab["Pr(>|t|)"].to_numpy()
                                         - np.array(list(ref["p"].values())))))
                r[f"{key}_df"], r[f"{key}_p"] = rd, rp
                if not (rd < TOL["df"] and rp < TOL["p"]):
                    bad.append(f"{key} df/p {rd:.1e}/{rp:.1e}")
                if key == "kr":
                    rs = rel(tab["Std. Error"], list(ref["se"].values()))
                    r["kr_se"] = rs
                    if not rs < TOL["se"]:
                        bad.append(f"kr se {rs:.1e}")
                at = m.anova_table(type=3, ddf=ddf)
                aref = rec[f"anova_{key}"]
                ra = (rel(at["DenDF"], aref["DenDF"]), rel(at["F value"], aref["F"]),
                      float(np.max(np.abs(at["Pr(>F)"].to_numpy() - np.asarray(aref["p"])))))
                r[f"anova_{key}"] = ra
                if not (ra[0] < TOL["df"] and ra[1] < TOL["F"] and ra[2] < TOL["p"]):
                    bad.append(f"anova_{key} {ra}")
        if rec.get("ci_profile"):
            ci = m.confint(method="profile")
            ref = rec["ci_profile"]
            lo, up = np.asarray(ref["lower"], float), np.asarray(ref["upper"], float)
            width = np.maximum(up - lo, 1e-8)
            if len(ci) != len(lo):
                bad.append(f"profile rows {list(ci.index)} vs {ref['names']}")
            else:
                r["ci_profile"] = max(rel(ci["lower"], lo, width), rel(ci["upper"], up, width))
                if not r["ci_profile"] < TOL["ci"]:
                    bad.append(f"profile ci {r['ci_profile']:.1e}")
            ciw = m.confint(method="wald")
            ref = rec["ci_wald"]
            lo, up = np.asarray(ref["lower"], float), np.asarray(ref["upper"], float)
            ciw = ciw.dropna()
            r["ci_wald"] = max(rel(ciw["lower"], lo, up - lo), rel(ciw["upper"], up, up - lo))
            if not r["ci_wald"] < TOL["wald"]:
                bad.append(f"wald ci {r['ci_wald']:.1e}")
        if rec.get("pred_new"):
            nd = pd.read_csv(out / "data" / "newd.csv")
            p1 = m.predict(nd, allow_new_levels=True, type="link")
            p2 = m.predict(nd, allow_new_levels=True, type="response")
            p3 = m.predict(nd, re_form="~0", type="link")
            # relative to max(|prediction|, 1): link-scale values near 0
            r["pred"] = max(
                rel(p, ref, np.maximum(np.abs(np.asarray(ref, float)), 1.0))
                for p, ref in ((p1, rec["pred_new"]), (p2, rec["pred_new_resp"]),
                               (p3, rec["pred_na"]),
                               (np.asarray(m.fitted())[:5], rec["fitted_head"])))
            # one level of the factors, as strings
            nd2 = pd.read_csv(out / "data" / "newd2.csv")
            p4 = m.predict(nd2, allow_new_levels=True, type="link")
            r["pred2"] = rel(p4, rec["pred_new2"],
                             np.maximum(np.abs(np.asarray(rec["pred_new2"], float)), 1.0))
            if not r["pred2"] < TOL["pred"]:
                bad.append(f"predict newd2 {r['pred2']:.1e}")
            if not r["pred"] < TOL["pred"]:
                bad.append(f"predict {r['pred']:.1e}")
        if rec.get("simulate_dim"):
            s = m.simulate(nsim=3, seed=1)
            if list(np.shape(s)) != list(rec["simulate_dim"]):
                bad.append(f"simulate shape {np.shape(s)} vs {rec['simulate_dim']}")
        if rec.get("boot_dim"):
            b = m.bootstrap(func=lambda f: f.fixef, nsim=20, seed=1)
            shape = np.shape(b.replicates)
            r["boot_shape"] = shape
            if list(shape) != list(rec["boot_dim"]):
                bad.append(f"bootstrap shape {shape} vs {rec['boot_dim']}")


#: Method errors that are deliberate, clear refusals (as lme4 / performance refuse them).
EXPECTED_METHOD_ERRORS = (
    "r2/icc: the distribution-specific variance",      # performance has no formula either
    "changes the rows the model uses",                 # lme4's drop1: rows in use changed
    "simulation from the inverse.gaussian family is not available",
    "means are outside the",                           # new random effects off the link
)


def methods(m) -> dict:
    """Exceptions (or all-non-finite results) of the result's methods."""
    errs = {}

    def tryit(name, f):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = f()
            if isinstance(v, pd.Series | pd.DataFrame | np.ndarray):
                arr = (v.select_dtypes("number").to_numpy() if isinstance(v, pd.DataFrame)
                       else np.asarray(v, dtype=float))
                if arr.size and not np.isfinite(arr).any():
                    errs[name] = "all non-finite"
        except Exception as e:
            if not any(x in str(e) for x in EXPECTED_METHOD_ERRORS):
                errs[name] = f"{type(e).__name__}: {e}"[:300]

    for t in ("link", "response"):
        tryit(f"predict_{t}", lambda t=t: m.predict(type=t))
    tryit("predict_se", lambda: m.predict(se_fit=True))
    tryit("fitted", m.fitted)
    for t in ("response", "pearson") + (("deviance", "working") if hasattr(m, "nAGQ") else ()):
        tryit(f"residuals_{t}", lambda t=t: m.residuals(type=t))
    tryit("simulate", lambda: m.simulate(nsim=2, seed=1))
    tryit("confint_wald", lambda: m.confint(method="wald"))
    tryit("summary", lambda: str(m.summary()))
    tryit("ranef_condvar", lambda: m.ranef(cond_var=True))
    tryit("coef", m.coef)
    tryit("varcorr", lambda: str(m.varcorr))
    tryit("tidy", m.tidy)
    tryit("glance", m.glance)
    tryit("to_dict", m.to_dict)
    tryit("anova_table", m.anova_table)
    tryit("drop1", m.drop1)
    tryit("icc", m.icc)
    tryit("r2", m.r2)
    tryit("vcov", lambda: m.vcov)
    tryit("model_matrix", lambda: m.model_matrix())
    tryit("pickle", lambda: __import__("pickle").loads(__import__("pickle").dumps(m)).objective)
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/sweepl")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    out = Path(a.out)
    recs = json.loads((out / "lme4_sweep.json").read_text(encoding="utf-8"))
    only = set(a.only.split(",")) if a.only else None
    results = {}
    for rid, rec in recs.items():
        if only and rid not in only:
            continue
        res = {"id": rid}
        data = load(out, rec["data"], rec)
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                m = fit(rec, data)
            res["warnings"] = sorted({str(x.message)[:100] for x in w})
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {e}"
            res["trace"] = traceback.format_exc()[-1500:]
            results[rid] = res
            print(f"{'ok*' if rid in KNOWN else '!!'} {rid:14s} FIT ERROR {res['error'][:300]}"
                  f"  (R: {rec.get('error', 'ok')})")
            continue
        if "error" in rec:
            print(f"   {rid:12s} R failed ({rec['error'][:80]}); ours {m.objective:.4f}")
            continue
        try:
            res.update(compare(m, rec, out, data))
            extras(m, rec, out, data, res)
        except Exception as e:
            res.setdefault("bad", []).append(f"EXC {type(e).__name__}: {str(e)[:200]}")
            res["trace"] = traceback.format_exc()[-1500:]
        res["method_errors"] = methods(m)
        if res["method_errors"]:
            res["bad"].append(f"methods {res['method_errors']}")
        results[rid] = res
        nums = " ".join(f"{k}={v:.1e}" for k, v in res.items()
                        if isinstance(v, float) and k != "d_obj")
        tag = ("ok*" if rid in KNOWN else "!!") if res["bad"] else "   "
        print(f"{tag} {rid:14s} dobj={res.get('d_obj', np.nan):+.2e} {nums} "
              + res.get("note", "") + (f"  BAD {res['bad']}" if res["bad"] else "")
              + (f"\n      known: {KNOWN[rid]}" if res["bad"] and rid in KNOWN else ""))
    (out / "python_sweepl.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
