"""Compare our R-side fits with the batch of tools/r/sweep/sweepr_nlme.R (nlme gls / lme,
MASS::glmmPQL, metafor rma / rma.mv and blme for a known residual variance).

    Rscript tools/r/sweep/sweepr_nlme.R --out=/tmp/sweepr
    python  tools/r/sweep/sweepr.py     --out /tmp/sweepr [--only id1,id2]

Per entry, as tools/r/sweep/sweep_rside.py: ``dLL`` = our logLik minus R's (positive =
ours higher), then the worst relative differences of the fixed effects (relative to
max(|estimate|, SE)), SEs, sigma, correlation and variance parameters, random-effect sds
(PQL) or tau^2 (meta-analysis), nlme's intervals() bounds (``iv``: fixed effects,
correlation, variance, sigma), the fitted values at level 0 and 1 (``fit0``, ``fit1``,
relative to the response's sd); any exception from intervals, predict, residuals or
summary. Estimates are compared only where the optima agree (|dLL| < SAME_OPTIMUM).
A line ends with ``FLAG`` where a difference is over its tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_rside import rel  # the sibling script's relative difference

SAME_OPTIMUM = 1e-3
#: tolerances of the brief: logLik (ours may not be lower), fixed effects, SEs, the
#: correlation / variance parameters and sigma, intervals, fitted values, residuals
TOL = {"dLL": -1e-4, "coef": 1e-4, "se": 1e-3, "sigma": 1e-3, "cor": 1e-3, "var": 1e-3,
       "re_sd": 1e-3, "tau2": 1e-3, "iv": 5e-3, "fit0": 1e-4, "fit1": 1e-4, "res_pear": 1e-3,
       "res_norm": 1e-3, "pred0": 1e-4, "pred1": 1e-4,
       "blme_coef": 1e-4, "blme_se": 1e-3, "blme_tau2": 1e-3, "blme_dLL": -1e-4}


def load(out: Path, name: str) -> pd.DataFrame:
    """A data set of sweepr_nlme.R with R's factor levels (so reference levels agree)."""
    levels = json.loads((out / "data" / "sweepr_levels.json").read_text(encoding="utf-8"))
    df = pd.read_csv(out / "data" / f"sweepr_{name}.csv", encoding="utf-8")
    for col, lv in (levels.get(name) or {}).items():
        lv = [lv] if isinstance(lv, str) else lv
        df[col] = pd.Categorical(df[col].astype(str), categories=lv)
    return df


def _iv_rel(ours: pd.DataFrame | None, ref: dict | None) -> float:
    """Worst relative difference of interval bounds (scaled by the interval's width)."""
    if ref is None:
        return 0.0
    if ours is None or len(ours) != len(ref["est"]):
        return np.inf
    width = np.maximum(np.asarray(ref["upper"]) - np.asarray(ref["lower"]), 1e-8)
    out = 0.0
    for col, key in (("lower", "lower"), ("upper", "upper")):
        a = ours[col].to_numpy(float)
        b = np.asarray(ref[key], float)
        out = max(out, float(np.max(np.abs(a - b) / width)))
    return out


#: nlme's intervals at its default and the finer apVar step must agree within this
#: (relative to the width) for the finer ones to be compared with ours
NLME_STEP_AGREE = 5e-3


def _iv_tables(rec: dict, pre: str) -> dict:
    """R's interval tables of one step as DataFrames keyed like ours."""
    out = {}
    for key, ours in (("fixed", "fixed"), ("cor", "correlation"), ("var", "variance")):
        t = rec.get(pre + key)
        if t is not None:
            out[ours] = pd.DataFrame({"lower": np.atleast_1d(t["lower"]),
                                      "upper": np.atleast_1d(t["upper"])})
    s = rec.get(pre + "sigma")
    if s is not None:
        out["sigma"] = pd.DataFrame({"lower": [s[0]], "upper": [s[2]]})
    re = rec.get(pre + "re")
    if re:
        t = _re_table(re)
        out["random"] = pd.DataFrame({"lower": t["lower"], "upper": t["upper"]})
    return out


def _re_table(re: list | dict) -> dict:
    """nlme's reStruct intervals as one table, innermost grouping level first (our
    order: lme4's terms, ``(1 | g/h)`` gives ``h:g`` before ``g``)."""
    levels = [re] if isinstance(re, dict) else list(re)
    out = {"lower": [], "est": [], "upper": []}
    for t in reversed(levels):
        for k in out:
            out[k] += list(np.atleast_1d(np.asarray(t[k], dtype=float)))
    return out


def _iv_worst(tables: dict, rec: dict, pre: str) -> float:
    """Worst end-point difference of ``tables`` against R's ``pre`` intervals."""
    worst = 0.0
    for key, ours in (("fixed", "fixed"), ("cor", "correlation"), ("var", "variance")):
        worst = max(worst, _iv_rel(tables.get(ours), rec.get(pre + key)))
    s = rec.get(pre + "sigma")
    if s is not None:
        worst = max(worst, _iv_rel(tables.get("sigma"),
                                   {"lower": [s[0]], "est": [s[1]], "upper": [s[2]]}))
    if rec.get(pre + "re"):
        worst = max(worst, _iv_rel(tables.get("random"), _re_table(rec[pre + "re"])))
    return worst


