"""The light model frame (design/frame.py: LIGHT_FRAME) builds the same designs as selecting
the model's columns first: every array bit for bit, names, levels, contrasts, dropped rows,
warnings and the Design's frame, on formulas with factors, interactions, transforms,
offsets, weights, missing values and odd column names."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import frame as frame_mod
from mixedmodels.design import materialize
from mixedmodels.design.frame import column_names
from mixedmodels.formula.parse import parse_formula


def _data(seed: int = 0, n: int = 72) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"s{i}" for i in range(8)], n // 8)
    data = pd.DataFrame({
        "junk": ["j"] * n,                               # a column the models do not read
        "y": rng.normal(size=n) + np.arange(n) % 5,
        "x": rng.normal(size=n),
        "odd name": rng.uniform(1, 2, size=n),
        "z": rng.integers(0, 9, size=n),
        "f": rng.choice(["lo", "mid", "hi"], size=n),
        "g": pd.Categorical(g),
        "b": rng.uniform(size=n) > 0.5,
        "o": pd.Categorical(rng.choice(["a", "b", "c"], size=n), categories=["c", "a", "b"],
                            ordered=True),
        "t": np.tile(np.arange(n // 8), 8),
        "w": rng.uniform(0.5, 2.0, size=n),
        "off": rng.normal(size=n) / 10,
        "xn": np.where(np.arange(n) % 11 == 3, np.nan, rng.normal(size=n)),
        "neg": rng.normal(size=n),
    }, index=[f"r{i}" for i in range(n)])
    return data


FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x * f + (x | g)",
    "y ~ 0 + f + (1 | g)",
    "y ~ poly(x, 2) + log(z + 1) + (1 | g)",
    "y ~ scale(x) + I(x**2) + (1 | g:f)",
    "y ~ `odd name` + b + (1 | g)",
    "y ~ o + x + (1 | g)",
    "y ~ x + offset(log(z + 1)) + (1 | g)",
    "y ~ xn + (1 | g)",
    "y ~ x + (1 | g) + (0 + x | f)",
    "y ~ C(f, Sum) + (1 | g)",
    "log(y + 10) ~ x + (1 | g/f)",
    "y ~ log(neg) + (1 | g)",
    "y ~ x + (x || g)",
    "y ~ x + ar1(0 + factor(t) | g)",
    "y ~ f:x + (1 | g)",
]


def _build(light: bool, monkeypatch, formula: str, data: pd.DataFrame, **kw):
    monkeypatch.setattr(frame_mod, "LIGHT_FRAME", light)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = materialize(parse_formula(formula), data, **kw)
    return design, [(w.category, str(w.message)) for w in caught]


def _same_array(a, b) -> None:
    if a is None or b is None:
        assert a is None and b is None
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b, strict=True)


def assert_same_design(a, b) -> None:
    """Every part of two designs equal, arrays bit for bit."""
    _same_array(a.y, b.y)
    _same_array(a.offset, b.offset)
    _same_array(a.weights, b.weights)
    fa, fb = a.fixed, b.fixed
    _same_array(fa.X, fb.X)
    assert (fa.names, fa.r_names, fa.dropped, fa.columns, fa.formula) == \
        (fb.names, fb.r_names, fb.dropped, fb.columns, fb.formula)
    assert len(a.terms) == len(b.terms)
    for ta, tb in zip(a.terms, b.terms, strict=True):
        assert ta.term == tb.term
        assert (ta.names, ta.r_names, ta.group) == (tb.names, tb.r_names, tb.group)
        _same_array(ta.Z, tb.Z)
        _same_array(ta.grouping.codes, tb.grouping.codes)
        assert ta.grouping.levels.equals(tb.grouping.levels)
        assert ta.grouping.levels.dtype == tb.grouping.levels.dtype
        assert all(x.equals(y) for x, y in zip(ta.grouping.var_levels, tb.grouping.var_levels,
                                               strict=True))
        assert type(ta.structure) is type(tb.structure)
        _same_array(ta.structure.theta0(), tb.structure.theta0())
    da, db = a.dropped, b.dropped
    assert (da.n_total, da.n_dropped, da.by_column) == (db.n_total, db.n_dropped, db.by_column)
    assert da.labels.equals(db.labels)
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert list(a.frame.columns) == list(b.frame.columns)
    assert sorted(a.extra) == sorted(b.extra)
    # the recipes for new data (formulaic's specs built on first use) agree too
    _same_array(fa.new_matrix(a.frame), fb.new_matrix(b.frame))
    for ta, tb in zip(a.terms, b.terms, strict=True):
        _same_array(np.asarray(ta.new_Z(a.frame), float), np.asarray(tb.new_Z(b.frame), float))


@pytest.mark.parametrize("formula", FORMULAS)
def test_light_frame_gives_the_same_design(formula, monkeypatch):
    data = _data()
    light, w_light = _build(True, monkeypatch, formula, data)
    eager, w_eager = _build(False, monkeypatch, formula, data)
    assert w_light == w_eager
    assert_same_design(light, eager)


@pytest.mark.parametrize("kw", [
    {"weights": "w", "offset": "off"},
    {"weights": np.r_[0.0, np.ones(71)]},                 # a zero weight drops a row
    {"offset": pd.Series(np.linspace(0, 1, 72), index=[f"r{i}" for i in range(72)])},
    {"contrasts": {"f": "sum"}},
    {"extra_columns": {"t": "correlation covariate"}},
])
def test_light_frame_with_arguments(kw, monkeypatch):
    data = _data(1)
    light, w_light = _build(True, monkeypatch, "y ~ x + f + (1 | g)", data, **kw)
    eager, w_eager = _build(False, monkeypatch, "y ~ x + f + (1 | g)", data, **kw)
    assert w_light == w_eager
    assert_same_design(light, eager)


def test_frame_holds_only_the_model_columns_and_is_a_snapshot():
    data = _data(2)
    design = materialize(parse_formula("y ~ x + f + (1 | g)"), data)
    data.loc["r0", "x"] = 1e6                     # the caller changes its data afterwards
    data["y"] = 0.0
    # the light path was taken: the frame is selected on first read
    assert isinstance(design.__dict__["_frame_value"], frame_mod.ColumnSelection)
    frame = design.frame
    assert type(frame) is pd.DataFrame
    assert list(frame.columns) == ["y", "x", "f", "g"]
    assert frame.index.equals(_data(2).index)
    expected = _data(2)[["y", "x", "f", "g"]]
    expected["f"] = expected["f"].astype(object)  # text in its numpy spelling (dtypes.py)
    pd.testing.assert_frame_equal(frame, expected)
    # pickles as the selected frame
    back = pickle.loads(pickle.dumps(design))
    pd.testing.assert_frame_equal(back.frame, frame)


def test_same_names_other_data_give_their_own_design(monkeypatch):
    """Nothing kept from one data frame reaches another with the same column names and
    shape but other values and levels (the column-name sets are kept per column index)."""
    formula = "y ~ x * f + (1 | g)"
    first = _data(3)
    second = _data(4)
    second["f"] = second["f"].map({"lo": "LOW", "mid": "MID", "hi": "HIGH"})
    second["g"] = second["g"].cat.rename_categories(lambda c: c.upper())
    materialize(parse_formula(formula), first)
    d2 = materialize(parse_formula(formula), second)
    frame_mod._NAME_SETS.clear()
    fresh, _ = _build(False, monkeypatch, formula, second)
    assert_same_design(d2, fresh)
    assert "f[T.LOW]" in d2.fixed.names and d2.terms[0].grouping.levels[0] == "S0"
    # renaming a column gives the frame a new column index: the new name is found, the
    # old one is not
    second.columns = [c if c != "x" else "x2" for c in second.columns]
    assert "x2" in column_names(second) and "x" not in column_names(second)
    materialize(parse_formula("y ~ x2 + (1 | g)"), second)
    with pytest.raises(mm.DataError, match="'x'"):
        materialize(parse_formula("y ~ x + (1 | g)"), second)


def test_fits_agree_both_ways(monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import rside_fixtures as rf

    ovary = rf.data("ovary")
    ovary["Mare"] = ovary["Mare"].astype("category")
    cbpp = mm.datasets.load("cbpp")
    fits = {}
    for light in (True, False):
        monkeypatch.setattr(frame_mod, "LIGHT_FRAME", light)
        fits[light] = (
            mm.gls("follicles ~ sin2pi + cos2pi", ovary,
                   correlation=mm.cor_ar1(form="~ 1 | Mare")),
            mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                     family=mm.families.Binomial()),
            mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy")),
        )
    for a, b in zip(fits[True], fits[False], strict=True):
        assert a.objective == b.objective
        np.testing.assert_array_equal(np.asarray(a.fixef), np.asarray(b.fixef))


def test_columns_at_are_pandas_columns():
    data = pd.DataFrame({
        "a": [1.5, 2.5, np.nan], "b": pd.array([1, None, 3], dtype="Int64"),
        "c": pd.Categorical(["u", "v", "u"]), "d": ["p", "q", None],
        "e": pd.Series(["p", "q", "r"], dtype=object), "f": [True, False, True],
        "g": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
    }, index=["i", "j", "k"])
    names = list(data.columns)
    got = frame_mod.columns_at(data, names, [data.columns.get_loc(n) for n in names])
    for name in names:
        pd.testing.assert_series_equal(got[name], data[name], check_exact=True)
        assert got[name].name == name
    # copy-on-write: a write into a column read this way never reaches the data
    got["a"].iloc[0] = -1.0
    got["c"].iloc[0] = "v"
    assert data["a"].iloc[0] == 1.5 and data["c"].iloc[0] == "u"
