"""Per-partition cost of the Dask backend's passes: CPU seconds per row per pass.

``python benchmarks/dask_partition_cost.py --rows 5e5 --users 10000 --items 1000``

What a Dask worker does for one partition, timed with ``time.process_time`` in this one
process (no scheduler, no cluster, no other partition): the functions the passes map over
the partitions, called directly on one simulated partition of the MovieLens-like crossed
design of ``benchmarks/scale_bench.py`` (``y ~ x + (1 | user) + (1 | item)``):

* LMM (``lmer``): pass 1, the scan (dtypes, missing values, level sets); pass 2, the
  tall-skinny QR of ``[X y]``; pass 3, the cross-products ``[Z X~ y~]' [Z X~ y~]``;
* GLMM (``glmer``, Poisson counts): materializing the partition (once per fit), then one
  PIRLS pass (state, deviance and the next step's cross-products) -- the pass a GLMM fit
  makes a few hundred times.

Each function runs ``--repeat`` times; the minimum CPU time is reported (the machine is
shared: the minimum is the cost with the least interference), with its per-row cost. The
per-partition cost also carries terms that grow with the levels, not the rows (the dense
``items x items`` block of the cross-products, the level sets): ``--rows`` at two sizes
with the same levels separates the two. BLAS is held to one thread, as on a worker.

Results are appended to ``benchmarks/results/dask_partition_cost.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "dask_partition_cost.json"
FORMULA = "y ~ x + (1 | user) + (1 | item)"


def _best(fn, repeat: int) -> float:
    """The smallest CPU time of ``repeat`` calls of ``fn``."""
    best = np.inf
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def measure(rows: int, users: int, items: int, repeat: int) -> dict:
    """CPU seconds of each pass on one partition of ``rows`` rows (module docstring)."""
    import dask
    import dask.dataframe as dd

    import mixedmodels as mm
    from benchmarks.scale_bench import simulate
    from mixedmodels.backends.dask.glmm import DaskGLMMObjective
    from mixedmodels.backends.dask.glmm_pass import materialize_partition, state_partition
    from mixedmodels.backends.dask.plan import scan_level_sets
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.backends.dask.reduce import cross_partition, qr_partition
    from mixedmodels.backends.dask.scan import scan_partition
    from mixedmodels.design.lhs import make_response
    from mixedmodels.design.response import numeric_response
    from mixedmodels.formula import parse_formula
    from mixedmodels.objective.lmm import block_plan

    out: dict = {"rows": rows, "users": users, "items": items, "repeat": repeat,
                 "load_start": os.getloadavg()[0]}
    with dask.config.set(scheduler="synchronous"):
        gauss = simulate(rows, "crossed", users=users, items=items)
        pois = simulate(rows, "crossed", users=users, items=items, family="poisson")
        ddf = dd.from_pandas(gauss, npartitions=1)
        prep = prepare(FORMULA, ddf, weights=None, offset=None, contrasts=None,
                       response=numeric_response)
        plan = prep.plan
        spec = parse_formula(FORMULA)
        roles = tuple(plan.roles)
        sets = scan_level_sets(spec, [])
        method, merge = block_plan(plan.design)
        groups = () if merge is None else merge.groups
        out["lmm_method"] = method
        secs = {
            "scan": _best(lambda: scan_partition(gauss, 0, roles, sets, None), repeat),
            "qr": _best(lambda: qr_partition(gauss, 0, plan), repeat),
            "cross_products": _best(lambda: cross_partition(
                gauss, 0, plan, prep.basis.R_inv, prep.coef0, method, groups), repeat),
        }
        family = mm.families.Poisson()
        gprep = prepare(FORMULA, dd.from_pandas(pois, npartitions=1), weights=None,
                        offset=None, contrasts=None, response=make_response(family))
        obj = DaskGLMMObjective(gprep.frame, gprep, family, 1)
        pr = obj.pirls
        gplan = pr.plan
        R_inv = pr.basis.R_inv
        secs["glmm_materialize"] = _best(
            lambda: materialize_partition(pois, 0, gplan, R_inv), repeat)
        rows_mat = materialize_partition(pois, 0, gplan, R_inv)
        beta = np.linalg.lstsq(rows_mat.a.X, np.log(pois["y"].to_numpy() + 0.5),
                               rcond=None)[0]
        lams = [np.full((1, 1), 0.5) for _ in gplan.design.terms]
        u = np.random.default_rng(0).normal(0, 0.3, pr.q)
        state = pr.state(beta, lams, u)
        ref = pr.state(beta * 0.99, lams, u * 0.99)
        secs["glmm_pirls_pass"] = _best(
            lambda: state_partition(rows_mat, 0, gplan, family, R_inv, state, ref, "u",
                                    False, None), repeat)
    out["cpu_s"] = secs
    out["us_per_row"] = {k: 1e6 * v / rows for k, v in secs.items()}
    out["load_end"] = os.getloadavg()[0]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, action="append",
                    help="rows of the partition (repeatable; default 1e5 and 5e5)")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    from mixedmodels._threads import blas_threads

    records = []
    with blas_threads(1):
        for rows in args.rows or [1e5, 5e5]:
            rec = measure(int(rows), args.users, args.items, args.repeat)
            records.append(rec)
            per = ", ".join(f"{k} {v:.2f}" for k, v in rec["us_per_row"].items())
            print(f"{rec['rows']:,} rows, {args.users:,} users x {args.items:,} items "
                  f"(load {rec['load_start']:.1f}-{rec['load_end']:.1f}): "
                  f"us per row: {per}", flush=True)
    path = Path(args.out)
    old = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(old + records, indent=1) + "\n")


if __name__ == "__main__":
    main()
