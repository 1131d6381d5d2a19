"""Compare our fits with the R results of tools/r/sweep/sweepg_glmmtmb.R (batch 3).

    python tools/r/sweep/sweepg.py --out /tmp/sweepg [--only id1,id2]

Reuses sweep.py's comparison (objective, fixed effects of every component, SEs, random-effect
sds) and method calls, and adds: random-effect correlations, the first five link and
response predictions against R's, predictions for new data with a new grouping level
(``allow_new_levels=True``) and with ``se_fit``, and, for variants the R script marks with an
``engine``, the same model through mm.lmer / mm.glmer (objective against glmmTMB's).
The data loader keeps two columns as plain Python strings (``fchr``, ``gchr``: character
columns) and reads ``flev`` as strings (numeric-looking factor levels, sorted as strings as
R's ``factor()`` does); every other non-numeric column becomes a sorted categorical.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

_spec = importlib.util.spec_from_file_location("sweep_base", Path(__file__).with_name("sweep.py"))
sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep)

#: columns kept as Python strings (object dtype), not categoricals
CHARACTER_COLUMNS = ("fchr", "gchr")
#: columns read as strings whose values look like numbers
STRING_COLUMNS = ("flev",)
#: absolute slack for correlations and predictions
CORR_ATOL = 1e-3
PRED_RTOL = 1e-4


def load(out: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(out / "data" / f"{name}.csv", encoding="utf-8",
                     dtype={c: str for c in STRING_COLUMNS})
    for col in df.columns:
        if col in CHARACTER_COLUMNS:
            df[col] = df[col].astype(object)
        elif not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.Categorical(df[col], categories=sorted(df[col].dropna().unique()))
    return df


def compare_extra(m, rec: dict) -> dict:
    out = {}
    worst = 0.0
    for comp in ("cond", "zi"):
        refs = (rec.get("varcorr") or {}).get(comp) or []
        ours = m.varcorr_of(comp).terms if refs else []
        for r in refs:
            cor = np.asarray([np.nan if c is None else c for c in r.get("cor") or []], float)
            if cor.size == 0:
                continue
            cand = [t for t in ours if len(t.sd) == len(r["sd"])]
            best = np.inf
            for t in cand:
                # R's lower.tri() runs down the columns: the transpose's upper
                # triangle row by row
                c = t.corr.T[np.triu_indices(len(t.sd), 1)]
                ok = np.isfinite(cor)
                best = min(best, float(np.max(np.abs(c[ok] - cor[ok]), initial=0.0)))
            worst = max(worst, best)
    out["cor_abs"] = worst
    for key, typ in (("pred_link_head", "link"), ("pred_resp_head", "response")):
        ref = rec.get(key)
        if ref:
            ours = np.asarray(m.predict(type=typ), dtype=float)[:5]
            ref = np.asarray([np.nan if v is None else v for v in ref], float)
            out[f"{typ}_rel"] = float(np.nanmax(np.abs(ours - ref)
                                                / np.maximum(np.abs(ref), 1.0)))
    ref = rec.get("pred_link_se_head")
    if ref:
        ours = m.predict(type="link", se_fit=True)["se_fit"].to_numpy()[:5]
        ref = np.asarray([np.nan if v is None else v for v in ref], float)
        out["se_fit_rel"] = float(np.nanmax(np.abs(ours - ref) / np.abs(ref)))
    return out


def compare_new_levels(m, rec: dict, data: pd.DataFrame) -> dict:
    """Response predictions and their SEs for new rows with new levels, against R's."""
    if not rec.get("pred_new_fit"):
        return {}
    q = m.predict(new_level_rows(data), type="response", se_fit=True, allow_new_levels=True)
    out = {}
    for key, col in (("pred_new_fit", "fit"), ("pred_new_se", "se_fit")):
        ref = np.asarray([np.nan if v is None else v for v in rec[key]], float)
        ours = q[col].to_numpy()
        out[f"new_{col}_rel"] = float(np.nanmax(np.abs(ours - ref)
                                                / np.maximum(np.abs(ref), 1e-8)))
    return out


def new_level_rows(data: pd.DataFrame) -> pd.DataFrame:
    nd = data.iloc[:4].copy()
    for col in ("g", "g1", "gnum", "gchr", "Grüppe", "h"):
        if col in nd.columns:
            if isinstance(nd[col].dtype, pd.CategoricalDtype):
                nd[col] = nd[col].cat.add_categories(["NEWLEVEL"])
                nd.loc[nd.index[:2], col] = "NEWLEVEL"
            elif pd.api.types.is_numeric_dtype(nd[col]):
                nd.loc[nd.index[:2], col] = 10 ** 6
            else:
                nd.loc[nd.index[:2], col] = "NEWLEVEL"
    return nd