#: correlation / variance parameters are compared relative to max(|nlme's|, this): a
#: parameter at its boundary 0 (a nugget, an AR coefficient) has no relative digits
PAR_ABS = 1e-3


def _par_rel(a, b) -> float:
    return rel(a, b, np.maximum(np.abs(np.asarray(b, dtype=float)), PAR_ABS))


def compare_nlme(m, rec, d) -> dict:
    r = {"dLL": m.loglik - rec["logLik"]}
    if abs(r["dLL"]) >= SAME_OPTIMUM:
        return r
    se = np.asarray(rec["se"])
    r["coef"] = rel(m.fixef.to_numpy(), rec["coef"], np.maximum(np.abs(rec["coef"]), se))
    r["se"] = rel(m.se.to_numpy(), se)
    r["sigma"] = rel(m.sigma, rec["sigma"])
    if "cor_params" in rec:
        r["cor"] = _par_rel(list(m.cor_params.values()), rec["cor_params"])
    if "var_params" in rec:
        ours = m.var_params
        names = rec.get("var_names") or []
        if isinstance(names, str):
            names = [names]
        if len(names) == len(rec["var_params"]) and all(n in ours for n in names):
            r["var"] = _par_rel([ours[n] for n in names], rec["var_params"])
        else:
            r["var"] = _par_rel(list(ours.values()), rec["var_params"])
    if "ivf_fixed" in rec and "iv_fixed" in rec:
        # nlme's intervals at the finer apVar step, where its default step agrees
        # (tests/test_rside_nlme.py's rule): else its Hessian is no reference
        nlme_steps = _iv_worst(_iv_tables(rec, "iv_"), rec, "ivf_")
        if nlme_steps <= NLME_STEP_AGREE:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                iv = m.intervals()
            ours = {k: iv.get(k) for k in ("fixed", "random", "correlation", "variance",
                                            "sigma")}
            r["iv"] = _iv_worst(ours, rec, "ivf_")
        else:
            r["iv_nlme_steps"] = nlme_steps
    if "pred0" in rec:
        # the same 15 rows as R's (the first complete cases of the model's columns)
        cols = [c for c in d.columns if c in rec["r_call"]]
        nd = d.dropna(subset=[c for c in cols if c in d.columns]).head(15)
        p0 = (m.predict(nd, re_form="~0") if "pred1" in rec else m.predict(nd)).to_numpy()
        r["pred0"] = rel(p0, rec["pred0"], max(np.std(rec["pred0"]), 1e-8))
        if "pred1" in rec:
            r["pred1"] = rel(m.predict(nd).to_numpy(), rec["pred1"],
                             max(np.std(rec["pred1"]), 1e-8))
    for kind in ("pearson", "normalized"):
        ref = rec.get(f"resid_{kind}")
        if ref is not None:
            # nlme's Pearson residuals are over sigma (ours: scaled=True, lme4's default
            # is without)
            ours = m.residuals(type=kind, scaled=kind == "pearson").to_numpy()
            r[f"res_{kind[:4]}"] = rel(ours, ref, 1.0) if len(ours) == len(ref) else np.inf
    ysd = float(np.nanstd(np.asarray(rec["fitted0"]))) or 1.0
    if "fitted1" in rec:
        f1 = m.fitted().to_numpy()
        f0 = m.predict(re_form="~0").to_numpy()
        r["fit1"] = rel(f1, rec["fitted1"], ysd) if len(f1) == len(rec["fitted1"]) else np.inf
    else:
        f0 = m.fitted().to_numpy()
    r["fit0"] = rel(f0, rec["fitted0"], ysd) if len(f0) == len(rec["fitted0"]) else np.inf
    return r


def compare_pql(m, rec) -> dict:
    se = np.asarray(rec["se"])
    r = {"coef": rel(m.fixef.to_numpy(), rec["coef"], np.maximum(np.abs(rec["coef"]), se)),
         "se": rel(m.se.to_numpy(), se), "sigma": rel(m.sigma, rec["sigma"])}
    sds = [float(np.sqrt(t.cov[0, 0])) for t in m.varcorr.terms]
    r["re_sd"] = rel(sds, rec["re_sd"])
    if "cor_params" in rec:
        r["cor"] = _par_rel(list(m.cor_params.values()), rec["cor_params"])
    ysd = float(np.std(rec["fitted0"])) or 1.0
    f1 = m.fitted(type="link").to_numpy()
    r["fit1"] = rel(f1, rec["fitted1"], ysd) if len(f1) == len(rec["fitted1"]) else np.inf
    return r


