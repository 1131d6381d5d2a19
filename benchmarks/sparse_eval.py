"""One evaluation of the profiled deviance on a MovieLens-like design: dense block vs sparse.

``python benchmarks/sparse_eval.py --rows 1e6 --users 50000 --items 10000 --method sparse``

The design is the one of ``scale_bench.py`` (``y ~ x + (1 | user) + (1 | item)``, Zipf item
popularity); the objective is built once (cross-products) and evaluated ``--evals`` times
at theta = (0.5, 0.5). Prints JSON: seconds to build, CPU seconds per evaluation, the peak
resident memory and the deviance (equal across methods to rounding). Each method runs in
its own process (``--method``), so the peaks do not mix.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from scale_bench import FORMULAS, simulate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--method", choices=["blocked", "sparse"], default="sparse")
    ap.add_argument("--evals", type=int, default=2)
    args = ap.parse_args(argv)
    import mixedmodels as mm
    from mixedmodels.objective import LMMObjective

    df = simulate(int(args.rows), "crossed", users=args.users, items=args.items)
    design = mm.materialize(mm.parse_formula(FORMULAS["crossed"]), df)
    del df
    t0 = time.perf_counter()
    obj = LMMObjective(design, reml=False, method=args.method)
    build = time.perf_counter() - t0
    theta = np.array([0.5, 0.5])
    values, cpu = [], []
    for _ in range(args.evals):
        c0 = time.process_time()
        values.append(float(obj(theta)))
        cpu.append(time.process_time() - c0)
    print(json.dumps({"rows": int(args.rows), "users": args.users, "items": args.items,
                      "method": args.method, "build_s": build,
                      "cpu_per_eval_s": float(np.median(cpu)), "deviance": values[-1],
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
