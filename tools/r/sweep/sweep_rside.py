"""Compare our R-side fits (mm.gls, mm.lmer with correlation=/variance=) with the nlme
results of tools/r/sweep/sweep_nlme.R.

    python tools/r/sweep/sweep_rside.py --out /tmp/sweep

Per model: logLik (ours minus nlme's: positive = ours higher), fixed effects relative to
max(|estimate|, SE), SEs, sigma, correlation and variance parameters (relative), then
intervals(), predict(), residuals() and summary() must not raise.
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
import sweep  # the sibling script (its data loader)

SAME_OPTIMUM = 1e-3


def load(out: Path, name: str) -> pd.DataFrame:
    """The sweep's simulated data (:func:`sweep.load`) with the columns sweep_nlme.R adds."""
    df = sweep.load(out, "sw")
    df["xpos"] = np.exp(df["x"] / 2)
    df["tc"] = df["tt"] + np.round((df["z"] + 1) / 4, 6)
    if name == "swna":
        df.loc[[4, 39, 76], "y_gauss"] = np.nan
    return df.iloc[:60].reset_index(drop=True) if name == "sw60" else df


def rel(a, b, scale=None) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    if a.shape != b.shape:
        return np.inf
    s = np.maximum(np.abs(b) if scale is None else np.asarray(scale, float), 1e-8)
    return float(np.max(np.abs(a - b) / s)) if a.size else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/sweep")
    out = Path(ap.parse_args().out)
    recs = json.loads((out / "nlme_sweep.json").read_text(encoding="utf-8"))
    for rid, rec in recs.items():
        d = load(out, rec["data"])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = eval(rec["py_call"], {"mm": mm, "d": d})
        except Exception as e:
            print(f"{rid:24s} FIT ERROR {type(e).__name__}: {str(e)[:200]} (R: "
                  f"{rec.get('error', 'ok')[:60]})")
            continue
        if "error" in rec:
            print(f"{rid:24s} nlme failed ({rec['error'][:70]}); ours logLik {m.loglik:.5f}")
            continue
        r = {"dLL": m.loglik - rec["logLik"]}
        if abs(r["dLL"]) < SAME_OPTIMUM:
            se = np.asarray(rec["se"])
            r["coef"] = rel(m.fixef.to_numpy(), rec["coef"], np.maximum(np.abs(rec["coef"]), se))
            r["se"] = rel(m.se.to_numpy(), se)
            r["sigma"] = rel(m.sigma, rec["sigma"])
            if "cor_params" in rec:
                r["cor"] = rel(list(m.cor_params.values()), rec["cor_params"])
            if "var_params" in rec:
                r["var"] = rel(list(m.var_params.values()), rec["var_params"])
        errs = {}
        for name, f in (("intervals", m.intervals), ("predict", m.predict),
                        ("residuals", m.residuals), ("summary", m.summary)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f()
            except Exception as e:
                errs[name] = f"{type(e).__name__}: {str(e)[:150]}"
        print(f"{rid:24s} " + " ".join(f"{k}={v:.2e}" for k, v in r.items())
              + (f"  ERR {errs}" if errs else ""))


if __name__ == "__main__":
    main()
