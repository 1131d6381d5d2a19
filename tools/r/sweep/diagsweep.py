"""Compare our diagnostics and predictions with tools/r/sweep/diagsweep.R (lane diagsweep).

    python tools/r/sweep/diagsweep.py --out /tmp/diagsweep --make-data   # simulated sets
    Rscript tools/r/sweep/diagsweep.R --out=/tmp/diagsweep
    python tools/r/sweep/diagsweep.py --out /tmp/diagsweep [--only id1,id2]

Per variant: r2 / icc (performance's r2_nakagawa / icc), the variance decomposition,
the overdispersion test (performance's check_overdispersion), expected zeros
(check_zeroinflation, which rounds), singularity, predictions (conditional, population,
partial ``re_form``, a new level), glmmTMB's ``se.fit`` on the link and response scales, and
the residuals of every type. Prints the worst relative difference of each and every
exception; ``!!`` marks a difference above its tolerance.

``--sim`` adds the statistical checks of the simulated quantile residuals (no R).
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

#: R2 / ICC: relative tolerance where performance's definitions are ours
R2_RTOL = 1e-4
#: overdispersion chi-square, ratio and p: relative
OD_RTOL = 1e-6
#: predictions, prediction SEs, residuals: relative (to max(|ref|, 1e-8 scale))
PRED_RTOL = 1e-4


def make_data(out: Path) -> None:
    """``simsing``: 20 groups of 5 with no group effect (seed 1 makes both the LMM on ``y``
    and the Poisson GLMM on ``c`` singular)."""
    rng = np.random.default_rng(1)
    g = np.repeat([f"g{i:02d}" for i in range(20)], 5)
    x = rng.normal(size=100)
    y = 1 + 0.5 * x + rng.normal(size=100)
    c = rng.poisson(np.exp(0.3 + 0.4 * x))
    (out / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"g": g, "x": x, "y": y, "c": c}).to_csv(out / "data" / "simsing.csv",
                                                          index=False)


OUT = Path("/tmp/diagsweep")


def load(spec: dict) -> pd.DataFrame:
    """The data set with the R script's modifications (NA rows, weights ``w3``)."""
    if spec.get("csv"):
        d = pd.read_csv(OUT / "data" / f"{spec['data']}.csv")
        d["g"] = pd.Categorical(d["g"])
    else:
        d = mm.datasets.load(spec["data"]).copy()
    d["w3"] = 1.0 + np.arange(len(d)) % 3
    na = spec.get("na")
    if na is not None:
        rows = np.atleast_1d(na).astype(int) - 1
        col = spec["response"]
        d[col] = d[col].astype(float)
        d.loc[d.index[rows], col] = np.nan
    return d


def _beta(m) -> np.ndarray:
    view = m.component("cond") if callable(getattr(m, "component", None)) else m
    return np.asarray(view.beta, float)


def fit(spec: dict, d: pd.DataFrame):
    f = spec["formula"]
    w = "w3" if spec.get("weights") else None
    kw = {"weights": d[w].to_numpy()} if w else {}
    if spec["fitter"] == "lmer":
        return mm.lmer(f, d, REML=bool(spec.get("REML")), **kw)
    if spec["fitter"] == "glmer":
        return mm.glmer(f, d, family=spec["family"], link=spec["link"], **kw)
    if spec["fitter"] == "glmer.nb":
        return mm.glmer_nb(f, d)
    return mm.glmmtmb(f, d, family=spec["family"], link=spec["link"],
                      ziformula=spec.get("zi", "~0"), REML=bool(spec.get("REML")), **kw)


def rel(a, b, scale=None) -> float:
    a = np.atleast_1d(np.asarray(a, float))
    b = np.atleast_1d(np.asarray([np.nan if v in ("NA", None) else v for v in np.atleast_1d(b)],
                                 float))
    if a.shape != b.shape:
        return float("inf")
    both_nan = np.isnan(a) & np.isnan(b)
    s = np.maximum(np.abs(b), scale if scale is not None else 1e-8)
    d = np.where(both_nan, 0.0, np.abs(a - b) / s)
    return float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0


