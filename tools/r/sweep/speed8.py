"""Speed sweep of R-side models nobody tuned for (issue 8: at least 5x nlme), on data sets
outside tools/r/rside_fixtures.R's models, timed against nlme in the same run.

    python tools/r/sweep/speed8.py [--rounds 3] [--repeat 5] [--only a,b] [--out F.json]

The data: ``Rscript tools/r/sweep/speed8_nlme.R export DIR`` (run first by this script)
writes every data set both sides read. The protocol is benchmarks/rside_bench.py's: CPU
seconds (``time.process_time``; R's user + system), the call's text parsed at every fit,
one untimed warm-up sizing batches of at least ``MIN_BATCH_S``, the fastest of
``--repeat`` batches per fit; nlme timed the same way by benchmarks/r/time_nlme.R right
after our fit of the same model, for ``--rounds`` rounds (each side keeps its fastest),
so a load that drifts moves both sides of a ratio. Per model: the ratio nlme / ours, our
evaluations, nlme's iterations, and our log-likelihood minus nlme's (``LOGLIK_TOL``:
equal, or ours higher).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[3]
R_SCRIPT = ROOT / "tools" / "r" / "sweep" / "speed8_nlme.R"
#: nlme timed by the R-side benchmark's own script (the same protocol as rside_bench.py)
R_TIMER = ROOT / "benchmarks" / "r" / "time_nlme.R"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "speed8.json"
#: Shortest CPU time of one timed batch, seconds (as benchmarks/rside_bench.py).
MIN_BATCH_S = 0.05
#: Our log-likelihood may be below nlme's by at most this much.
LOGLIK_TOL = 1e-4
#: Factor columns of each exported data set.
FACTORS = {"sleepstudy": ["Subject"], "Orthodont": ["Subject", "Sex"],
           "cake": ["replicate", "recipe"], "Dyestuff": ["Batch"],
           "Pastes": ["batch", "cask", "sample"], "ar1sim": ["subject"],
           "Machines": ["Worker", "Machine"], "Oats": ["Block", "Variety"],
           "Rail": ["Rail"], "BodyWeight": ["Rat", "Diet"], "Pixel": ["Dog", "Side"],
           "Orange": ["Tree"], "Ovary": ["Mare"]}

#: (name, data, nlme call, our call): ``d`` is the data set in both.
MODELS = [
    ("orth_lme_slope_cs", "Orthodont",
     "lme(distance ~ age + Sex, d, random = ~ age | Subject, correlation = corCompSymm())",
     "mm.lmer('distance ~ age + Sex + (age | Subject)', d, correlation=mm.cor_comp_symm())"),
    ("orth_gls_ar1_ident_ml", "Orthodont",
     "gls(distance ~ age * Sex, d, correlation = corAR1(form = ~ 1 | Subject), "
     "weights = varIdent(form = ~ 1 | Sex), method = 'ML')",
     "mm.gls('distance ~ age * Sex', d, correlation=mm.cor_ar1(form='~ 1 | Subject'), "
     "variance=mm.var_ident(form='~ 1 | Sex'), method='ML')"),
    ("sleep_lme_slope_varexp", "sleepstudy",
     "lme(Reaction ~ Days, d, random = ~ Days | Subject, weights = varExp(form = ~ Days))",
     "mm.lmer('Reaction ~ Days + (Days | Subject)', d, variance=mm.var_exp(form='~ Days'))"),
    ("sleep_lme_arma11", "sleepstudy",
     "lme(Reaction ~ Days, d, random = ~ 1 | Subject, correlation = corARMA(p = 1, q = 1))",
     "mm.lmer('Reaction ~ Days + (1 | Subject)', d, correlation=mm.cor_arma(p=1, q=1))"),
    ("sleep_gls_ar1_varexp_ml", "sleepstudy",
     "gls(Reaction ~ Days, d, correlation = corAR1(form = ~ 1 | Subject), "
     "weights = varExp(form = ~ Days), method = 'ML')",
     "mm.gls('Reaction ~ Days', d, correlation=mm.cor_ar1(form='~ 1 | Subject'), "
     "variance=mm.var_exp(form='~ Days'), method='ML')"),
    ("sleep_gls_cs_power", "sleepstudy",
     "gls(Reaction ~ Days, d, correlation = corCompSymm(form = ~ 1 | Subject), "
     "weights = varPower(form = ~ Days1))",
     "mm.gls('Reaction ~ Days', d, correlation=mm.cor_comp_symm(form='~ 1 | Subject'), "
     "variance=mm.var_power(form='~ Days1'))"),
    ("sleep_lme_car1_constpower", "sleepstudy",
     "lme(Reaction ~ Days, d, random = ~ 1 | Subject, correlation = corCAR1(form = ~ Days), "
     "weights = varConstPower(form = ~ Days1))",
     "mm.lmer('Reaction ~ Days + (1 | Subject)', d, correlation=mm.cor_car1(form='~ Days'), "
     "variance=mm.var_const_power(form='~ Days1'))"),
    ("cake_lme_nested_ar1", "cake",
     "lme(angle ~ recipe + temp, d, random = ~ 1 | replicate/recipe, "
     "correlation = corAR1(form = ~ 1 | replicate/recipe))",
     "mm.lmer('angle ~ recipe + temp + (1 | replicate/recipe)', d, "
     "correlation=mm.cor_ar1(form='~ 1 | replicate/recipe'))"),
    ("cake_gls_car1_ident", "cake",
     "gls(angle ~ recipe * temp, d, correlation = corCAR1(form = ~ temp | replicate/recipe), "
     "weights = varIdent(form = ~ 1 | recipe))",
     "mm.gls('angle ~ recipe * temp', d, correlation=mm.cor_car1(form='~ temp | "
     "replicate/recipe'), variance=mm.var_ident(form='~ 1 | recipe'))"),
    ("dye_gls_cs_ident_ml", "Dyestuff",
     "gls(Yield ~ 1, d, correlation = corCompSymm(form = ~ 1 | Batch), "
     "weights = varIdent(form = ~ 1 | Batch), method = 'ML')",
     "mm.gls('Yield ~ 1', d, correlation=mm.cor_comp_symm(form='~ 1 | Batch'), "
     "variance=mm.var_ident(form='~ 1 | Batch'), method='ML')"),
    ("pastes_lme_nested_ident", "Pastes",
     "lme(strength ~ 1, d, random = ~ 1 | batch/cask, weights = varIdent(form = ~ 1 | cask))",
     "mm.lmer('strength ~ 1 + (1 | batch/cask)', d, variance=mm.var_ident(form='~ 1 | cask'))"),
    ("ar1sim_lme_ar1", "ar1sim",
     "lme(y ~ time, d, random = ~ 1 | subject, correlation = corAR1(form = ~ time | subject))",
     "mm.lmer('y ~ time + (1 | subject)', d, correlation=mm.cor_ar1(form='~ time | subject'))"),
    ("ar1sim_gls_arma11_ml", "ar1sim",
     "gls(y ~ time, d, correlation = corARMA(form = ~ time | subject, p = 1, q = 1), "
     "method = 'ML')",
     "mm.gls('y ~ time', d, correlation=mm.cor_arma(form='~ time | subject', p=1, q=1), "
     "method='ML')"),
    ("ar1sim_lme_car1_varexp_ml", "ar1sim",
     "lme(y ~ time, d, random = ~ 1 | subject, correlation = corCAR1(form = ~ time), "
     "weights = varExp(form = ~ time), method = 'ML')",
     "mm.lmer('y ~ time + (1 | subject)', d, correlation=mm.cor_car1(form='~ time'), "
     "variance=mm.var_exp(form='~ time'), REML=False)"),
    ("machines_lme_nested_ident", "Machines",
     "lme(score ~ Machine, d, random = ~ 1 | Worker/Machine, "
     "weights = varIdent(form = ~ 1 | Machine))",
     "mm.lmer('score ~ Machine + (1 | Worker/Machine)', d, "
     "variance=mm.var_ident(form='~ 1 | Machine'))"),
    ("oats_lme_nested_exp", "Oats",
     "lme(yield ~ nitro, d, random = ~ 1 | Block/Variety, "
     "correlation = corExp(form = ~ nitro | Block/Variety))",
     "mm.lmer('yield ~ nitro + (1 | Block/Variety)', d, "
     "correlation=mm.cor_exp(form='~ nitro | Block/Variety'))"),
    ("bw_lme_slope_ar1_ident", "BodyWeight",
     "lme(weight ~ Time * Diet, d, random = ~ Time | Rat, correlation = corAR1(), "
     "weights = varIdent(form = ~ 1 | Diet))",
     "mm.lmer('weight ~ Time * Diet + (Time | Rat)', d, correlation=mm.cor_ar1(), "
     "variance=mm.var_ident(form='~ 1 | Diet'))"),
    ("ovary_lme_arma12_ml", "Ovary",
     "lme(follicles ~ sin2pi + cos2pi, d, random = ~ 1 | Mare, "
     "correlation = corARMA(p = 1, q = 2), method = 'ML')",
     "mm.lmer('follicles ~ sin2pi + cos2pi + (1 | Mare)', d, "
     "correlation=mm.cor_arma(p=1, q=2), REML=False)"),
    ("pixel_lme_nested_varexp", "Pixel",
     "lme(pixel ~ day + day2, d, random = list(Dog = ~ day, Side = ~ 1), "
     "weights = varExp(form = ~ day))",
     "mm.lmer('pixel ~ day + day2 + (day | Dog) + (1 | Dog:Side)', d, "
     "variance=mm.var_exp(form='~ day'))"),
    ("orange_lme_car1_power", "Orange",
     "lme(circumference ~ age1, d, random = ~ 1 | Tree, correlation = corCAR1(form = ~ age1), "
     "weights = varPower(form = ~ age1))",
     "mm.lmer('circumference ~ age1 + (1 | Tree)', d, correlation=mm.cor_car1(form='~ age1'), "
     "variance=mm.var_power(form='~ age1'))"),
    ("bw_gls_cs_constpower", "BodyWeight",
     "gls(weight ~ Time * Diet, d, correlation = corCompSymm(form = ~ 1 | Rat), "
     "weights = varConstPower(form = ~ Time))",
     "mm.gls('weight ~ Time * Diet', d, correlation=mm.cor_comp_symm(form='~ 1 | Rat'), "
     "variance=mm.var_const_power(form='~ Time'))"),
]


def load(data_dir: Path, name: str) -> pd.DataFrame:
    """A data set as speed8_nlme.R reads it (factor columns as pandas categoricals,
    converted once, outside the timing)."""
    d = pd.read_csv(data_dir / f"{name}.csv")
    for col in FACTORS[name]:
        d[col] = d[col].astype(str).astype("category")
    return d


def fit(py_call: str, d: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eval(py_call, {"mm": mm, "d": d})


def evaluations(m) -> int | None:
    opt = getattr(m, "opt", None) or getattr(getattr(m, "lmm", None), "opt", None)
    return getattr(opt, "n_evals", None)


def time_ours(py_call: str, d: pd.DataFrame, repeat: int) -> tuple[float, object]:
    """Fastest of ``repeat`` batches, CPU seconds per fit, and the last fit."""
    t0 = time.process_time()
    m = fit(py_call, d)
    batch = max(1, math.ceil(MIN_BATCH_S / max(time.process_time() - t0, 1e-3)))
    best = math.inf
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(batch):
            m = fit(py_call, d)
        best = min(best, (time.process_time() - t0) / batch)
    return best, m


def time_nlme(data_dir: Path, models: list[tuple], repeat: int) -> dict:
    job = {"dir": str(data_dir), "repeat_n": repeat, "min_batch_s": MIN_BATCH_S,
           "models": [{"name": n, "data": data, "factors": FACTORS[data], "r_call": r}
                      for n, data, r, _ in models]}
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps(job))
        subprocess.run(["Rscript", str(R_TIMER), str(spec), str(out)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        return {r["name"]: r for r in json.loads(out.read_text())["results"]}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# speed8 sweep: R-side models vs nlme ({meta['date']})", "",
             f"CPU seconds per fit, fastest of {meta['repeat']} batches of >= {MIN_BATCH_S} s "
             f"after a warm-up, best of {meta['rounds']} rounds alternating ours / nlme; load "
             f"{meta['load']} at start, {meta['load_end']} at end.", "",
             "| model | n | ours (s) | nlme (s) | ratio | evals | nlme iter | "
             "logLik - nlme's |", "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | | | | | | | {r['error'][:60]} |")
            continue
        ratio = r["nlme_seconds"] / r["seconds"]
        ratios.append(ratio)
        lines.append(f"| {r['name']} | {r['nobs']} | {r['seconds']:.4f} | "
                     f"{r['nlme_seconds']:.4f} | {ratio:.1f}x | {r['evaluations']} | "
                     f"{r['nlme_iterations']} | {r['dloglik']:+.1e} |")
    if ratios:
        lines += ["", f"Geometric mean {statistics.geometric_mean(ratios):.1f}x; smallest "
                  f"{min(ratios):.1f}x; {sum(x >= 5 for x in ratios)} of {len(ratios)} at "
                  f"least 5x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--data", default="/tmp/speed8_data")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    data_dir = Path(args.data)
    subprocess.run(["Rscript", str(R_SCRIPT), "export", str(data_dir)], cwd=ROOT, check=True)
    wanted = set(filter(None, args.only.split(",")))
    models = [m for m in MODELS if not wanted or m[0] in wanted]
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for model in models:
        name, data, _, py_call = model
        d = load(data_dir, data)
        row = {"name": name, "seconds": math.inf, "nlme_seconds": math.inf}
        for _ in range(max(1, args.rounds)):
            try:
                sec, m = time_ours(py_call, d, args.repeat)
            except Exception as e:  # reported in the table, the sweep goes on
                row = {"name": name, "error": f"ours: {type(e).__name__}: {e}"}
                break
            r = time_nlme(data_dir, [model], args.repeat)[name]
            if "error" in r:
                row = {"name": name, "error": f"nlme: {r['error']}"}
                break
            row.update(seconds=min(row["seconds"], sec),
                       nlme_seconds=min(row["nlme_seconds"], r["seconds"]), nobs=m.nobs,
                       evaluations=evaluations(m), nlme_iterations=r.get("iterations"),
                       loglik=m.loglik, loglik_nlme=r["logLik"],
                       dloglik=m.loglik - r["logLik"])
        rows.append(row)
        if "error" in row:
            print(f"{name:28s} ERROR {row['error'][:100]}", flush=True)
        else:
            flag = "" if row["dloglik"] >= -LOGLIK_TOL else "  LOGLIK BELOW NLME"
            print(f"{name:28s} ours {row['seconds']:.4f}s nlme {row['nlme_seconds']:.4f}s "
                  f"{row['nlme_seconds'] / row['seconds']:5.1f}x evals "
                  f"{row['evaluations']} dLL {row['dloglik']:+.1e}{flag}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds,
            "repeat": args.repeat, "load": load0,
            "load_end": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    out = Path(args.out)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
