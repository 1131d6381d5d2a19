"""Compare our fits with the R results of tools/r/sweep/sweep_glmmtmb.R.

    python tools/r/sweep/sweep.py --out /tmp/sweep [--only id1,id2]

For every variant: fit mm.glmmtmb, compare the objective (ours minus R's; negative = ours
lower), the fixed effects of all components relative to max(|estimate|, SE), their SEs
(relative), the random-effect sds (relative, absolute slack near zero), then call predict
(every type), fitted, residuals (every type), simulate, confint(method="wald") and summary,
recording any exception. Prints one line per variant and writes OUT/python_sweep.json.
Estimates are compared only where the two optima agree (|diff| < SAME_OPTIMUM): elsewhere
one optimizer stopped short and the lower objective is the better fit.
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

SAME_OPTIMUM = 1e-3
SD_ATOL = 1e-3


def load(out: Path, name: str) -> pd.DataFrame:
    if name not in ("sw", "sw60"):         # a bundled data set (R's level orders)
        df = mm.datasets.load(name)
        if name == "Orthodont":
            df["fage"] = pd.Categorical(df["age"].astype(int).astype(str),
                                        categories=["8", "10", "12", "14"])
        if name == "cbpp":
            df["obs"] = pd.Categorical([str(i + 1) for i in range(len(df))])
        return df
    df = pd.read_csv(out / "data" / "sw.csv", encoding="utf-8")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.Categorical(df[col], categories=sorted(df[col].dropna().unique()))
    df["spg"] = pd.Categorical(["1"] * len(df))
    return df.iloc[:60].reset_index(drop=True) if name == "sw60" else df


def worst_rel(ours: dict, ref: dict | None, se: dict | None) -> tuple[float, str]:
    worst, which = 0.0, ""
    for k, v in (ref or {}).items():
        if v is None:
            continue
        if k not in ours:
            return np.inf, f"missing {k}"
        scale = max(abs(v), abs((se or {}).get(k) or 0.0), 1e-8)
        r = abs(ours[k] - v) / scale
        if r > worst:
            worst, which = r, k
    return worst, which


def compare(m, rec: dict) -> dict:
    out = {"d_objective": float(m.objective - rec["objective"])}
    same = abs(out["d_objective"]) < SAME_OPTIMUM
    out["same_optimum"] = same
    for comp, key, sekey in (("cond", "beta", "se"), ("zi", "beta_zi", "se_zi"),
                             ("disp", "beta_disp", "se_disp")):
        if not rec.get(key):
            continue
        tab = m.coef_table(comp)
        index = list(m.design.components[comp].fixed.r_names)   # R's names
        est = dict(zip(index, tab["Estimate"], strict=True))
        se = dict(zip(index, tab["Std. Error"], strict=True))
        # older result files keep vcov()'s "zi~" / "d~" prefixes on the SE names
        ref_se = {k.split("~", 1)[-1]: v for k, v in (rec.get(sekey) or {}).items()}
        rec[sekey] = ref_se or None
        out[f"{key}_rel"] = worst_rel(est, rec[key], ref_se)
        if rec.get(sekey):
            out[f"{sekey}_rel"] = worst_rel(se, rec[sekey], None)
    worst_sd = 0.0
    for comp in ("cond", "zi"):
        refs = (rec.get("varcorr") or {}).get(comp) or []
        if not refs:
            continue
        ours = m.varcorr_of(comp).terms
        if len(ours) != len(refs):
            out[f"sd_{comp}"] = f"{len(ours)} terms vs R's {len(refs)}"
            continue
        for r in refs:
            cand = [t for t in ours if len(t.sd) == len(r["sd"])]
            best = min(
                (float(np.max(np.abs(np.asarray(t.sd) - r["sd"])
                              / np.maximum(np.abs(r["sd"]), SD_ATOL / 1e-3))) for t in cand),
                default=np.inf)
            worst_sd = max(worst_sd, best)
    out["sd_rel"] = worst_sd
    return out


def methods(m) -> dict:
    errs = {}

    def tryit(name, f):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = f()
            if isinstance(v, pd.Series | pd.DataFrame | np.ndarray):
                arr = np.asarray(v, dtype=float) if not isinstance(v, pd.DataFrame) \
                    else v.select_dtypes("number").to_numpy()
                if arr.size and not np.isfinite(arr).any():
                    errs[name] = "all non-finite"
        except Exception as e:
            errs[name] = f"{type(e).__name__}: {e}"[:300]

    types = ["link", "response", "conditional"]
    if "zi" in m.components:
        types += ["zprob", "zlink"]
    types.append("disp")
    for t in types:
        tryit(f"predict_{t}", lambda t=t: m.predict(type=t))
    tryit("predict_newdata", lambda: m.predict(m.data.iloc[:5] if hasattr(m, "data") else None))
    tryit("fitted", m.fitted)
    for t in ("response", "pearson", "working"):
        tryit(f"residuals_{t}", lambda t=t: m.residuals(type=t))
    tryit("simulate", lambda: m.simulate(nsim=2, seed=1))
    tryit("confint", lambda: m.confint())
    tryit("summary", lambda: str(m.summary()))
    tryit("vcov_full", lambda: m.vcov_full)
    return errs


def glmmtmb_kwargs(rec: dict) -> dict:
    """``mm.glmmtmb``'s keyword arguments for one record of the R side's JSON."""
    kw = dict(family=rec["family"], link=rec["link"], ziformula=rec["ziformula"],
              dispformula=rec["dispformula"], REML=bool(rec["REML"]))
    if rec.get("weights"):
        kw["weights"] = rec["weights"]
    if rec.get("offset"):
        kw["offset"] = rec["offset"]
    if rec.get("start"):  # R's list(beta = c(...)): the conditional fixed effects
        beta = rec["start"].split("c(")[1].split(")")[0]
        kw["start"] = {"beta.cond": [float(v) for v in beta.split(",")]}
    return kw


def fit_record(rec: dict, data, res: dict, trace_chars: int = 2500):
    """Fit an R record's model with ``mm.glmmtmb``: the fit, with its warnings in
    ``res["warnings"]``, or None with the error and the traceback's end in ``res``."""
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = mm.glmmtmb(rec["formula"], data, **glmmtmb_kwargs(rec))
        res["warnings"] = sorted({str(x.message)[:120] for x in w})
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
        res["trace"] = traceback.format_exc()[-trace_chars:]
        return None
    return m

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/sweep")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    out = Path(a.out)
    recs = json.loads((out / "glmmtmb_sweep.json").read_text(encoding="utf-8"))
    only = set(a.only.split(",")) if a.only else None
    results = {}
    for rid, rec in recs.items():
        if only and rid not in only:
            continue
        res = {"id": rid}
        data = load(out, rec["data"])
        m = fit_record(rec, data, res, trace_chars=1500)
        if m is None:
            results[rid] = res
            print(f"{rid:22s} FIT ERROR {res['error'][:200]}  (R: {rec.get('error', 'ok')})")
            continue
        if "error" in rec:
            res["r_error"] = rec["error"]
            print(f"{rid:22s} R failed ({rec['error'][:80]}); ours {m.objective:.4f}")
        else:
            try:
                res.update(compare(m, rec))
            except Exception as e:
                res["compare_error"] = f"{type(e).__name__}: {e}"
                res["trace"] = traceback.format_exc()[-1500:]
        res["method_errors"] = methods(m)
        results[rid] = res
        brief = {k: (round(v[0], 6) if isinstance(v, tuple) else v) for k, v in res.items()
                 if k.endswith("_rel") or k == "d_objective"}
        print(f"{rid:22s} " + " ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in brief.items())
              + (f" R:{rec['convergence']}/{'pd' if rec['pdHess'] else 'NPD'}"
                 if "convergence" in rec else "")
              + (f"  ERR {res['method_errors']}" if res["method_errors"] else "")
              + (f" CMP {res['compare_error']}" if "compare_error" in res else ""))
    (out / "python_sweep.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
