"""The input defects of issue 12's adversarial probe (items 3-12, 17, 19, 21), each with its
verdict: the clean fit's numbers, a specific warning, or a clear error naming the column or
argument and what to do. lme4's own behaviour for '.', the response on the right and R's
names is checked against lme4 fits in test_input_contrasts.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

#: two fits of the same numbers through different code paths agree to rounding
SAME_RTOL = 1e-10


@pytest.fixture(scope="module")
def d() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=96)
    return pd.DataFrame({"y": 1 + 2 * x + rng.normal(size=12)[g] + rng.normal(size=96),
                         "x": x, "g": [f"g{i}" for i in g],
                         "f": np.array(list("abc"))[rng.integers(0, 3, 96)]})


@pytest.fixture(scope="module")
def clean(d):
    return mm.lmer("y ~ x + (1 | g)", d)


def assert_same(m, ref, rtol=SAME_RTOL):
    assert m.objective == pytest.approx(ref.objective, rel=rtol)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-8)


def fit_quiet(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return mm.lmer(*args, **kw)


# -- item 3: '.' and the response on the right-hand side -------------------------------------
def test_dot_is_every_column_but_the_response(d):
    m = fit_quiet("y ~ . + (1 | g)", d)
    ref = fit_quiet("y ~ x + g + f + (1 | g)", d)
    assert list(m.fixef.index) == list(ref.fixef.index)
    assert "y" not in m.fixef.index and m.sigma > 0.5          # y no longer predicts itself
    assert m.objective == pytest.approx(ref.objective, rel=SAME_RTOL)
    assert list(fit_quiet("y ~ . - g + (1 | g)", d).fixef.index) == \
        ["Intercept", "x", "f[T.b]", "f[T.c]"]
    # the response's columns are left out whatever the response expression
    logged = d.assign(y=np.exp(d.y / 10))
    assert "y" not in fit_quiet("log(y) ~ . + (1 | g)", logged).fixef.index
    counts = d.assign(k=np.arange(96) % 5, n=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        g = mm.glmer("cbind(k, n - k) ~ . + (1 | g)", counts[["k", "n", "x", "g"]],
                     family="binomial")
    assert [n for n in g.fixef.index if not n.startswith("g[")] == ["Intercept", "x"]


def test_response_on_the_right_is_dropped_with_a_warning(d, clean):
    with pytest.warns(mm.FormulaWarning, match="response 'y' appeared on the right-hand side"):
        m = mm.lmer("y ~ y + x + (1 | g)", d)
    assert_same(m, clean)
    with pytest.warns(mm.FormulaWarning):  # an interaction with it stays, as in R
        m = mm.lmer("y ~ x * y + (1 | g)", d)
    assert list(m.fixef.index) == ["Intercept", "x", "x:y"]


# -- item 4: numbers stored as objects ---------------------------------------------------------
def test_object_numbers_are_numbers_with_a_warning(d, clean):
    for column in ("x", "y"):
        with pytest.warns(mm.DataWarning, match=f"column '{column}'.*numbers stored as "
                                                "Python objects.*pd.to_numeric"):
            m = mm.lmer("y ~ x + (1 | g)", d.assign(**{column: d[column].astype(object)}))
        assert_same(m, clean)


def test_numbers_mixed_with_text_are_refused(d):
    x = d.x.astype(object).copy()
    x.iloc[3] = "n/a"
    with pytest.raises(mm.DataError, match=r"column 'x' .* mixes numbers .* and text \('n/a'\)"
                                           r".*errors='coerce'"):
        mm.lmer("y ~ x + (1 | g)", d.assign(x=x))


# -- item 5: a data column named Intercept ---------------------------------------------------
def test_column_named_intercept(d, clean):
    rng = np.random.default_rng(5)
    data = d.assign(Intercept=rng.normal(size=96))
    for formula in ("y ~ x + Intercept + (1 | g)", "y ~ x + Intercept + f + (1 | g)"):
        m = mm.lmer(formula, data)
        names = list(m.fixef.index)
        assert len(set(names)) == len(names) and "`Intercept`" in names
        assert m.design.fixed.r_names[:3] == ("(Intercept)", "x", "Intercept")
        np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)
    m = fit_quiet("y ~ x + Intercept + (Intercept | g)", data)
    assert list(m.ranef()["g"].columns) == ["Intercept", "`Intercept`"]
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)
    with pytest.warns(mm.RankDeficiencyWarning, match="`Intercept`"):
        m = mm.lmer("y ~ x + Intercept + (1 | g)", d.assign(Intercept=1.0))
    assert_same(m, clean)


# -- item 6: 3 and "3" in one grouping column --------------------------------------------------
def test_numbers_and_their_text_are_one_level(d):
    codes = np.repeat(np.arange(12), 8)
    mixed = pd.Series([int(c) if i % 2 else str(c) for i, c in enumerate(codes)],
                      dtype=object)
    m = mm.lmer("y ~ x + (1 | g)", d.assign(g=mixed))
    ref = mm.lmer("y ~ x + (1 | g)", d.assign(g=codes))
    assert m.ngroups == {"g": 12}
    assert_same(m, ref)
    labels = m.ranef()["g"].index
    assert labels.is_unique and list(labels) == [str(i) for i in range(12)]
    for g_new in (codes, codes.astype(str), codes.astype(float), mixed):
        np.testing.assert_allclose(m.predict(d.assign(g=g_new)), m.fitted(), rtol=1e-12)


# -- item 7: offset= and predict(newdata) -------------------------------------------------------
def test_offset_column_is_read_from_newdata(d):
    rng = np.random.default_rng(7)
    data = d.assign(o=rng.normal(size=96))
    m = mm.lmer("y ~ x + (1 | g)", data, offset="o")
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)
    shifted = m.predict(data.assign(o=data.o + 1.0))
    np.testing.assert_allclose(shifted, m.fitted() + 1.0, rtol=1e-12)
    with pytest.raises(mm.DataError, match="offset='o', but newdata has no column 'o'"):
        m.predict(d)
    np.testing.assert_allclose(m.predict(d, offset=0), m.fitted() - data.o, rtol=1e-10)


def test_offset_array_cannot_be_recomputed(d):
    o = np.random.default_rng(8).normal(size=96)
    m = mm.lmer("y ~ x + (1 | g)", d, offset=o)
    with pytest.warns(mm.DataWarning, match="offset= was given as values"):
        p = m.predict(d)
    np.testing.assert_allclose(p, m.fitted() - o, rtol=1e-10)
    np.testing.assert_allclose(m.predict(d, offset=o), m.fitted(), rtol=1e-12)


# -- item 8: weights= / offset= Series align by index -------------------------------------------
def test_series_arguments_align_by_index(d):
    rng = np.random.default_rng(9)
    w = pd.Series(rng.uniform(1, 2, 96), index=d.index)
    o = pd.Series(rng.normal(size=96), index=d.index)
    ref = mm.lmer("y ~ x + (1 | g)", d, weights=w.to_numpy(), offset=o.to_numpy())
    m = mm.lmer("y ~ x + (1 | g)", d, weights=w[::-1], offset=o.sample(frac=1, random_state=1))
    assert_same(m, ref)
    with pytest.raises(mm.DataError, match=r"weights Series has an index that does not match"
                                           r".*weights.to_numpy\(\)"):
        mm.lmer("y ~ x + (1 | g)", d, weights=w.set_axis(np.arange(96) + 1000))
    with pytest.raises(mm.DataError, match="offset Series"):
        mm.lmer("y ~ x + (1 | g)", d, offset=o.iloc[:50])


# -- item 9: one-level factor, simulate(-2), REML="False" -------------------------------------
def test_one_level_factor_is_reported(d, clean):
    with pytest.warns(mm.FormulaWarning, match=r"factor 'h' has a single level \('a'\).*"
                                               r"contrasts can be applied only"):
        m = mm.lmer("y ~ x + h + (1 | g)", d.assign(h="a"))
    assert_same(m, clean)


def test_argument_validation(d, clean):
    with pytest.raises(ValueError, match=r"nsim must be a whole number.*-2"):
        clean.simulate(-2)
    with pytest.raises(ValueError, match="nsim"):
        clean.simulate(2.5)
    with pytest.raises(TypeError, match=r"REML must be True or False, got 'False'.*quotes"):
        mm.lmer("y ~ x + (1 | g)", d, REML="False")
    with pytest.raises(TypeError, match="check_conv must be True or False"):
        mm.lmer("y ~ x + (1 | g)", d, check_conv=2)  # 0 and 1 are accepted as False/True
    data = d.assign(k=(d.y > 1).astype(int))
    with pytest.raises(TypeError, match="calc_derivs must be True or False"):
        mm.glmer("k ~ x + (1 | g)", data, family="binomial", calc_derivs="no")
    assert mm.lmer("y ~ x + (1 | g)", d, REML=np.bool_(True)).objective == clean.objective


# -- item 10: pandas extension dtypes ---------------------------------------------------------
@pytest.mark.parametrize("convert", [
    lambda df: df.astype({"g": "string", "f": "string"}),
    lambda df: df.astype({"g": "string[pyarrow]", "f": "string[pyarrow]"}),
    lambda df: df.convert_dtypes(),
    lambda df: df.assign(x=df.x.astype("Float64"), k=pd.array(np.arange(96) % 4,
                                                               dtype="Int64")),
], ids=["string", "string_pyarrow", "convert_dtypes", "Float64_Int64"])
def test_extension_dtypes_fit_like_numpy(d, convert):
    pytest.importorskip("pyarrow")
    data = d.assign(k=np.arange(96) % 4)
    formula = "y ~ x + f + k + (1 | g)"
    ref = mm.lmer(formula, data)
    m = mm.lmer(formula, convert(data))
    assert m.objective == ref.objective
    np.testing.assert_array_equal(m.fixef.to_numpy(), ref.fixef.to_numpy())
    assert list(m.fixef.index) == list(ref.fixef.index)
    np.testing.assert_allclose(m.predict(convert(data)), ref.fitted(), rtol=1e-12)


def test_nullable_missing_values_are_dropped(d):
    x = pd.array(d.x, dtype="Float64")
    x[[2, 5]] = pd.NA
    with pytest.warns(mm.DroppedRowsWarning, match="2 of 96"):
        m = mm.lmer("y ~ x + (1 | g)", d.assign(x=x))
    ref = mm.lmer("y ~ x + (1 | g)", d.drop(index=[2, 5]))
    assert m.objective == pytest.approx(ref.objective, rel=SAME_RTOL)


# -- item 11: names lme4 accepts --------------------------------------------------------------
@pytest.mark.parametrize("name", ["class", "e", "pi", "lambda", "yield", "np", "inf", "nan",
                                  "I", "C", "Q", "log", "sujét", "my.var", "x_1"])
def test_column_names_work_bare(d, clean, name):
    m = mm.lmer(f"y ~ {name} + (1 | g)", d.rename(columns={"x": name}))
    assert_same(m, clean)
    r = mm.lmer(f"{name} ~ x + (1 | g)", d.rename(columns={"y": name}))
    assert_same(r, clean)


def test_grouping_names_unicode_and_backticks(d, clean):
    assert_same(mm.lmer("y ~ x + (1 | sujét)", d.rename(columns={"g": "sujét"})), clean)
    assert_same(mm.lmer("y ~ x + (1 | `my group`)", d.rename(columns={"g": "my group"})),
                clean)
    assert_same(mm.lmer("y ~ x + (1 | class)", d.rename(columns={"g": "class"})), clean)


def test_names_with_spaces(d, clean):
    data = d.rename(columns={"x": "body mass"})
    for formula in ("y ~ Q('body mass') + (1 | g)", "y ~ `body mass` + (1 | g)"):
        m = mm.lmer(formula, data)
        assert_same(m, clean)
        assert m.design.fixed.r_names == ("(Intercept)", "`body mass`")
        np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)


def test_keyword_inside_a_call_is_refused_clearly(d):
    with pytest.raises(mm.FormulaError, match=r"'yield', a Python keyword.*works bare.*rename"):
        mm.lmer("log(yield) ~ x + (1 | g)", d.rename(columns={"y": "yield"}))


def test_columns_named_like_functions_do_not_shadow_them(d):
    """A column np, log or scale next to np.log(), log() and scale() (formulaic would look
    the column up first)."""
    rng = np.random.default_rng(11)
    data = d.assign(np=rng.normal(size=96), log=rng.normal(size=96))
    m = mm.lmer("y ~ np + log + np.sqrt(x + 10) + log(x + 10) + (1 | g)", data)
    assert m.design.fixed.r_names == ("(Intercept)", "np", "log", "np.sqrt(x + 10)",
                                      "log(x + 10)")
    np.testing.assert_allclose(m.design.X[:, 3], np.sqrt(d.x + 10))
    np.testing.assert_allclose(m.design.X[:, 4], np.log(d.x + 10))
    np.testing.assert_allclose(m.design.X[:, 1], data.np)


# -- item 12: unused duplicated column names -------------------------------------------------
def test_unused_duplicate_column_is_ignored(d, clean):
    data = pd.concat([d, d[["f"]], d[["f"]]], axis=1)
    m = mm.lmer("y ~ x + (1 | g)", data)
    assert_same(m, clean)
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)
    with pytest.raises(mm.DataError, match="more than one column named 'f'"):
        mm.lmer("y ~ x + f + (1 | g)", data)


# -- item 17: unseen level of factor(k) in predict ------------------------------------------
def test_unseen_level_of_factor_call_names_column_and_level(d):
    data = d.assign(k=np.arange(96) % 3)
    m = mm.lmer("y ~ factor(k) + (1 | g)", data)
    with pytest.raises(mm.DataError) as err:
        m.predict(data.assign(k=5).head(3))
    text = str(err.value)
    assert "column 'k'" in text and "5" in text and "{np" not in text
    m = mm.lmer("y ~ C(k, Sum) + (1 | g)", data)
    with pytest.raises(mm.DataError, match=r"C\(k, Sum\) \(column 'k'\).*'7'"):
        m.predict(data.assign(k=7).head(3))


# -- item 19: interaction labels containing ':' -----------------------------------------------
def test_interaction_labels_with_colons_do_not_collide(d):
    a = np.array(["1:2", "1"] * 48)
    b = np.array(["3", "2:3"] * 48)
    data = d.assign(a=a, b=b)
    m = fit_quiet("y ~ x + (1 | g) + (1 | a:b)", data)
    assert m.ngroups["a:b"] == 2
    labels = m.ranef()["a:b"].index
    assert labels.is_unique and set(labels) == {"(1:2):3", "1:(2:3)"}
    ref = fit_quiet("y ~ x + (1 | g) + (1 | ab)", data.assign(ab=np.where(a == "1", "u", "v")))
    assert m.objective == pytest.approx(ref.objective, rel=SAME_RTOL)
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)
    plain = fit_quiet("y ~ x + (1 | a:f)", data)  # no collision: R's labels
    assert all(label.count(":") == 2 for label in plain.ranef()["a:f"].index
               if label.startswith("1:2"))


# -- item 21: a column named I -------------------------------------------------------------
def test_column_named_i_does_not_shadow_i(d):
    rng = np.random.default_rng(21)
    data = d.assign(I=rng.normal(size=96), n=10, k=rng.integers(0, 10, 96))
    ref = mm.glmer("cbind(k, n - k) ~ x + z + (1 | g)", data.assign(z=data.I),
                   family="binomial")
    m = mm.glmer("cbind(k, n - k) ~ x + I + (1 | g)", data, family="binomial")
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-8)
    halves = mm.lmer("I(y / 2) ~ x + I + I(x^2) + (1 | g)", data)
    ref = mm.lmer("y2 ~ x + z + x2 + (1 | g)", data.assign(y2=d.y / 2, z=data.I, x2=d.x ** 2))
    np.testing.assert_allclose(halves.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-8)
    assert halves.design.fixed.r_names == ("(Intercept)", "x", "I", "I(x^2)")


def test_object_numbers_as_weights_agree_with_formula(d):
    rng = np.random.default_rng(12)
    w = rng.uniform(1, 2, 96)
    ref = mm.lmer("y ~ x + (1 | g)", d.assign(w=w), weights="w")
    with pytest.warns(mm.DataWarning, match="column 'w'"):
        m = mm.lmer("y ~ x + (1 | g)", d.assign(w=pd.Series(w, dtype=object)), weights="w")
    assert_same(m, ref)
    m = mm.lmer("y ~ x + (1 | g)", d, weights=pd.Series(w, dtype="Float64"))
    assert_same(m, ref)


def test_fits_with_contrasts_pickle_and_predict(d):
    import pickle

    levels = np.random.default_rng(13).choice(["lo", "mid", "hi"], 96)
    data = d.assign(o=pd.Categorical(levels, categories=["lo", "mid", "hi"], ordered=True),
                    t=d.x > 0)
    m = mm.lmer("y ~ x + f + o + t + (1 | g)", data, contrasts={"f": "helmert"})
    back = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(back.predict(data), m.predict(data))
    np.testing.assert_allclose(back.predict(data), m.fitted(), rtol=1e-12)
    assert back.design.fixed.r_names == m.design.fixed.r_names
