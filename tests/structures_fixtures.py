"""Load the glmmTMB fits of tests/fixtures/structures (made by tools/r/structures_fixtures.R).

Each fixture is one glmmTMB fit of a G-side covariance structure on simulated data
(``data`` names a CSV in ``tests/fixtures/structures/data``): ``formula_r`` is glmmTMB's
call, ``formula`` our spelling of the same model, ``doors`` the front doors it is a
reference for, then ``objective`` (-2 logLik or the REML criterion), ``beta``, ``se``,
``beta_disp``, ``sigma``, glmmTMB's ``theta`` (formula order) and ``varcorr`` (per term:
group, column names, sds and covariance matrix). ``set`` is ``main`` (glmmTMB 1.1.5) or
``newer`` (1.1.14, whose gaussian ``beta_disp`` is log sigma, not log sigma^2).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "fixtures" / "structures"
DATA = ROOT / "data"


def ids() -> list[str]:
    """Fixture ids, sorted."""
    return sorted(p.stem for p in ROOT.glob("*.json"))


@cache
def _load(fid: str) -> str:
    return (ROOT / f"{fid}.json").read_text(encoding="utf-8")


def load(fid: str) -> dict:
    """The fixture as a fresh dict."""
    return json.loads(_load(fid))


def load_data(fx: dict):
    """The fixture's data frame."""
    import pandas as pd

    return pd.read_csv(DATA / fx["data"])


def known_matrices() -> dict:
    """The known matrices the fixtures' ``propto``/``equalto`` terms use, by name (read
    once: the benchmark times the fits, not the CSV reader)."""
    return {k: v.copy() for k, v in _known_matrices().items()}


@cache
def _known_matrices() -> dict:
    import pandas as pd

    K = pd.read_csv(DATA / "phylo_K.csv", index_col=0)
    return {"K": K, "K05": 0.25 * K}


def dense_Z(t, n: int):
    """The dense ``n x q`` model matrix of a random-effects term (columns level-major:
    level ``l``'s ``p`` columns at ``l p .. l p + p - 1``)."""
    import numpy as np

    Z = np.zeros((n, t.q))
    cols = t.grouping.codes[:, None] * t.p + np.arange(t.p)[None, :]
    Z[np.arange(n)[:, None], cols] = t.Z
    return Z


def fit_fixture(fx: dict, door: str, data=None, matrices=None):
    """The fixture's model fitted by one front door (``glmmtmb``, ``lmer`` or ``glmer``),
    warnings silenced; ``matrices``: the known matrices (fresh copies of
    :func:`known_matrices` by default -- the benchmark passes one set to every fit, as
    the R side does, so that copying them is not timed)."""
    import warnings

    import mixedmodels as mm

    data = load_data(fx) if data is None else data
    kw = {"covariance_matrices": known_matrices() if matrices is None else matrices}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if door == "glmmtmb":
            return mm.glmmtmb(fx["formula"], data, family=fx["family"], REML=fx["REML"],
                              dispformula=fx["dispformula"], **kw)
        if door == "lmer":
            return mm.lmer(fx["formula"], data, REML=fx["REML"], **kw)
        return mm.glmer(fx["formula"], data, family=fx["family"], **kw)
