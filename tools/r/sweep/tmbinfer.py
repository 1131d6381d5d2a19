"""Compare the inference of our glmmTMB-class fits with tools/r/sweep/tmbinfer.R's (lane
tmbinfer).

    python tools/r/sweep/tmbinfer.py --out /tmp/tmbinfer [--only id1,id2]

Per variant: the worst relative difference of the Wald intervals of the fixed effects (every
component) and of the random-effect standard deviations (glmmTMB's ``Std.Dev`` rows; ours are
``exp`` of the log-sd rows, which is what glmmTMB computes), the log-likelihood, df, AIC, BIC,
``df.residual``, ``vcov(full = TRUE)``, the conditional modes and their conditional
variances, population-level predictions with SEs on new data, the simulate shape, profile
intervals (where R has them, error relative to the interval's width) and the LRT of a nested
pair.
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

#: R family strings -> (family, link) of mm.glmmtmb
FAMILIES = {
    "poisson()": ("poisson", "log"), "nbinom2()": ("nbinom2", "log"),
    "nbinom1()": ("nbinom1", "log"), "binomial()": ("binomial", "logit"),
    "beta_family()": ("beta", "logit"), 'Gamma(link = "log")': ("gamma", "log"),
    "tweedie()": ("tweedie", "log"), "gaussian()": ("gaussian", "identity"),
    "truncated_nbinom2()": ("truncated_nbinom2", "log"),
}


def rel(a, b, floor=1e-8) -> float:
    a = np.asarray(a, float)
    b = np.asarray([np.nan if v is None else v for v in np.ravel(b)], float).reshape(a.shape)
    ok = np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor)))


def load(out: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(out / "data" / f"{name}.csv")
    for col in ("g", "f", "tt"):
        if col in df:
            df[col] = pd.Categorical(df[col])
    return df


def fit(rec: dict, data: pd.DataFrame, formula=None, zi=None, disp=None):
    fam, link = FAMILIES[rec["family"]]
    return mm.glmmtmb(formula or rec["py"], data, family=fam, link=link,
                      ziformula=zi or rec["zi"], dispformula=disp or rec["disp"])


def wald_rows(m, level=0.95) -> dict:
    """Our Wald intervals under glmmTMB's row names (fixed effects and log-sd rows only)."""
    ci = m.confint(level=level)
    out = {}
    for lab, row in ci.iterrows():
        out[lab] = (row.iloc[0], row.iloc[1])
    return out


