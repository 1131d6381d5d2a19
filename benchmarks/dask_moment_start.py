"""The moment start on Dask input: in-memory fit, Dask fit (default start: the in-memory
fit's moment estimate, read off the summed cross-products) and Dask fit from lme4's
theta0 (what Dask fits did before they shared the start), on a 2-worker LocalCluster.

``python benchmarks/dask_moment_start.py [slopes] [movielens]``: crossed_slopes_200k
(``y ~ x + (1 | g1) + (1 | g2) + (x | g3)``, models.toml) and a 200,000-row MovieLens-like
``y ~ x + (1 | user) + (1 | item)`` (scale_bench's simulation). Prints evaluations, the
optimization's wall time and the distances to the in-memory fit (results:
benchmarks/results/dask_notes.md).
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _cases(which):
    import pandas as pd
    from scale_bench import simulate
    from simulate import generate

    if "slopes" in which:
        with open(HERE / "models.toml", "rb") as fh:
            spec = tomllib.load(fh)["datasets"]["crossed_slopes_200k"]
        yield ("crossed_slopes_200k", pd.DataFrame(generate(spec).columns),
               "y ~ x + (1 | g1) + (1 | g2) + (x | g3)")
    if "movielens" in which:
        yield ("movielens_200k", simulate(200_000, "crossed"),
               "y ~ x + (1 | user) + (1 | item)")


def _line(label, m, mem, wall):
    dist = {"theta": np.max(np.abs(m.theta - mem.theta)),
            "beta": np.max(np.abs(m.beta - mem.beta)),
            "start": np.max(np.abs(m.opt.x0 - mem.opt.x0))}
    return (f"  {label}: wall {wall:.2f} s, optimize {m.timings['optimize_s']:.2f} s, "
            f"evals {m.opt.n_evals}, objective rel {abs(m.objective / mem.objective - 1):.1e}, "
            + ", ".join(f"{k} {v:.1e}" for k, v in dist.items()))


def main() -> None:
    import dask.dataframe as dd
    import distributed

    import mixedmodels as mm

    warnings.simplefilter("ignore")
    print("load", os.getloadavg(), flush=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        for name, df, formula in _cases(sys.argv[1:] or ["slopes", "movielens"]):
            ddf = dd.from_pandas(df, npartitions=4).persist()
            t0 = time.perf_counter()
            mem = mm.lmer(formula, df)
            print(f"{name}: in memory {time.perf_counter() - t0:.2f} s, evals "
                  f"{mem.opt.n_evals}", flush=True)
            for label, kw in [("dask, moment start", {}),
                              ("dask, lme4's start", {"start": mem.design.theta0()})]:
                t0 = time.perf_counter()
                m = mm.lmer(formula, ddf, **kw)
                print(_line(label, m, mem, time.perf_counter() - t0), flush=True)
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
