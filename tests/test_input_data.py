"""Data in through one adapter (pandas, dicts, polars, pyarrow: the same fit bit for bit),
variable detection by formulaic's parser, and R's coefficient names of unusual terms."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.dot import has_dot
from mixedmodels.design.fixed import build_fixed
from mixedmodels.design.names import r_name_of
from mixedmodels.design.variables import called_names, expression_variables


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(15), 6)
    x = rng.normal(size=90)
    eta = -0.5 + 0.8 * x + rng.normal(size=15)[g]
    return pd.DataFrame({
        "y": 2 + 1.5 * x + rng.normal(size=15)[g] + rng.normal(size=90),
        "k": rng.binomial(1, 1 / (1 + np.exp(-eta))),
        "x": x,
        "g": [f"s{i:02d}" for i in g],
        "f": np.array(["lo", "mid", "hi"])[rng.integers(0, 3, 90)],
        "n": rng.integers(0, 4, 90),
    })


def fits(data):
    """An LMM and a GLMM with a categorical predictor, text grouping and integer column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return (mm.lmer("y ~ x + f + n + (1 | g)", data),
                mm.glmer("k ~ x + f + (1 | g)", data, family="binomial"))


def assert_identical(a, b):
    assert a.objective == b.objective
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.fixef.to_numpy(), b.fixef.to_numpy())
    assert list(a.fixef.index) == list(b.fixef.index)
    np.testing.assert_array_equal(a.se.to_numpy(), b.se.to_numpy())


def test_dict_of_columns(frame):
    for ours, ref in zip(fits({c: frame[c].to_numpy() for c in frame}), fits(frame),
                         strict=True):
        assert_identical(ours, ref)


def test_polars_frame_bit_for_bit(frame):
    pl = pytest.importorskip("polars")
    data = pl.DataFrame({c: frame[c].to_numpy() for c in frame})
    for ours, ref in zip(fits(data), fits(frame), strict=True):
        assert_identical(ours, ref)
    lazy = fits(data.lazy())[0]
    assert_identical(lazy, fits(frame)[0])
    # a polars Categorical is text (sorted levels); an Enum keeps its level order
    as_cat = fits(data.with_columns(pl.col("f").cast(pl.Categorical)))[0]
    assert_identical(as_cat, fits(frame)[0])
    order = ["mid", "lo", "hi"]
    enum = fits(data.with_columns(pl.col("f").cast(pl.Enum(order))))[0]
    ref = fits(frame.assign(f=pd.Categorical(frame.f, categories=order)))[0]
    assert_identical(enum, ref)
    m = fits(frame)[0]
    np.testing.assert_array_equal(m.predict(data), m.predict(frame))


def test_pyarrow_table_bit_for_bit(frame):
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for ours, ref in zip(fits(table), fits(frame), strict=True):
        assert_identical(ours, ref)
    encoded = table.set_column(table.schema.get_field_index("f"), "f",
                               table.column("f").dictionary_encode())
    assert_identical(fits(encoded)[0], fits(frame)[0])


def test_missing_values_in_other_backends(frame):
    pl = pytest.importorskip("polars")
    x = frame.x.copy()
    x.iloc[[0, 7]] = np.nan
    with pytest.warns(mm.DroppedRowsWarning):
        ref = mm.lmer("y ~ x + (1 | g)", frame.assign(x=x))
    data = pl.DataFrame({"y": frame.y.to_numpy(), "x": [None if np.isnan(v) else v
                                                        for v in x], "g": frame.g.tolist()})
    with pytest.warns(mm.DroppedRowsWarning, match="2 of 90"):
        m = mm.lmer("y ~ x + (1 | g)", data)
    assert_identical(m, ref)


def test_unsupported_data_is_refused():
    with pytest.raises(mm.DataError, match=r"must be a pandas DataFrame .*got list"):
        mm.lmer("y ~ x + (1 | g)", [1, 2, 3])
    with pytest.raises(mm.DataError, match=r"must be a pandas DataFrame .*got ndarray"):
        mm.lmer("y ~ x + (1 | g)", np.zeros((4, 3)))