def compare(rec: dict, data, newdata) -> dict:
    res = {}
    m = fit(rec, data)
    # --- fit statistics
    res["loglik_abs"] = abs(m.loglik - rec["loglik"])
    res["df"] = (m.df, rec["df"])
    res["aic_abs"] = abs(m.aic - rec["aic"])
    res["bic_abs"] = abs(m.bic - rec["bic"])
    res["df_resid"] = (m.df_resid, rec["df_residual"])
    # --- Wald: fixed-effect rows by position (cond, zi, disp as glmmTMB orders them)
    ci = m.confint()
    labs = list(ci.index)
    lo, hi = ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy()
    rrows = rec["wald_rows"]
    rlo, rhi = np.asarray(rec["wald_lower"], float), np.asarray(rec["wald_upper"], float)
    vnames = rec["vcov_full_names"]
    fixed = [i for i, n in enumerate(vnames) if not n.startswith("theta_")
             and n != "Tweedie power" and not (n.startswith("d~") and rec["disp"] == "~1")]
    k = len(fixed)
    width = rhi[:k] - rlo[:k]
    res["wald_fixed_width_rel"] = float(max(np.max(np.abs(lo[fixed] - rlo[:k]) / width),
                                            np.max(np.abs(hi[fixed] - rhi[:k]) / width)))
    # sd rows: glmmTMB shifts every parameter by +- z se and reads VarCorr; for the log-sd
    # parameters of a scalar / diag / us term that is exp(theta +- z se), in order
    sd_r = [i for i, n in enumerate(rrows) if "Std.Dev" in n]
    th = [i for i, lab in enumerate(labs) if lab.startswith("theta_")]
    if sd_r and len(th) >= len(sd_r) and not any(s in rec["py"] for s in ("ar1(", "cs(", "rr(")):
        res["wald_sd_rel"] = max(rel(np.exp(lo[th[:len(sd_r)]]), rlo[sd_r]),
                                 rel(np.exp(hi[th[:len(sd_r)]]), rhi[sd_r]))
    res["our_labels"] = labs
    # --- vcov full
    V = m.vcov_full.to_numpy()
    Vr = np.asarray(rec["vcov_full"], float)
    res["vcov_full_rel"] = (float(np.max(np.abs(V - Vr)) / np.max(np.abs(Vr)))
                            if V.shape == Vr.shape else f"shape {V.shape} vs {Vr.shape}")
    # --- ranef + condVar
    worst_v, worst_cv = 0.0, 0.0
    by_comp = [("cond", rec["ranef"])] + ([("zi", rec["ranef_zi"])] if rec.get("ranef_zi")
                                           else [])
    for comp, grp, r in [(c, g, r) for c, refs in by_comp for g, r in refs.items()]:
        ours = m.ranef(comp, cond_var=True)[grp]
        vals = np.asarray(r["values"], float)
        cols = [c for c in ours.columns if not c.endswith("_condsd")]
        sds = [c for c in ours.columns if c.endswith("_condsd")]
        worst_v = max(worst_v, float(np.max(np.abs(ours[cols].to_numpy() - vals))))
        cv = np.asarray(r["condvar"], float)
        if cv.ndim == 3:  # k x k x levels, or levels x k x k from jsonlite
            kk = vals.shape[1]
            diag = (np.stack([np.diag(cv[:, :, j]) for j in range(cv.shape[2])])
                    if cv.shape[0] == kk and cv.shape[1] == kk and cv.shape[2] == vals.shape[0]
                    else np.stack([np.diag(c) for c in cv]))
        else:
            diag = cv.reshape(vals.shape)
        worst_cv = max(worst_cv, rel(ours[sds].to_numpy() ** 2, diag))
    res["ranef_abs"] = worst_v
    res["condvar_rel"] = worst_cv
    # --- predictions on new data, population level
    for typ, key in (("link", "pred_link"), ("response", "pred_resp")):
        p = m.predict(newdata, type=typ, re_form="~0", se_fit=True)
        fitv = np.asarray(p["fit"] if isinstance(p, (dict, pd.DataFrame)) else p[0], float)
        sev = np.asarray(p["se_fit"] if isinstance(p, (dict, pd.DataFrame)) else p[1], float)
        res[f"{typ}_fit_rel"] = rel(fitv, rec[key])
        res[f"{typ}_se_rel"] = rel(sev, rec[key + "_se"])
    sim = m.simulate(nsim=3, seed=1)
    res["sim_shape"] = (list(np.shape(sim)), rec["sim_dim"])
    # --- profile intervals: error relative to glmmTMB's interval width (theta rows are on
    # the log-sd scale on both sides for scalar terms)
    if rec.get("prof_rows"):
        cp = m.confint(method="profile")
        rlo, rhi = np.asarray(rec["prof_lower"], float), np.asarray(rec["prof_upper"], float)
        w = rhi - rlo
        worst = 0.0
        ours = [lab for lab in cp.index]
        for i, lab in enumerate(rec["prof_rows"]):
            j = i if i < len(ours) else None
            if j is None:
                continue
            lo, hi = cp.iloc[j, 0], cp.iloc[j, 1]
            if lab.startswith("theta_"):   # ours: the sd itself
                lo, hi = np.log(max(lo, 1e-300)), np.log(hi)
            worst = max(worst, abs(lo - rlo[i]) / w[i], abs(hi - rhi[i]) / w[i])
        res["profile_width_rel"] = worst
        res["profile_rows"] = ours
    # --- LRT of the nested pair
    if rec.get("anova"):
        if rec["id"] == "nb2_disp":
            m0 = fit(rec, data, disp="~1")
        elif rec["id"] == "zip_z":
            m0 = fit(rec, data, zi="~1")
        elif rec["id"] == "binom_us":
            m0 = fit(rec, data, formula="cbind(succ, trials - succ) ~ x + (1 | g)")
        else:
            m0 = fit(rec, data, formula=rec["py"].replace("~ x +", "~ 1 +"))
        tab = mm.anova(m0, m).table
        a = rec["anova"]
        chisq = float(tab["Chisq"].iloc[1])
        res["lrt_chisq_abs"] = abs(chisq - a["chisq"])
        res["lrt_df"] = (int(tab["Df"].iloc[1]), a["df"])
        res["lrt_p_rel"] = abs(float(tab["Pr(>Chisq)"].iloc[1]) - a["p"]) / a["p"]
    return res, m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/tmbinfer")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    out = Path(a.out)
    recs = json.loads((out / "tmbinfer.json").read_text())
    only = set(a.only.split(",")) if a.only else None
    data, newdata = load(out, "ti"), load(out, "ti_new")
    for col in ("g", "f", "tt"):
        newdata[col] = pd.Categorical(newdata[col], categories=data[col].cat.categories)
    for rid, rec in recs.items():
        if only and rid not in only:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res, _m = compare(rec, data, newdata)
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1200:]}
        print(rid, json.dumps(res, default=str))


if __name__ == "__main__":
    main()
