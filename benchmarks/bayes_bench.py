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
measurement behind choosing NUTS. ``--blackjax`` runs blackjax's NUTS (when jax and blackjax
are installed) on the same numpy density, called back from JAX through
``jax.pure_callback`` with the exact gradient as a custom VJP (Stan-style window adaptation,
diagonal metric, 1000 + 1000 steps per chain; the CPU time includes JAX's compilation):
the measurement behind not choosing it. ``--merge`` adds to the models of an existing
``--out`` instead of starting afresh.

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
from mixedmodels.bayes import convergence as cv
from mixedmodels.bayes.nutpie_backend import import_nutpie
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
    if backend == "nutpie":
        import_nutpie()         # the import (~1 CPU s, once per session) is not timed
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
            "n_evals": EMCEE_WALKERS * 2000, "emcee": emcee.__version__}


def time_blackjax(name: str, seed: int = 1) -> dict | None:
    try:
        import blackjax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    t = target_of(_fit(name))
    shape = (jax.ShapeDtypeStruct((), jnp.float64), jax.ShapeDtypeStruct((t.dim,), jnp.float64))

    def host(x):
        lp, g = t(np.asarray(x))
        return np.float64(lp), np.asarray(g, np.float64)

    @jax.custom_vjp
    def logdensity(x):
        return jax.pure_callback(host, shape, x)[0]

    def fwd(x):
        return jax.pure_callback(host, shape, x)

    logdensity.defvjp(fwd, lambda g, ct: (ct * g,))
    rng = np.random.default_rng(seed)
    c0, draws = time.process_time(), []
    with blas_threads():
        for c in range(4):
            k1, k2 = jax.random.split(jax.random.PRNGKey(seed + c))
            x0 = jnp.asarray(t.z_hat + 0.05 * rng.standard_normal(t.dim) * (1 + np.abs(t.z_hat)))
            warm = blackjax.window_adaptation(blackjax.nuts, logdensity,
                                              is_mass_matrix_diagonal=True)
            (state, params), _ = warm.run(k1, x0, num_steps=1000)
            step = jax.jit(blackjax.nuts(logdensity, **params).step)

            def body(state, k, step=step):
                state, _ = step(k, state)
                return state, state.position

            _, pos = jax.lax.scan(body, state, jax.random.split(k2, 1000))
            draws.append(np.asarray(pos))
    cpu = time.process_time() - c0
    Z = np.stack(draws)
    P = t.parameters(Z.reshape(-1, t.dim)).reshape(Z.shape[0], Z.shape[1], -1)
    ess = float(min(cv.ess_bulk(P[:, :, j]) for j in range(P.shape[2])))
    return {"cpu_s": cpu, "min_ess": ess, "ess_per_cpu_s": ess / cpu,
            "max_r_hat": float(max(cv.r_hat(P[:, :, j]) for j in range(P.shape[2]))),
            "n_evals": int(t.n_evals),
            "blackjax": blackjax.__version__, "jax": jax.__version__}


def _cell(r: dict, key: str, fmt: str) -> str:
    v = r.get(key)
    return "" if v is None else format(v, fmt)


def _row(name: str, sampler: str, r: dict) -> str:
    """One table row; ``r`` may lack what a sampler does not report (empty cells)."""
    per_k = (1000.0 * r["min_ess"] / r["n_evals"]) if r.get("n_evals") else None
    cells = [name, sampler, _cell(r, "wall_s", ".1f"), _cell(r, "cpu_s", ".1f"),
             _cell(r, "n_evals", "d"), _cell(r, "min_ess", ".0f"),
             _cell(r, "max_r_hat", ".3f"), _cell(r, "ess_per_cpu_s", ".0f"),
             "" if per_k is None else f"{per_k:.0f}"]
    return "| " + " | ".join(cells) + " |"


def markdown(res: dict) -> str:
    lines = ["# Posterior sampling: m.sample() timings", "",
             "4 chains x 1000 draws after 1000 warmup, chains one after the other. "
             f"Machine: {res['machine']}. CPU seconds are the figures to compare on a "
             "shared machine (wall time also counts the waiting for a core); ESS per 1000 "
             "log-density evaluations does not depend on the load at all. One row per "
             "model and sampler: `nutpie` (the default backend), `builtin` (the numpy "
             "NUTS), `emcee` (32 walkers x 1000 kept steps; ESS from its integrated "
             "autocorrelation time), `blackjax` (our density called back from JAX; CPU "
             "time with JAX's compilation) and rstanarm's `stan_lmer` (recorded timings; it "
             "samples the random effects too).", "",
             "| model | sampler | wall s | CPU s | evals | min ESS | max R-hat "
             "| ESS / CPU s | ESS / 1000 evals |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in res["models"].items():
        for backend, r in rows.items():
            if not r:
                continue
            if backend in ("emcee", "blackjax"):
                lines.append(_row(name, f"{backend} {r[backend]}", r))
            else:
                lines.append(_row(name, backend, {**r, "min_ess": r["min_ess_bulk"]}))
        rs = (res.get("rstanarm") or {}).get(name)
        if rs:
            ess = rs.get("min_n_eff")
            lines.append(_row(name, f"rstanarm {rs.get('rstanarm', '')}".strip(),
                              {"wall_s": rs.get("wall_s"), "cpu_s": rs.get("cpu_s"),
                               "min_ess": ess, "ess_per_cpu_s": ess / rs["cpu_s"]}))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rstanarm", type=Path, help="JSON of benchmarks/r/time_rstanarm.R")
    ap.add_argument("--emcee", action="store_true", help="also time emcee")
    ap.add_argument("--blackjax", action="store_true", help="also time blackjax")
    ap.add_argument("--merge", action="store_true",
                    help="add to the models of an existing --out")
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
    if args.merge and args.out.exists():
        res = json.loads(args.out.read_text())
    for name in names:
        r = {b: time_sample(name, b) for b in args.backends.split(",") if b}
        if args.emcee:
            r["emcee"] = time_emcee(name)
        if args.blackjax:
            r["blackjax"] = time_blackjax(name)
        res["models"].setdefault(name, {}).update(r)
        print(name, json.dumps(r))
    if args.rstanarm:
        res["rstanarm"] = json.loads(args.rstanarm.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    return res


if __name__ == "__main__":
    main()
