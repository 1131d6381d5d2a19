"""List and load the glmmTMB reference fits in tests/fixtures/glmmtmb (made by
tools/r/glmmtmb_fixtures.R; see tools/r/GLMMTMB_CONVENTIONS.md for what the numbers mean).

Three sets, never to be mixed in one comparison:

* ``"parity"``: glmmTMB 1.1.5 fits that converged with a positive-definite Hessian and no
  warning (``tests/fixtures/glmmtmb/<id>.json``) -- what parity tests parametrize over;
* ``"awkward"``: glmmTMB 1.1.5 fits that warned or whose Hessian was not positive definite
  (``awkward/<id>.json``), with glmmTMB's warnings in ``warnings``;
* ``"newer"`` / ``"newer_awkward"``: fits made with a newer glmmTMB (lognormal, nbinom12, and
  cross-version checks; ``newer/``). Its gaussian ``beta_disp`` is log(sigma), not log(sigma^2).

Calls glmmTMB refused outright are in ``refused.json`` (:func:`refused`).
:func:`converged_ids` picks the awkward fits that converged cleanly and only tripped nlminb's
"NA/NaN function evaluation" warning on the way (the Gamma inverse-link fits, for example).

Pure standard library (plus pandas in :func:`load_data`, imported lazily) and no import of the
package, so the fixtures can be checked on their own.

Examples
--------
>>> from glmmtmb_fixtures import ids, load
>>> fx = load("sal_zinb2")
>>> fx["family"], fx["link"], round(fx["objective"], 3)
('nbinom2', 'log', 1634.299)
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "glmmtmb"
DATA_DIR = FIXTURE_DIR / "data"
BUNDLED_DATA_DIR = ROOT / "src" / "mixedmodels" / "datasets" / "data"

SETS = {
    "parity": FIXTURE_DIR,
    "awkward": FIXTURE_DIR / "awkward",
    "newer": FIXTURE_DIR / "newer",
    "newer_awkward": FIXTURE_DIR / "newer" / "awkward",
}
_NOT_FITS = {"refused.json", "factor_levels.json"}


def _paths(kind: str) -> dict[str, Path]:
    try:
        folder = SETS[kind]
    except KeyError:
        raise ValueError(f"unknown fixture set {kind!r}; choose one of {sorted(SETS)}") from None
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.json")) if p.name not in _NOT_FITS}


def ids(kind: str = "parity", *, family: str | None = None) -> list[str]:
    """Fixture ids of one set, sorted; optionally only those of one glmmTMB family name
    (``"nbinom2"``, ``"beta"``, ``"ziGamma"``, ``"t"``, ...: the ``family`` field)."""
    out = sorted(_paths(kind))
    if family is not None:
        out = [i for i in out if load(i, kind)["family"] == family]
    return out


@cache
def _load(kind: str, fixture_id: str) -> dict:
    paths = _paths(kind)
    if fixture_id not in paths:
        raise KeyError(f"no glmmTMB fixture {fixture_id!r} in set {kind!r} ({SETS[kind]})")
    with paths[fixture_id].open(encoding="utf-8") as fh:
        return json.load(fh)


def load(fixture_id: str, kind: str = "parity") -> dict:
    """The fixture as a dict (a fresh copy: callers may modify it)."""
    return json.loads(json.dumps(_load(kind, fixture_id)))


def load_all(kind: str = "parity") -> dict[str, dict]:
    """All fixtures of one set, keyed by id."""
    return {i: load(i, kind) for i in ids(kind)}


# nlminb's warning about a trial point outside the parameter space (e.g. a negative mean under
# the inverse link): it says nothing about the optimum it returns
BENIGN_WARNINGS = frozenset({"NA/NaN function evaluation"})


def converged_ids(kind: str = "awkward") -> list[str]:
    """Ids of a set whose fit converged (code 0, positive-definite Hessian) and whose only
    warnings are :data:`BENIGN_WARNINGS` -- e.g. the Gamma inverse-link fits, usable for
    parity with the caveat that glmmTMB warned on the way."""
    out = []
    for i in ids(kind):
        fx = _load(kind, i)
        conv = fx["convergence"]
        if conv["code"] == 0 and conv["pdHess"] and set(fx["warnings"]) <= BENIGN_WARNINGS:
            out.append(i)
    return out


def refused(kind: str = "parity") -> list[dict]:
    """The calls glmmTMB refused (id, r_call, python, error) for the main or newer corpus."""
    folder = FIXTURE_DIR if kind in ("parity", "awkward") else FIXTURE_DIR / "newer"
    path = folder / "refused.json"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)["refused"]


def parse_python(text: str) -> tuple[str, dict[str, str]]:
    """Split a ``python`` field (``formula; zi=~x; family=nbinom2(link=log); REML=True``)
    into the formula and a dict of option strings."""
    formula, *options = (p.strip() for p in text.split(";"))
    opts = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise ValueError(f"option {option!r} in {text!r} is not key=value")
        opts[key.strip()] = value.strip()
    return formula, opts


def data_path(fixture: dict) -> Path:
    """Absolute path of the CSV a fixture was fitted on."""
    return ROOT / fixture["data_file"]


@cache
def factor_levels(path: str) -> dict[str, list[str]]:
    """Factor level orders (R's) for the CSV at ``path``, keyed by column."""
    p = Path(path)
    levels_file = p.parent / "factor_levels.json"
    with levels_file.open(encoding="utf-8") as fh:
        return json.load(fh).get(p.stem, {})


def load_data(fixture: dict):
    """The fixture's data as a pandas DataFrame; factor columns are categoricals whose
    categories are in R's level order (the first is the reference level)."""
    import pandas as pd

    path = data_path(fixture)
    levels = factor_levels(str(path))
    df = pd.read_csv(path, dtype={col: str for col in levels})
    for col, lev in levels.items():
        df[col] = pd.Categorical(df[col], categories=lev)
    return df


def newton_corrected(m, x: np.ndarray) -> np.ndarray:
    """``x`` after one Newton step with our Hessian at the optimum: where glmmTMB stopped
    short of the optimum, this lands on it (quadratic convergence)."""
    layout = m.layout
    _, g = m.objective_function.value_and_gradient(x)
    step = np.linalg.solve(m.fit.hessian, layout.free(g))
    return layout.expand(layout.free(x) - step, x)