def compare_meta(m, rec) -> dict:
    se = np.asarray(rec["se"])
    # metafor's restricted log-likelihood has + log|X'X| / 2 more than lme4's / nlme's
    # (and ours): a constant of the design, not of the fit
    ll = m.loglik
    if "REML" in rec["r_call"]:
        ll += 0.5 * np.linalg.slogdet(m.design.X.T @ m.design.X)[1]
    r = {"dLL": ll - rec["logLik"],
         "coef": rel(m.fixef.to_numpy(), rec["coef"], np.maximum(np.abs(rec["coef"]), se)),
         "se": rel(m.se.to_numpy(), se)}
    if "tau2" in rec:
        tau2 = np.atleast_1d(rec["tau2"])
        ours = [float(t.cov[0, 0]) for t in m.varcorr.terms]
        if len(ours) > 1:         # rma.mv: outer level first; lmer: inner level first
            ours = ours[::-1]
        r["tau2"] = rel(ours, tau2, np.maximum(np.abs(tau2), 1e-4))
    if "blme_coef" in rec:
        r["blme_dLL"] = m.loglik - rec["blme_logLik"]
        r["blme_coef"] = rel(m.fixef.to_numpy(), rec["blme_coef"],
                             np.maximum(np.abs(rec["blme_coef"]), rec["blme_se"]))
        r["blme_se"] = rel(m.se.to_numpy(), rec["blme_se"])
        r["blme_tau2"] = rel(float(m.varcorr.terms[0].cov[0, 0]), rec["blme_tau2"],
                             max(abs(rec["blme_tau2"]), 1e-4))
    return r


def flagged(r: dict) -> list[str]:
    """The entries of ``r`` over their tolerance (NaN counts as over)."""
    bad = []
    for k, v in r.items():
        if k not in TOL:
            continue
        lower_bound = k in ("dLL", "blme_dLL")     # ours may be higher, not lower
        if not np.isfinite(v) or (v < TOL[k] if lower_bound else v > TOL[k]):
            bad.append(k)
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/sweepr")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    out = Path(a.out)
    only = set(filter(None, a.only.split(",")))
    recs = json.loads((out / "sweepr_nlme.json").read_text(encoding="utf-8"))
    results = {}
    for rid, rec in recs.items():
        if only and rid not in only:
            continue
        d = load(out, rec["data"])
        for key in ("coef", "se", "cor_params", "var_params", "re_sd", "fitted0", "fitted1",
                    "blme_coef", "blme_se", "resid_pearson", "resid_normalized", "pred0",
                    "pred1"):
            if key in rec and not isinstance(rec[key], list):
                rec[key] = [rec[key]]          # jsonlite's auto_unbox of length-1 vectors
        for key in ("iv_fixed", "iv_cor", "iv_var", "ivf_fixed", "ivf_cor", "ivf_var"):
            if key in rec:
                rec[key] = {k: np.atleast_1d(np.asarray(v, dtype=float))  # null: NaN
                            for k, v in rec[key].items()}
        for key in ("iv_sigma", "ivf_sigma"):
            if key in rec:
                rec[key] = [np.nan if v is None else v for v in rec[key]]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = eval(rec["py_call"], {"mm": mm, "d": d, "np": np})
        except Exception as e:
            print(f"{rid:28s} FIT ERROR {type(e).__name__}: {str(e)[:300]} (R: "
                  f"{rec.get('error', 'ok')[:60]})")
            results[rid] = {"fit_error": f"{type(e).__name__}: {e}"}
            continue
        if "error" in rec:
            print(f"{rid:28s} R failed ({rec['error'][:70]!r}); ours logLik {m.loglik:.5f}")
            results[rid] = {"r_error": rec["error"], "loglik": m.loglik}
            continue
        try:
            if rec["kind"] == "nlme":
                r = compare_nlme(m, rec, d)
            elif rec["kind"] == "pql":
                r = compare_pql(m, rec)
            else:
                r = compare_meta(m, rec)
        except Exception as e:
            print(f"{rid:28s} COMPARE ERROR {type(e).__name__}: {str(e)[:300]}")
            results[rid] = {"compare_error": f"{type(e).__name__}: {e}"}
            continue
        errs = {}
        calls = [(name, getattr(m, name)) for name in
                 ("intervals", "predict", "residuals", "summary") if hasattr(m, name)]
        for name, f in calls:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f()
            except Exception as e:
                errs[name] = f"{type(e).__name__}: {str(e)[:150]}"
        bad = flagged(r)
        results[rid] = {**r, "errors": errs, "flags": bad}
        print(f"{rid:28s} " + " ".join(f"{k}={v:.2e}" for k, v in r.items())
              + (f"  ERR {errs}" if errs else "") + (f"  FLAG {bad}" if bad else ""))
    (out / "sweepr_python.json").write_text(json.dumps(results, indent=1, default=float),
                                            encoding="utf-8")


if __name__ == "__main__":
    main()
