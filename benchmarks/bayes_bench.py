"""Speed of ``m.sample()`` (4 chains x 1000 draws after 1000 warmup):
``python benchmarks/bayes_bench.py [--rstanarm FILE] [--emcee] [--only a,b]
[--backends nutpie,builtin]``.

For each model and each sampler (``backend="nutpie"``, the default, and ``"builtin"``, the
numpy NUTS): wall and CPU seconds, log-density evaluations, the smallest bulk ESS and
largest R-hat over the parameters, and ESS per CPU second. ``--rstanarm`` reads the timings
of rstanarm's ``stan_lmer`` on the same models from benchmarks/r/time_rstanarm.R (Stan's
NUTS, precompiled; same chains, draws and warmup). ``--emcee`` also runs emcee's
affine-invariant ensemble sampler (when installed) on the same log density, with 32 walkers
and as many kept draws (1000 steps after 1000 burn-in), and reports its ESS per CPU second
(ESS from emcee's integrated autocorrelation time of the reported parameters): the
measurement behind choosing NUTS.

Writes benchmarks/results/bayes.json and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.bayes.targets import target_of

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
MODELS = {
    "Dyestuff": ("Yield ~ 1 + (1|Batch)", "Dyestuff"),
    "Dyestuff2": ("Yield ~ 1 + (1|Batch)", "Dyestuff2"),
    "sleepstudy": ("Reaction ~ Days + (Days|Subject)", "sleepstudy"),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1|herd)", "cbpp"),
}
#: Models fitted by glmer (the rest by lmer), with their family.
GLMM_FAMILY = {"cbpp": "binomial"}
#: emcee's walkers (at least twice the dimension of every model here).
EMCEE_WALKERS = 32


def _fit(name):
    formula, data = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in GLMM_FAMILY:
            return mm.glmer(formula, mm.datasets.load(data), family=GLMM_FAMILY[name])
        return mm.lmer(formula, mm.datasets.load(data))


def time_sample(name: str, backend: str = "nutpie", seed: int = 1) -> dict:
    m = _fit(name)
    c0, w0 = time.process_time(), time.perf_counter()
    s = m.sample(draws=1000, chains=4, warmup=1000, seed=seed, warn=False, backend=backend)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    summ = s.summary()
    ess = float(summ["ess_bulk"].min())
    return {"wall_s": wall, "cpu_s": cpu, "n_evals": s.n_evals,
            "min_ess_bulk": ess, "max_r_hat": float(summ["r_hat"].max()),
            "ess_per_cpu_s": ess / cpu, "divergences": s.divergences,
            "mean_leapfrog": float(s.sampler_stats["n_leapfrog"].mean())}


def time_emcee(name: str, seed: int = 1) -> dict | None:
    try:
        import emcee
    except ImportError:
        return None
    m = _fit(name)
    t = target_of(m)
    rng = np.random.default_rng(seed)
    z0 = t.z_hat + 0.01 * rng.standard_normal((EMCEE_WALKERS, t.dim)) * (
        1.0 + np.abs(t.z_hat))
    sampler = emcee.EnsembleSampler(EMCEE_WALKERS, t.dim, lambda z: t(z)[0])
    c0 = time.process_time()
    with blas_threads():
        sampler.run_mcmc(z0, 2000, progress=False)
    cpu = time.process_time() - c0
    chain = sampler.get_chain(discard=1000)            # (steps, walkers, dim)
    P = t.parameters(chain.reshape(-1, t.dim)).reshape(chain.shape[0], chain.shape[1], -1)
    tau = emcee.autocorr.integrated_time(P, quiet=True)
    ess = float(chain.shape[0] * chain.shape[1] / np.max(tau))
    return {"cpu_s": cpu, "min_ess": ess, "ess_per_cpu_s": ess / cpu,
            "emcee": emcee.__version__}


def markdown(res: dict) -> str:
    nan = float("nan")
    lines = ["# Posterior sampling: m.sample() timings", "",
             "4 chains x 1000 draws after 1000 warmup, chains one after the other. "
             f"Machine: {res['machine']}. CPU seconds are the figures to compare on a "
             "shared machine (wall time also counts the waiting for a core). One row per "
             "model and sampler: `nutpie` (the default backend), `builtin` (the numpy "
             "NUTS), `emcee` (32 walkers x 1000 kept steps; ESS from its integrated "
             "autocorrelation time) and rstanarm's `stan_lmer` (recorded timings; it "
             "samples the random effects too).", "",
             "| model | sampler | wall s | CPU s | evals | min ESS | max R-hat "
             "| ESS / CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in res["models"].items():
        for backend, r in rows.items():
            if backend == "emcee":
                if r:
                    lines.append(f"| {name} | emcee {r['emcee']} | | {r['cpu_s']:.1f} | | "
                                 f"{r['min_ess']:.0f} | | {r['ess_per_cpu_s']:.0f} |")
                continue
            lines.append(
                f"| {name} | {backend} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{r['n_evals']} | {r['min_ess_bulk']:.0f} | {r['max_r_hat']:.3f} | "
                f"{r['ess_per_cpu_s']:.0f} |")
        rs = (res.get("rstanarm") or {}).get(name)
        if rs:
            cpu = rs.get("cpu_s", nan)
            lines.append(f"| {name} | rstanarm {rs.get('rstanarm', '')} | "
                         f"{rs.get('wall_s', nan):.1f} | {cpu:.1f} | | "
                         f"{rs.get('min_n_eff', nan):.0f} | | "
                         f"{rs.get('min_n_eff', nan) / cpu:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rstanarm", type=Path, help="JSON of benchmarks/r/time_rstanarm.R")
    ap.add_argument("--emcee", action="store_true", help="also time emcee")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--backends", default="nutpie,builtin",
                    help="comma-separated m.sample() backends to time")
    ap.add_argument("--out", type=Path, default=OUT / "bayes.json")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render the Markdown of --out (adding --rstanarm) without running")
    args = ap.parse_args(argv)
    if args.render_only:
        res = json.loads(args.out.read_text())
        if args.rstanarm:
            res["rstanarm"] = json.loads(args.rstanarm.read_text())
            args.out.write_text(json.dumps(res, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(markdown(res))
        return res
    names = [n for n in MODELS if not args.only or n in args.only.split(",")]
    res = {"machine": f"{platform.machine()}, Python {platform.python_version()}",
           "models": {}}
    for name in names:
        r = {b: time_sample(name, b) for b in args.backends.split(",")}
        if args.emcee:
            r["emcee"] = time_emcee(name)
        res["models"][name] = r
        print(name, json.dumps(r))
    if args.rstanarm:
        res["rstanarm"] = json.loads(args.rstanarm.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    return res


if __name__ == "__main__":
    main()