# -- variable detection -----------------------------------------------------------------------
@pytest.mark.parametrize("expr, expected", [
    ("scale(x) + center(z)", ["x", "z"]),                 # formulaic's own list loses these
    ("C(f, Sum) + C(h, contr.treatment(base='b'))", ["f", "h"]),
    ("C(f, contr.sum):x", ["f", "x"]),
    ("Q('body mass') + `leg length`", ["body mass", "leg length"]),
    ("np.log(x) + log(`a b`) + I(u**2)", ["x", "a b", "u"]),
    ("x.fillna(0) + my.var", ["x", "my.var"]),
    ("class + lambda + sujét + e + pi", ["class", "lambda", "sujét", "e", "pi"]),
    ("size - incidence", ["size", "incidence"]),
    ("poly(x, degree=2) + bs(t, df=3)", ["x", "t"]),
])
def test_expression_variables(expr, expected):
    assert sorted(expression_variables(expr)) == sorted(expected)


def test_names_formulaic_knows_are_columns_only_when_present():
    assert expression_variables("np + C(f, Sum)") == ["f"]
    assert expression_variables("np + C(f, Sum)", {"np", "f", "Sum"}) == ["np", "f", "Sum"]
    assert called_names("I(x**2) + np.log(z) + C(f)") == {"I", "np", "C"}
    assert expression_variables("I + I(x**2)", {"I", "x"}) == ["I", "x"]
    assert expression_variables("I(x**2)", {"I", "x"}) == ["x"]  # only called: a function


def test_dot_detection():
    assert has_dot(". + x") and has_dot("x + . - z") and has_dot("(.)^2")
    assert not has_dot("my.var + I(x + .5)") and not has_dot("np.log(x)")


# -- R's names --------------------------------------------------------------------------------
def test_r_names_of_unusual_terms():
    import formulaic

    if tuple(int(v) for v in formulaic.__version__.split(".")[:3]) < (1, 2, 2):
        pytest.skip("formulaic < 1.2.2 fails on some of these terms under pandas 3")
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": np.linspace(0.1, 2, 30),
                       "f": np.array(list("abc") * 10, dtype=object),  # as in a model frame
                       "b c": rng.normal(size=30), "t": rng.normal(size=30) > 0})
    cases = {
        "poly(x, 2) + f": ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2", "fb", "fc"),
        "poly(x, 2):f": ("(Intercept)", "poly(x, 2)1:fa", "poly(x, 2)2:fa", "poly(x, 2)1:fb",
                         "poly(x, 2)2:fb", "poly(x, 2)1:fc", "poly(x, 2)2:fc"),
        "I((x + 1) ** 2) + I(-x)": ("(Intercept)", "I((x + 1)^2)", "I(-x)"),
        "C(f) + log(`b c`)": ("(Intercept)", "factor(f)b", "factor(f)c", "log(`b c`)"),
        "0 + t + x": ("tFALSE", "tTRUE", "x"),
        "x:f - 1": ("x:fa", "x:fb", "x:fc"),
        "C(f, contr.treatment(base='b'))": ("(Intercept)",
                                             'C(f, contr.treatment(base = "b"))a',
                                             'C(f, contr.treatment(base = "b"))c'),
    }
    for formula, expected in cases.items():
        fx = build_fixed(formula, df)
        assert fx.r_names == expected, formula
        assert len(fx.names) == len(fx.r_names)


def test_r_name_quoting():
    assert r_name_of("Days") == "Days" and r_name_of("my.var") == "my.var"
    assert r_name_of("sujét") == "sujét" and r_name_of(".x") == ".x"
    for name in ("body mass", "1x", "_x", "if", "TRUE", ".2a"):
        assert r_name_of(name) == f"`{name}`"
