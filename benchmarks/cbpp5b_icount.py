"""Instructions per warm small-GLMM fit (or per evaluation of one), for callgrind.

``OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no
python -m benchmarks.cbpp5b_icount --row cbpp_laplace --warm 8 --fits 5
[--package mm_base] [--stage fit|eval|pirls]``

The GLMM sibling of :mod:`benchmarks.sleep1ms2_icount`: after ``--warm`` whole fits of the
``benchmarks/models.toml`` row (CPython specializes bytecode over the first runs) the
script switches callgrind's instrumentation on for its own pid, runs ``--fits``
repetitions of the stage and switches it off; the total over ``--fits`` is the count per
repetition. ``eval``: one value and gradient of the Laplace criterion at the optimum, its
PIRLS solve started from the modes predicted by the optimum's sensitivity (as each
difference of the standard errors' Hessian is); ``pirls``: that PIRLS solve alone.
"""

from __future__ import annotations

import argparse
import importlib
import warnings

import numpy as np

from .callgrind import count
from .engines import load_data
from .table import load_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", default="mixedmodels")
    ap.add_argument("--row", default="cbpp_laplace")
    ap.add_argument("--warm", type=int, default=8)
    ap.add_argument("--fits", type=int, default=5)
    ap.add_argument("--stage", default="fit")
    args = ap.parse_args()
    mm = importlib.import_module(args.package)
    warnings.simplefilter("ignore")
    table = load_table()
    case = table.get(args.row)
    data = load_data(table, case.data)

    def fit():
        if case.engine == "glmer_nb":
            return mm.glmer_nb(case.formula, data, **case.options)
        return mm.glmer(case.formula, data, case.family, **case.options)

    for _ in range(args.warm):
        m = fit()
    run = fit
    if args.stage in ("eval", "pirls"):
        obj = m.objective_function
        pirls = obj.pirls
        theta, beta = np.asarray(m.theta, float), np.asarray(m.beta, float)
        x = obj.join(theta, beta)
        ref = pirls.reference_of(pirls.fit(theta, beta))
        grad = obj.laplace_gradient_factory()(obj)

        def run():
            pirls._ref = ref
            return grad._evaluate(x) if args.stage == "eval" else pirls.fit(theta, beta)

    count(run, args.warm if run is not fit else 0, args.fits)


if __name__ == "__main__":
    main()
