"""CPU time per warm fit of a few small LMMs (the sleepstudy <= 1 ms target).

``OPENBLAS_NUM_THREADS=1 python -m benchmarks.small_lmm_bench [--fits 400] [--batches 5]``

Each model is fitted ``--fits`` times back to back per batch, timed with
:func:`time.process_time`; the minimum over ``--batches`` batches is printed in
microseconds per fit, with the optimizer's evaluation count and the criterion of the last
fit (to 17 digits, for before/after comparisons).
"""

from __future__ import annotations

import argparse
import time
import warnings

import mixedmodels as mm

MODELS = {
    "sleep_reml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    "dyestuff": ("Dyestuff", "Yield ~ 1 + (1|Batch)", True),
    "orthodont": ("Orthodont", "distance ~ age + (age|Subject)", True),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", True),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fits", type=int, default=400)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--model", action="append")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for name in args.model or list(MODELS):
        data, formula, reml = MODELS[name]
        df = mm.datasets.load(data)
        for _ in range(20):
            m = mm.lmer(formula, df, REML=reml)
        best = float("inf")
        for _ in range(args.batches):
            t0 = time.process_time()
            for _ in range(args.fits):
                m = mm.lmer(formula, df, REML=reml)
            best = min(best, (time.process_time() - t0) / args.fits)
        print(f"{name:12s} {best * 1e6:8.1f} us  evals={m.opt.n_evals:>4}"
              f"  crit={m.opt.fval!r}")


if __name__ == "__main__":
    main()
