"""cProfile of warm structured fits (lane tmbsmall2).

``OPENBLAS_NUM_THREADS=1 python -m benchmarks.tmbsmall2_profile --row hetar1_pois:glmmtmb
[--fits 30] [--sort tottime] [--top 40] [--callers NAME]``

Three warm fits first, then ``--fits`` fits under :mod:`cProfile`; prints the top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import warnings
from pathlib import Path

import mixedmodels as mm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import structures_fixtures as sf

from .structures_ab import _fitter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--row", required=True)
    ap.add_argument("--fits", type=int, default=30)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--callers", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    fid, door = args.row.split(":")
    fx = sf.load(fid)
    data = sf.load_data(fx)
    fit = _fitter(mm, fx, door, sf.known_matrices())
    for _ in range(3):
        fit(data)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.fits):
        fit(data)
    prof.disable()
    st = pstats.Stats(prof)
    st.sort_stats(args.sort).print_stats(args.top)
    if args.callers:
        st.print_callers(args.callers)


if __name__ == "__main__":
    main()
