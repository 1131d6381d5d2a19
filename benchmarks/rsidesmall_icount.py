"""Instructions per warm R-side fit, for callgrind (as :mod:`benchmarks.sleep1ms2_icount`).

``OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no
python -m benchmarks.rsidesmall_icount --case hetero_gls_constpower --warm 5 --fits 5
[--package mm_base]``

After ``--warm`` fits the script switches callgrind's instrumentation on for its own pid,
runs ``--fits`` fits of the fixture (:func:`benchmarks.rsidesmall_ab._fit`) and switches
it off; callgrind's total divided by ``--fits`` is the count per fit. ``--case`` is a
fixture of tests/fixtures/rside or one of :data:`~benchmarks.ab_timing.EXTRA_CASES`
(``bw_gls_plain``, ``bw_gls_held_car1``). ``--no-gc``: the cyclic garbage collector off
while counting (where it runs shifts with every allocation, ~1% of a small gls fit);
with ``PYTHONHASHSEED=0`` repeated counts then agree to ~0.1-0.5%.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import warnings

from .callgrind import count
from .rsidesmall_ab import _fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--package", default="mixedmodels")
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--fits", type=int, default=5)
    ap.add_argument("--no-gc", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    fit = _fit(importlib.import_module(args.package), args.case)
    if args.no_gc:
        for _ in range(args.warm):
            fit()
        gc.collect()
        gc.disable()
    count(fit, args.warm, args.fits)


if __name__ == "__main__":
    main()