def methods_extra(m, data: pd.DataFrame) -> dict:
    errs = {}

    def tryit(name, f):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = f()
                if isinstance(v, pd.DataFrame):
                    v = v.select_dtypes("number")
                v = np.asarray(v, dtype=float)
            if v.size and not np.isfinite(v).all():
                errs[name] = "non-finite values"
        except Exception as e:
            errs[name] = f"{type(e).__name__}: {e}"[:300]

    nd = new_level_rows(data)
    for t in ("link", "response"):
        tryit(f"predict_newlevels_{t}",
              lambda t=t: m.predict(nd, type=t, allow_new_levels=True))
    tryit("predict_se_fit", lambda: m.predict(type="response", se_fit=True))
    tryit("predict_re_form0", lambda: m.predict(data.iloc[:5], re_form="~0"))
    for name, tab in (m.ranef() or {}).items():
        tryit(f"ranef_{name}", lambda tab=tab: tab)
    return errs


def engine_fit(rec: dict, data: pd.DataFrame) -> dict:
    """The same model through mm.lmer / mm.glmer: their -2 log-likelihood against glmmTMB's
    objective (the REML criterion under REML)."""
    eng = rec["engine"]
    kw = {}
    if rec.get("weights"):
        kw["weights"] = rec["weights"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if eng == "lmer":
            e = mm.lmer(rec["formula"], data, REML=bool(rec["REML"]), **kw)
            obj = float(e.objective)
        else:
            e = mm.glmer(rec["formula"], data, family=rec["family"], link=rec["link"], **kw)
            obj = -2.0 * float(e.loglik)
    return {"engine_d_objective": obj - rec["objective"]}


def run_record(rid: str, rec: dict, data: pd.DataFrame) -> dict:
    """Fit one R record's model with mm.glmmtmb and compare: every check of this sweep
    (sweep.py's objective / estimates / SEs / sds and method calls, plus correlations,
    predictions, new levels and the engine refit)."""
    res = {"id": rid}
    m = sweep.fit_record(rec, data, res)
    if m is None:
        return res
    res["objective"] = float(m.objective)
    if "error" in rec:
        res["r_error"] = rec["error"]
    else:
        try:
            res.update(sweep.compare(m, rec))
            res.update(compare_extra(m, rec))
            res.update(compare_new_levels(m, rec, data))
        except Exception as e:
            res["compare_error"] = f"{type(e).__name__}: {e}"
            res["trace"] = traceback.format_exc()[-2500:]
        if rec.get("engine"):
            try:
                res.update(engine_fit(rec, data))
            except Exception as e:
                res["engine_error"] = f"{type(e).__name__}: {e}"[:300]
    res["method_errors"] = sweep.methods(m)
    res["method_errors"].update(methods_extra(m, data))
    return res


def report_line(rid: str, res: dict, rec: dict) -> str:
    """One printed line per variant: the worst differences, R's convergence, errors."""
    if "error" in res:
        return f"{rid:22s} FIT ERROR {res['error'][:300]}  (R: {rec.get('error', 'ok')})"
    if "r_error" in res:
        return f"{rid:22s} R failed ({rec['error'][:80]}); ours {res['objective']:.4f}"
    brief = {k: (round(v[0], 6) if isinstance(v, tuple) else v) for k, v in res.items()
             if k.endswith(("_rel", "_abs")) or "d_objective" in k}
    return (f"{rid:22s} " + " ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in brief.items())
            + (f" R:{rec['convergence']}/{'pd' if rec['pdHess'] else 'NPD'}"
               if "convergence" in rec else "")
            + (f"  ERR {res['method_errors']}" if res["method_errors"] else "")
            + (f" CMP {res['compare_error']}" if "compare_error" in res else "")
            + (f" ENG {res['engine_error']}" if "engine_error" in res else ""))


def run_all(recs: dict, loader, only: set | None = None) -> dict:
    """run_record over every record (or those in ``only``), printing report_line."""
    results = {}
    for rid, rec in recs.items():
        if only and rid not in only:
            continue
        results[rid] = run_record(rid, rec, loader(rec["data"]))
        print(report_line(rid, results[rid], rec), flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/sweepg")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    out = Path(a.out)
    recs = json.loads((out / "glmmtmb_sweep.json").read_text(encoding="utf-8"))
    only = set(a.only.split(",")) if a.only else None
    results = run_all(recs, lambda name: load(out, name), only)
    (out / "python_sweep.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
