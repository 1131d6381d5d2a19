"""Time ModelDensity.evaluate per call (orders 0-3) for a few families at n observations.

    python benchmarks/density_bench.py [--n 10000] [--reps 20]

The general Laplace engine calls ``evaluate(order=2)`` dozens of times per fit; this
reports the best of ``reps`` calls (milliseconds) so load from other processes matters
less. Not part of ``run.py``: the densities are a component, not a fit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mixedmodels.families import ModelDensity, ZeroInflated, make_response_family


def cases(n: int, rng: np.random.Generator):
    """(label, ModelDensity, y, etas) for the families timed."""
    mu = np.exp(rng.normal(1.5, 0.5, n))
    counts = rng.poisson(mu * rng.gamma(2.0, 0.5, n)).astype(float)
    yield "nbinom2", ModelDensity(make_response_family("nbinom2")), counts, {
        "mu": np.log(mu), "phi": np.full(n, np.log(2.0))}
    zi = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.poisson(mu)).astype(float)
    yield "zi-poisson", ModelDensity(ZeroInflated(make_response_family("poisson"))), zi, {
        "mu": np.log(mu), "zi": np.full(n, -0.8)}
    tw = make_response_family("tweedie")
    mu_t = np.exp(rng.normal(1.0, 0.5, n))
    yield "tweedie", ModelDensity(tw), tw.sample(rng, {"mu": mu_t, "phi": 1.5, "power": 1.6}), {
        "mu": np.log(mu_t), "phi": np.full(n, np.log(1.5)), "power": np.full(n, np.log(1.5))}
    yield "compois", ModelDensity(make_response_family("compois")), counts, {
        "mu": np.log(mu), "phi": np.full(n, np.log(1.5))}
    yield "gaussian", ModelDensity(make_response_family("gaussian")), rng.normal(size=n), {
        "mu": np.zeros(n), "phi": np.zeros(n)}


def main(argv=None) -> None:
    """Print the best time per call for each family and order.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--n``, ``--reps``).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    for label, md, y, etas in cases(args.n, np.random.default_rng(1)):
        row = []
        for order in range(4):
            md.evaluate(y, etas, order=order)
            best = np.inf
            for _ in range(args.reps):
                t = time.perf_counter()
                md.evaluate(y, etas, order=order)
                best = min(best, time.perf_counter() - t)
            row.append(best * 1e3)
        print(f"{label:11s} " + "  ".join(f"order {k}: {v:7.2f} ms" for k, v in enumerate(row)))


if __name__ == "__main__":
    main()