def _vec_scale(ref) -> float:
    """Residuals are compared relative to the largest one (near-zero residuals would
    magnify optimizer-level differences of the fits)."""
    v = np.asarray([np.nan if x in ("NA", None) else x for x in ref], float)
    return float(np.nanmax(np.abs(v))) if v.size else 1.0


def newdata(rec: dict, d: pd.DataFrame) -> pd.DataFrame:
    nd = pd.DataFrame(rec["newdata"])
    for c in nd.columns:
        if c in d.columns and isinstance(d[c].dtype, pd.CategoricalDtype):
            nd[c] = pd.Categorical(nd[c].astype(str), categories=d[c].cat.categories)
    return nd


def _new_level(m, nd: pd.DataFrame) -> pd.DataFrame:
    """Row 4 of ``nd`` with a level no grouping factor (that is a column) has seen."""
    view = m.component("cond") if callable(getattr(m, "component", None)) else m
    nd2 = nd.copy()
    for t in view.design.terms:
        g = str(t.group)
        if ":" not in g and g in nd2.columns:
            vals = nd2[g].astype(str).to_numpy().copy()
            vals[3] = "zz_new"
            nd2[g] = vals
    return nd2


def compare(name: str, rec: dict) -> list[str]:
    spec = rec["spec"]
    out: list[str] = []

    def check(label, fn, ref, tol, scale=None):
        if isinstance(ref, str):
            try:
                fn()
                out.append(f"   {label}: R error ({ref[:60]}), ours ran")
            except Exception as e:
                out.append(f"   {label}: both error (ours: {type(e).__name__}: {str(e)[:80]})")
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val = fn()
        except Exception as e:
            out.append(f"!! {label}: EXC {type(e).__name__}: {str(e)[:140]}")
            out.append("     " + traceback.format_exc().splitlines()[-3].strip())
            return
        r = rel(val, ref, scale)
        out.append(f"{'!!' if not r <= tol else '  '} {label}: {r:.2e}")

    d = load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit(spec, d)
    out.append(f"   dLL {m.loglik - rec['logLik']:+.2e}")
    if "beta" in rec:
        b = _beta(m)
        out.append(f"   dbeta(rel) {rel(b, rec['beta'], 1e-3):.2e}")
    tmb = spec["fitter"] == "glmmTMB"
    if isinstance(rec["r2"], dict):
        check("r2", lambda: [m.r2().conditional, m.r2().marginal],
              [rec["r2"]["conditional"], rec["r2"]["marginal"]], R2_RTOL)
    else:
        check("r2", lambda: m.r2(), rec["r2"], R2_RTOL)
    if isinstance(rec["icc"], dict):
        check("icc", lambda: [m.icc().adjusted, m.icc().unadjusted],
              [rec["icc"]["adjusted"], rec["icc"]["unadjusted"]], R2_RTOL)
    if isinstance(rec.get("variance"), dict):
        v = rec["variance"]
        for ours, theirs in (("fixed", "var.fixed"), ("random", "var.random"),
                             ("residual", "var.residual"),
                             ("distribution", "var.distribution"),
                             ("dispersion", "var.dispersion")):
            if theirs in v:
                check(f"var.{ours}", lambda o=ours: getattr(m.r2().variances, o),
                      v[theirs], R2_RTOL, scale=1e-10)
    od = rec["overdispersion"]
    if isinstance(od, dict):
        def ourod():
            o = m.overdispersion()
            o = o if isinstance(o, dict) else o.__dict__
            return [o["chisq"], o["ratio"], o["rdf"], o["p"]]
        check("overdisp", ourod, [od["chisq"], od["ratio"], od["rdf"], od["p"]], OD_RTOL,
              scale=1e-300)
    zi = rec.get("zeroinflation")
    if isinstance(zi, dict):
        check("zeros(rounded)", lambda: [round(mm.expected_zeros(m).expected),
                                         mm.expected_zeros(m).observed],
              [zi["predicted"], zi["observed"]], 0.0)
    if "isSingular" in rec:
        check("isSingular", lambda: float(m.is_singular()), float(rec["isSingular"]), 0.0)
    if isinstance(rec.get("singular_perf"), bool):
        check("singular(perf)", lambda: float(m.is_singular()), float(rec["singular_perf"]), 0.0)
    if isinstance(rec.get("convergence"), bool):
        check("converged", lambda: float(m.converged), float(rec["convergence"]), 0.0)
    nd = newdata(rec, d)
    if tmb:
        for tp in ("link", "response"):
            for key, rf in ((f"pred_{tp}", None), (f"pred0_{tp}", "~0")):
                r = rec[key]
                if isinstance(r, str):
                    check(key, lambda: None, r, 0)
                    continue
                check(key + ".fit", lambda tp=tp, rf=rf: m.predict(nd, type=tp, re_form=rf,
                                                                   se_fit=True)["fit"],
                      r["fit"], PRED_RTOL)
                check(key + ".se", lambda tp=tp, rf=rf: m.predict(nd, type=tp, re_form=rf,
                                                                  se_fit=True)["se_fit"],
                      r["se"], PRED_RTOL)
        if isinstance(rec.get("pred_partial"), dict):
            rf = rec["re_form_partial"]
            rf = rf if isinstance(rf, str) else "".join(rf)
            for k, col in (("fit", "fit"), ("se", "se_fit")):
                check(f"pred[{rf}].{k}", lambda rf=rf, col=col: m.predict(
                    nd, re_form=rf, se_fit=True)[col], rec["pred_partial"][k], PRED_RTOL)
        pn = rec.get("pred_newlev")
        if pn is not None:
            nd2 = _new_level(m, nd)
            if isinstance(pn, str):
                check("pred_newlev", lambda: m.predict(nd2, allow_new_levels=True), pn, 0)
            else:
                for k, col in (("fit", "fit"), ("se", "se_fit")):
                    check(f"pred_newlev.{k}", lambda col=col: m.predict(
                        nd2, allow_new_levels=True, se_fit=True)[col], pn[k], PRED_RTOL)
        for tp in ("response", "pearson"):
            check(f"resid.{tp}", lambda tp=tp: m.residuals(tp), rec[f"resid_{tp}"], PRED_RTOL,
                  scale=_vec_scale(rec[f"resid_{tp}"]))
    else:
        check("pred", lambda: m.predict(nd), rec["pred"], PRED_RTOL, scale=1e-6)
        check("pred0", lambda: m.predict(nd, re_form="~0"), rec["pred0"], PRED_RTOL,
              scale=1e-6)
        if "pred_partial" in rec:
            rf = rec["re_form_partial"]
            rf = rf if isinstance(rf, str) else "".join(rf)
            check(f"pred[{rf}]", lambda: m.predict(nd, re_form=rf), rec["pred_partial"],
                  PRED_RTOL, scale=1e-6)
        nd2 = _new_level(m, nd)
        check("pred_newlev", lambda: m.predict(nd2, allow_new_levels=True), rec["pred_newlev"],
              PRED_RTOL, scale=1e-6)
        if spec["fitter"] != "lmer":
            check("pred_resp", lambda: m.predict(nd, type="response"), rec["pred_resp"],
                  PRED_RTOL, scale=1e-6)
        for tp in ("deviance", "pearson", "response", "working"):
            check(f"resid.{tp}", lambda tp=tp: m.residuals(tp), rec[f"resid_{tp}"], PRED_RTOL,
                  scale=_vec_scale(rec[f"resid_{tp}"]))
    return out


