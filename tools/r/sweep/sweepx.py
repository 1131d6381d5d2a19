"""Compare our fits with the glmmTMB 1.1.5 records of tools/r/sweep/sweepx_glmmtmb.R (lane
sweepx: covariance structures x families x extras, combined).

    python tools/r/sweep/sweepx.py [--out tests/fixtures/sweepx] [--only id1,id2]

Every check is sweepg.py's (which reuses sweep.py's): objective, fixed effects of every
component, SEs, random-effect sds and correlations, predictions and link SEs, new-level
predictions and SEs, the mm.lmer / mm.glmer refit where the R script names an engine, and
every method (predict, fitted, residuals, simulate, confint, summary, ranef). The data are the
simulated ``sx`` set (OUT/data/sx.csv) and the bundled sets (``mm.datasets.load``, R's level
orders). Prints one line per model and writes OUT/python_sweepx.json (not committed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pandas as pd

import mixedmodels as mm

_spec = importlib.util.spec_from_file_location("sweepg", Path(__file__).with_name("sweepg.py"))
sweepg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweepg)

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "sweepx"


def load(out: Path, name: str) -> pd.DataFrame:
    """A bundled set by name, else OUT/data/<name>.csv (sorted categoricals, as R's)."""
    if name in mm.datasets.names():
        return mm.datasets.load(name)
    return sweepg.load(out, name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(FIXTURE))
    ap.add_argument("--only", default="")
    ap.add_argument("--records", default="sweepx_glmmtmb.json")
    a = ap.parse_args()
    out = Path(a.out)
    recs = json.loads((out / a.records).read_text(encoding="utf-8"))
    only = set(a.only.split(",")) if a.only else None
    cache: dict[str, pd.DataFrame] = {}

    def loader(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = load(out, name)
        return cache[name].copy()

    results = sweepg.run_all(recs, loader, only)
    Path("/tmp/python_sweepx.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
