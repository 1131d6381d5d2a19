"""Passes and CPU of a crossed glmer fit on Dask input: BOBYQA against the exact gradients.

``python benchmarks/dask_gradient_passes.py --rows 1e5 --users 1000 --items 100``

The simulated ratings-like counts of ``scale_bench.py`` (``y ~ x + (1 | user) + (1 |
item)``, Poisson or binomial), fitted by ``glmer`` on a Dask frame on Dask's synchronous
scheduler (the passes are the scheduler's work items: their number does not depend on
where they run, and the CPU time of the one process is all the fit's work), with
``optimizer="bobyqa"`` (both stages derivative-free) and ``"auto"`` (both stages on their
exact gradients, the in-memory default), and the in-memory fit with ``"auto"`` for the
agreement. Reported: distributed passes, evaluations per stage, CPU seconds
(``time.process_time``: the machine is shared, so its wall times are not the fit's) and
the objectives. Results are appended to ``benchmarks/results/dask_gradient_passes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "dask_gradient_passes.json"
FORMULA = "y ~ x + (1 | user) + (1 | item)"


def run(rows: int, users: int, items: int, family: str, nagq: int, partitions: int,
        optimizers=("bobyqa", "auto")) -> list[dict]:
    import dask
    import dask.dataframe as dd
    from scale_bench import simulate

    import mixedmodels as mm

    df = simulate(rows, "crossed", users=users, items=items, family=family)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c0 = time.process_time()
        m_mem = mm.glmer(FORMULA, df, family=family, nAGQ=nagq)
        cpu_mem = time.process_time() - c0
        with dask.config.set(scheduler="synchronous"):
            ddf = dd.from_pandas(df, npartitions=partitions).persist()
            for optimizer in optimizers:
                c0 = time.process_time()
                m = mm.glmer(FORMULA, ddf, family=family, nAGQ=nagq, optimizer=optimizer)
                cpu = time.process_time() - c0
                out.append({
                    "rows": rows, "users": users, "items": items, "family": family,
                    "nagq": nagq, "partitions": partitions, "optimizer": optimizer,
                    "passes": m.timings["passes"], "cpu_s": cpu,
                    "stage0": m.opt_stage0.optimizer, "stage0_evals": m.opt_stage0.n_evals,
                    "stage1": m.opt.optimizer, "stage1_evals": m.opt.n_evals,
                    "objective": m.objective, "objective_in_memory": m_mem.objective,
                    "rel_objective": m.objective / m_mem.objective - 1.0,
                    "max_theta_diff": float(np.max(np.abs(m.theta - m_mem.theta))),
                    "max_beta_diff": float(np.max(np.abs(m.beta - m_mem.beta))),
                    "cpu_in_memory_s": cpu_mem, "load_avg": os.getloadavg()[0],
                    "date": time.strftime("%Y-%m-%d %H:%M")})
                print(json.dumps(out[-1]), flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=1e5)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--family", choices=["poisson", "binomial"], default="poisson")
    ap.add_argument("--nagq", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--optimizer", action="append", choices=["bobyqa", "auto"],
                    help="the Dask fits' optimizers (repeatable; default both)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    recs = run(int(args.rows), args.users, args.items, args.family, args.nagq,
               args.partitions, tuple(args.optimizer or ("bobyqa", "auto")))
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + recs, indent=1) + "\n")


if __name__ == "__main__":
    main()