#: groups and rows per group of the simulated data sets of ``--sim``
SIM_GROUPS, SIM_PER_GROUP = 30, 8
#: "not systematically small": at most this share of KS p-values below 0.05 ...
SIM_MAX_SMALL = 0.2
#: ... and their median above this
SIM_MIN_MEDIAN = 0.2
#: the dispersion test must reject an overdispersed model in at least this share of seeds
SIM_MIN_POWER = 0.8


def _sim_data(kind: str, seed: int) -> tuple[pd.DataFrame, dict]:
    """One data set of a known GLMM (``kind``) and the fit's arguments."""
    rng = np.random.default_rng(seed)
    n = SIM_GROUPS * SIM_PER_GROUP
    g = np.repeat([f"g{i:02d}" for i in range(SIM_GROUPS)], SIM_PER_GROUP)
    x = rng.normal(size=n)
    b = rng.normal(scale=0.5, size=SIM_GROUPS)[np.repeat(np.arange(SIM_GROUPS), SIM_PER_GROUP)]
    t = rng.integers(1, 5, size=n).astype(float)
    d = pd.DataFrame({"g": pd.Categorical(g), "x": x, "lt": np.log(t)})
    eta = 0.5 + 0.4 * x + b
    if kind == "poisson_offset":
        d["y"] = rng.poisson(t * np.exp(eta))
        return d, {"fn": mm.glmer, "f": "y ~ x + offset(lt) + (1 | g)", "family": "poisson"}
    if kind == "nb2":
        mu = np.exp(eta)
        d["y"] = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
        return d, {"fn": mm.glmer_nb, "f": "y ~ x + (1 | g)"}
    if kind == "binomial_cbind":
        size = rng.integers(5, 16, size=n)
        d["k"] = rng.binomial(size, 1 / (1 + np.exp(-(eta - 0.5))))
        d["size"] = size
        return d, {"fn": mm.glmer, "f": "cbind(k, size - k) ~ x + (1 | g)", "family": "binomial"}
    if kind == "gamma_tmb":
        d["y"] = rng.gamma(5.0, np.exp(eta) / 5.0)
        return d, {"fn": mm.glmmtmb, "f": "y ~ x + (1 | g)", "family": "Gamma", "link": "log"}
    if kind == "lmm_weights":
        w = 1.0 + np.arange(n) % 3
        d["y"] = eta + rng.normal(size=n) / np.sqrt(w)
        return d, {"fn": mm.lmer, "f": "y ~ x + (1 | g)", "weights": w}
    if kind == "overdispersed":       # NB(theta = 1) counts fitted as Poisson
        mu = np.exp(eta)
        d["y"] = rng.negative_binomial(1.0, 1.0 / (1.0 + mu))
        return d, {"fn": mm.glmer, "f": "y ~ x + (1 | g)", "family": "poisson"}
    raise ValueError(kind)


