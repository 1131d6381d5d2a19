"""Loads the R-side reference corpus (tools/r/rside_fixtures.R -> tests/fixtures/rside)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

import mixedmodels as mm

DIR = Path(__file__).resolve().parent / "fixtures" / "rside"


@cache
def corpus() -> dict:
    """The fixtures file: ``versions`` and ``models`` (a list of dicts)."""
    return json.loads((DIR / "fixtures.json").read_text(encoding="utf-8"))


def models(*kinds: str) -> list[dict]:
    """Fixture models of the given kinds (``gls``, ``lme``, ``meta``, ``pql``)."""
    return [m for m in corpus()["models"] if m["kind"] in kinds]


@cache
def data(name: str) -> pd.DataFrame:
    """A fixture data set, as both R and the tests read it."""
    return pd.read_csv(DIR / f"{name}.csv")


def fit(fx: dict, call: str | None = None):
    """Our fit of fixture ``fx``: its Python call evaluated with ``mm`` and ``d``."""
    return eval(call or fx["py_call"], {"mm": mm, "d": data(fx["data"]).copy()})
