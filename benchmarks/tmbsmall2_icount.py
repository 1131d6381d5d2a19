"""Instructions per warm structured fit, for callgrind (lane tmbsmall2).

``OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no
--callgrind-out-file=OUT python -m benchmarks.tmbsmall2_icount --row hetar1_pois:glmmtmb
--warm 4 --fits 5 [--package mm_base]``

The structures sibling of :mod:`benchmarks.sleep1ms2_icount`: ``--warm`` whole fits of the
fixture by the door named (see :mod:`benchmarks.structures_ab`), then callgrind's
instrumentation on for ``--fits`` more; the total over ``--fits`` is the count per fit.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import structures_fixtures as sf

from .callgrind import count
from .structures_ab import _fitter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", default="mixedmodels")
    ap.add_argument("--row", required=True, help="fixture:door")
    ap.add_argument("--warm", type=int, default=4)
    ap.add_argument("--fits", type=int, default=5)
    args = ap.parse_args()
    pkg = importlib.import_module(args.package)
    warnings.simplefilter("ignore")
    fid, door = args.row.split(":")
    fx = sf.load(fid)
    data = sf.load_data(fx)
    fit = _fitter(pkg, fx, door, sf.known_matrices())
    count(lambda: fit(data), args.warm, args.fits)


if __name__ == "__main__":
    main()