def sim_checks(n_seeds: int) -> None:
    """Statistical properties of the simulated quantile residuals (no R): KS p-values of
    correctly specified models are not systematically small; the dispersion test rejects
    an overdispersed Poisson fit."""
    for kind in ("poisson_offset", "nb2", "binomial_cbind", "gamma_tmb", "lmm_weights",
                 "overdispersed"):
        ks, disp = [], []
        for seed in range(n_seeds):
            d, a = _sim_data(kind, 1000 + seed)
            kw = {k: v for k, v in a.items() if k in ("family", "link", "weights")}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = a["fn"](a["f"], d, **kw)
                res = mm.simulate_residuals(m, n_sim=200, seed=seed)
                ks.append(res.test_uniformity().p_value)
                disp.append(res.test_dispersion(alternative="greater").p_value)
        ks, disp = np.asarray(ks), np.asarray(disp)
        if kind == "overdispersed":
            power = float(np.mean(disp < 0.05))
            flag = "!!" if power < SIM_MIN_POWER else "  "
            print(f"{flag} {kind}: dispersion test rejects {power:.0%} of {n_seeds} seeds")
        else:
            small, med = float(np.mean(ks < 0.05)), float(np.median(ks))
            flag = "!!" if small > SIM_MAX_SMALL or med < SIM_MIN_MEDIAN else "  "
            print(f"{flag} {kind}: KS p < 0.05 in {small:.0%}, median p {med:.2f}; "
                  f"overdispersion p < 0.05 in {np.mean(disp < 0.05):.0%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/diagsweep")
    ap.add_argument("--only", default="")
    ap.add_argument("--make-data", action="store_true")
    ap.add_argument("--sim", type=int, default=0, metavar="N_SEEDS")
    args = ap.parse_args()
    if args.sim:
        sim_checks(args.sim)
        return
    global OUT
    OUT = Path(args.out)
    if args.make_data:
        make_data(OUT)
        return
    ref = json.loads((Path(args.out) / "ref.json").read_text())
    only = [s for s in args.only.split(",") if s]
    for name, rec in ref.items():
        if only and name not in only:
            continue
        print(f"== {name}")
        if "error" in rec:
            print(f"   R failed: {rec['error']}")
            continue
        try:
            for line in compare(name, rec):
                print(line)
        except Exception as e:
            print(f"!! FIT/COMPARE EXC {type(e).__name__}: {e}")
            traceback.print_exc()


if __name__ == "__main__":
    main()
