"""Instructions per warm small-LMM fit (or per stage of one), for callgrind.

``OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no
python -m benchmarks.sleep1ms2_icount --model sleep_reml --warm 12 --fits 10
[--package mm_base] [--stage fit|eval|materialize|objective|solve]``

After ``--warm`` whole fits (CPython specializes a function's bytecode after a few runs, so
the first fits of a process are not what a warm fit costs) the script switches callgrind's
instrumentation on (``callgrind_control -i on`` for its own pid, then spins until the
counter moves), runs ``--fits`` repetitions of the stage and switches it off; the total
divided by ``--fits`` is the count per repetition. Stages other than ``fit`` run with
their inputs prepared beforehand (``eval``: one value-and-gradient of the objective at the
optimum; ``materialize``: formula parse + design; ``objective``: ``LMMObjective`` set-up;
``solve``: the final solve at the optimum; ``value``: one value-only evaluation;
``moment``: the moment estimate of theta from the objective).
"""

from __future__ import annotations

import argparse
import importlib
import warnings

from .callgrind import count
from .small_lmm_bench import MODELS as _BENCH

#: The small-LMM benchmark's models and two more small ones the sleep1ms lanes check.
MODELS = {**_BENCH,
          "sleep_uncorr": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", True),
          "cake": ("cake", "angle ~ recipe * temperature + (1|recipe:replicate)", True)}



def _moment(obj):
    from importlib import import_module

    return import_module(obj.__module__.split(".")[0] + ".fitting.moment_start").moment_theta(obj)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", default="mixedmodels")
    ap.add_argument("--model", default="sleep_reml")
    ap.add_argument("--warm", type=int, default=12)
    ap.add_argument("--fits", type=int, default=10)
    ap.add_argument("--stage", default="fit")
    args = ap.parse_args()
    mm = importlib.import_module(args.package)
    warnings.simplefilter("ignore")
    data_name, formula, reml = MODELS[args.model]
    df = mm.datasets.load(data_name)
    for _ in range(args.warm):
        m = mm.lmer(formula, df, REML=reml)
    obj = m.objective_function if hasattr(m, "objective_function") else None
    theta = m.theta
    stages = {
        "fit": lambda: mm.lmer(formula, df, REML=reml),
        "materialize": lambda: mm.materialize(mm.parse_formula(formula), df),
        "objective": lambda: mm.LMMObjective(m.design, reml=reml),
        "eval": lambda: obj.value_and_gradient(theta),
        "solve": lambda: obj.solve(theta),
        "value": lambda: obj(theta),
        "moment": lambda: _moment(obj),
    }
    run = stages[args.stage]
    count(run, args.warm, args.fits)


if __name__ == "__main__":
    main()
