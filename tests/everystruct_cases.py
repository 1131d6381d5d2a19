"""Simulated data and models of the every-structure test matrix
(tests/test_everystruct_matrix.py): one G-side structure per entry of docs/structures.md,
each fitted by each of the three front doors.

The data are small and made so that every structure is identified in a Gaussian model:
two observations per subject and time (a per-time effect is then not confounded with the
residual), and two per site for the spatial structures.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd

import mixedmodels as mm

#: structure -> (random term, data set, grouping column)
STRUCTURES = {
    "us": ("us(1 + x | subject)", "long", "subject"),
    "diag": ("diag(1 + x | subject)", "long", "subject"),
    "homdiag": ("diag(0 + factor(time) | subject, hom = TRUE)", "long", "subject"),
    "cs": ("cs(0 + factor(time) | subject)", "long", "subject"),
    "homcs": ("homcs(0 + factor(time) | subject)", "long", "subject"),
    "ar1": ("ar1(0 + factor(time) | subject)", "long", "subject"),
    "hetar1": ("ar1(0 + factor(time) | subject, hom = FALSE)", "long", "subject"),
    "toep": ("toep(0 + factor(time) | subject)", "long", "subject"),
    "homtoep": ("homtoep(0 + factor(time) | subject)", "long", "subject"),
    "ou": ("ou(0 + pos(tt) | subject)", "long", "subject"),
    "exp": ("exp(0 + pos(east, north) | site)", "spatial", "site"),
    "gau": ("gau(0 + pos(east, north) | site)", "spatial", "site"),
    "mat": ("mat(0 + pos(east, north) | site)", "spatial", "site"),
    "rr": ("rr(0 + factor(time) | subject, d = 1)", "long", "subject"),
    "propto": ("propto(1 | sp, K)", "phylo", "sp"),
    "equalto": ("equalto(1 | sp, K)", "phylo", "sp"),
}
#: front door -> (response, family); lmer fits by ML (anova and profiles compare ML fits)
DOORS = {
    "lmer": ("y", "gaussian"),
    "glmer": ("yc", "poisson"),
    "glmmtmb": ("y", "gaussian"),
}
#: combinations refused on purpose, with the message's key words: equalto fixes an
#: absolute covariance, which lmer's covariances relative to sigma^2 cannot hold
REFUSED = {("equalto", "lmer"): "equalto"}


@cache
def _long() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n_sub, n_t, reps = 24, 4, 2
    sub = np.repeat(np.arange(n_sub), n_t * reps)
    time = np.tile(np.repeat(np.arange(n_t), reps), n_sub)
    x = rng.normal(size=sub.size)
    e = np.zeros((n_sub, n_t))
    e[:, 0] = rng.normal(size=n_sub)
    for k in range(1, n_t):
        e[:, k] = 0.6 * e[:, k - 1] + rng.normal(scale=0.8, size=n_sub)
    slope = rng.normal(scale=0.4, size=n_sub)
    eta = e[sub, time] + slope[sub] * x
    d = pd.DataFrame({"subject": [f"s{k:02d}" for k in sub], "time": time,
                      "tt": np.array([0.0, 0.5, 1.5, 3.0])[time], "x": x})
    d["y"] = 1 + 0.5 * x + eta + rng.normal(scale=0.5, size=sub.size)
    d["yc"] = rng.poisson(np.exp(0.3 + 0.3 * x + 0.6 * eta))
    return d


@cache
def _spatial() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n, reps = 30, 2
    east, north = rng.uniform(0, 10, n), rng.uniform(0, 10, n)
    dist = np.hypot(east[:, None] - east[None, :], north[:, None] - north[None, :])
    field = np.linalg.cholesky(0.8 ** 2 * np.exp(-dist / 2.5)) @ rng.normal(size=n)
    site = np.repeat(np.arange(n), reps)
    x = rng.normal(size=site.size)
    d = pd.DataFrame({"site": [f"o{k:02d}" for k in site], "east": east[site],
                      "north": north[site], "x": x})
    d["y"] = 1 + 0.5 * x + field[site] + rng.normal(scale=0.4, size=site.size)
    d["yc"] = rng.poisson(np.exp(0.5 + 0.3 * x + field[site]))
    return d


@cache
def _phylo() -> tuple[pd.DataFrame, pd.DataFrame]:
    species = [f"sp{k}" for k in range(10)]
    clade = np.repeat([0, 1], 5)
    K = pd.DataFrame(0.3 + 0.5 * (clade[:, None] == clade[None, :]) + 0.2 * np.eye(10),
                     index=species, columns=species)
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"sp": np.repeat(species, 6)})
    d["x"] = rng.normal(size=len(d))
    b = np.linalg.cholesky(0.6 * K.to_numpy()) @ rng.normal(size=10)
    sp = np.repeat(np.arange(10), 6)
    d["y"] = 1 + 0.4 * d.x + b[sp] + rng.normal(scale=0.5, size=len(d))
    d["yc"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + b[sp]))
    return d, K


def data(name: str) -> pd.DataFrame:
    """A fresh copy of data set ``name`` (``long``, ``spatial``, ``phylo``)."""
    if name == "phylo":
        return _phylo()[0].copy()
    return (_long() if name == "long" else _spatial()).copy()


def matrices() -> dict:
    """The known matrix of the ``propto`` / ``equalto`` terms."""
    return {"K": _phylo()[1].copy()}


def formula(structure: str, door: str, term: str | None = None) -> str:
    """The model of ``structure`` for ``door``: ``response ~ x + term`` (``term=""``: the
    fixed-effects-only model)."""
    response = DOORS[door][0]
    term = STRUCTURES[structure][0] if term is None else term
    return f"{response} ~ x" + (f" + {term}" if term else "")


def fit(structure: str, door: str, term: str | None = None):
    """``structure``'s model fitted by ``door`` (warnings silenced: some fits are singular
    by design of the data, which is not what these tests are about). ``term=""`` fits the
    model without random effects by the door's fixed-effects counterpart."""
    d = data(STRUCTURES[structure][1])
    f = formula(structure, door, term)
    family = DOORS[door][1]
    kw = {"covariance_matrices": matrices()} if term is None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if door == "lmer":
            return mm.lm(f, d) if term == "" else mm.lmer(f, d, REML=False, **kw)
        if door == "glmer":
            return mm.glm(f, d, family=family) if term == "" else \
                mm.glmer(f, d, family=family, **kw)
        return mm.glmmtmb(f, d, family=family, **kw)


@cache
def fitted(structure: str, door: str):
    """:func:`fit`, once per test session (the tests only read the fit)."""
    return fit(structure, door)
