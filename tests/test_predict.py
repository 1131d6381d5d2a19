"""Predictions against lme4's predict() (fixtures from tools/r/formula_fixtures.R).

Covers ``re_form`` (all, none, a subset of terms, a subset of a term's columns),
``allow_new_levels``, missing values in new data, categorical predictors given as strings,
stateful transforms (``scale()``, ``center()``) evaluated with the fitting data's state, and
offsets in the formula.

Tolerances: predictions from our fit within FITTED_RTOL of lme4's (issue 2's fitted-value
tolerance); predictions at lme4's own theta within AT_THETA_RTOL (optimizer-independent).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from test_formulas import (
    AT_THETA_RTOL,
    FITTED_RTOL,
    fit_fixture,
    fit_kwargs,
    fixture,
    fixture_data,
    fixture_ids,
    frame_from_columns,
)

CASES = [
    pytest.param(fid, i, id=f"{fid}-{i}")
    for fid in fixture_ids()
    for i, _ in enumerate(fixture(fid).get("predict", []))
]


def _expected(entry) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in entry["values"]], dtype=float)


def _newdata(entry) -> pd.DataFrame:
    return frame_from_columns(entry["newdata"])


def _at_lme4_theta(fx) -> mm.LinearMixedModelResult:
    kw = fit_kwargs(fx)
    design = mm.materialize(mm.parse_formula(fx["python"]["formula"]), fixture_data(fx),
                            weights=kw.get("weights"), offset=kw.get("offset"))
    obj = mm.LMMObjective(design, reml=kw["REML"])
    theta = np.atleast_1d(np.asarray(fx["theta"], dtype=float))
    return mm.LinearMixedModelResult(design, kw["REML"], obj.solve(theta), None, None, obj)


def _assert_predictions(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rtol)


@pytest.mark.parametrize(("fid", "i"), CASES)
def test_predict_matches_lme4(fid, i):
    fx = fixture(fid)
    entry = fx["predict"][i]
    nd = _newdata(entry)
    pred = fit_fixture(fx).predict(nd, re_form=entry["re_form"],
                                   allow_new_levels=entry["allow_new_levels"])
    assert list(pred.index) == list(nd.index)
    _assert_predictions(pred.to_numpy(), _expected(entry), FITTED_RTOL)


@pytest.mark.parametrize(("fid", "i"), CASES)
def test_predict_at_lme4_theta(fid, i):
    """Same predictions from the solution at lme4's theta: tight, optimizer-independent."""
    fx = fixture(fid)
    entry = fx["predict"][i]
    pred = _at_lme4_theta(fx).predict(_newdata(entry), re_form=entry["re_form"],
                                      allow_new_levels=entry["allow_new_levels"])
    _assert_predictions(pred.to_numpy(), _expected(entry), AT_THETA_RTOL)


@pytest.fixture(scope="module")
def sleep():
    fx = fixture("sleep_corr")
    return fx, fit_fixture(fx)


@pytest.mark.parametrize("re_form", ["~0", "0", "~ 0", "NA", "~NA", False, np.nan])
def test_population_spellings(sleep, re_form):
    fx, m = sleep
    entry = fx["predict"][1]  # lme4's re.form = NA
    pred = m.predict(_newdata(entry), re_form=re_form)
    _assert_predictions(pred.to_numpy(), _expected(entry), FITTED_RTOL)


def test_no_newdata_is_fitted_and_fitting_rows_reproduce_it():
    fx = fixture("orth_scale")
    m = fit_fixture(fx)
    np.testing.assert_allclose(m.predict().to_numpy(), m.fitted().to_numpy(), rtol=1e-12)
    # the fitting rows as new data: scale() must reuse the fitting mean and sd
    again = m.predict(fixture_data(fx))
    np.testing.assert_allclose(again.to_numpy(), m.fitted().to_numpy(), rtol=1e-12)
    population = m.predict(fixture_data(fx).iloc[:10], re_form="~0")
    np.testing.assert_allclose(population.to_numpy(), m.predict(re_form="~0").to_numpy()[:10],
                               rtol=1e-12)


def test_single_new_row_uses_training_scale():
    """One row has no sd of its own: the training state must be used (lme4's predvars)."""
    fx = fixture("orth_scale")
    m = fit_fixture(fx)
    entry = fx["predict"][1]  # re.form = NA
    nd = _newdata(entry)
    expected = _expected(entry)
    for i in range(len(nd)):
        one = m.predict(nd.iloc[[i]], re_form="~0")
        assert one.iloc[0] == pytest.approx(expected[i], rel=FITTED_RTOL)


def test_categorical_newdata_any_category_order(sleep):
    fx = fixture("orth_scale")
    m = fit_fixture(fx)
    entry = fx["predict"][0]
    nd = _newdata(entry)
    nd["Sex"] = pd.Categorical(nd["Sex"], categories=["Female", "Male"])  # reversed order
    nd["Subject"] = pd.Categorical(nd["Subject"])
    pred = m.predict(nd, allow_new_levels=True)
    _assert_predictions(pred.to_numpy(), _expected(entry), FITTED_RTOL)


@pytest.mark.parametrize("kind", ["int", "float"])
def test_numeric_grouping_in_newdata(sleep, kind):
    """Subject given as numbers (308, or 308.0 as in a float column) finds the level '308'."""
    fx, m = sleep
    entry = fx["predict"][0]
    nd = _newdata(entry)
    nd["Subject"] = nd["Subject"].astype(int).astype(kind)
    pred = m.predict(nd, allow_new_levels=True)
    _assert_predictions(pred.to_numpy(), _expected(entry), FITTED_RTOL)


def test_new_levels_raise_unless_allowed(sleep):
    fx, m = sleep
    nd = _newdata(fx["predict"][0])
    with pytest.raises(mm.DataError, match=r"2 rows with levels of 'Subject'.*'999'"):
        m.predict(nd)
    with pytest.raises(mm.DataError, match="allow_new_levels=True"):
        m.predict(nd)
    # a missing grouping value is a new level too (lme4)
    with pytest.raises(mm.DataError, match="Subject"):
        m.predict(pd.DataFrame({"Days": [1.0], "Subject": [None]}))
    # population-level prediction needs no grouping column at all
    pop = m.predict(pd.DataFrame({"Days": [0.0, 1.0]}), re_form="~0")
    np.testing.assert_allclose(pop.to_numpy(), m.fixef["Intercept"] + m.fixef["Days"] *
                               np.array([0.0, 1.0]), rtol=1e-12)


def test_missing_columns_named(sleep):
    _fx, m = sleep
    with pytest.raises(mm.DataError, match=r"newdata lacks column\(s\) 'Subject'"):
        m.predict(pd.DataFrame({"Days": [1.0]}))
    with pytest.raises(mm.DataError, match=r"'Days'"):
        m.predict(pd.DataFrame({"Subject": ["308"]}))


def test_unseen_level_of_a_categorical_predictor():
    fx = fixture("orth_scale")
    m = fit_fixture(fx)
    nd = pd.DataFrame({"age": [8.0], "Sex": ["Other"], "Subject": ["M01"]})
    with pytest.raises(mm.DataError, match=r"column 'Sex' has levels the fit did not see: "
                                           r"'Other'"):
        m.predict(nd)
    # a string column in the fit (sorted levels) refuses unseen values the same way
    fs = fixture("orth_sex_string")
    ms = fit_fixture(fs)
    with pytest.raises(mm.DataError, match="'SexChr'"):
        ms.predict(pd.DataFrame({"age": [8.0], "SexChr": ["male"], "Subject": ["M01"]}))


def test_unseen_level_of_factor_transform():
    """``C(Days)`` fitted on Days 0..9: Days = 4.5 has no coefficient."""
    fx = fixture("sleep_factor_days")
    m = fit_fixture(fx)
    with pytest.raises(mm.DataError, match="did not see"):
        m.predict(pd.DataFrame({"Days": [4.5], "Subject": ["308"]}))
    ok = m.predict(pd.DataFrame({"Days": [4], "Subject": ["308"]}))
    assert ok.iloc[0] == pytest.approx(m.fitted().iloc[4], rel=1e-12)


def test_text_in_a_numeric_predictor(sleep):
    _fx, m = sleep
    with pytest.raises(mm.DataError, match="column 'Days' has dtype"):
        m.predict(pd.DataFrame({"Days": ["1"], "Subject": ["308"]}))


def test_re_form_errors(sleep):
    _fx, m = sleep
    with pytest.raises(mm.FormulaError, match="'Nope'"):
        m.predict(re_form="~(1 | Nope)")
    with pytest.raises(mm.FormulaError, match="does not have"):
        m.predict(re_form="~(0 + Reaction | Subject)")
    with pytest.raises(mm.FormulaError, match="random-effects terms only"):
        m.predict(re_form="~ Days")
    with pytest.raises(mm.FormulaError, match="re_form must be"):
        m.predict(re_form=3)


def test_re_form_equivalent_spellings(sleep):
    """``~(Days | Subject)`` and ``~(1 + Days | Subject)`` name the whole term."""
    _fx, m = sleep
    full = m.predict().to_numpy()
    for form in ["~(Days | Subject)", "~(1 + Days | Subject)", "(Days | Subject)"]:
        np.testing.assert_allclose(m.predict(re_form=form).to_numpy(), full, rtol=1e-12)


def test_offset_argument_on_newdata():
    """The offset-argument fit, given the offset for newdata, predicts what lme4 predicts
    for the same model written with offset() in the formula."""
    fx = fixture("sleep_offset_argument")
    ref = fixture("sleep_offset_formula")
    m = fit_fixture(fx)
    for entry in ref["predict"]:
        nd = _newdata(entry)
        pred = m.predict(nd, re_form=entry["re_form"], offset=nd["Days"] ** 2 / 2,
                         allow_new_levels=entry["allow_new_levels"])
        _assert_predictions(pred.to_numpy(), _expected(entry), FITTED_RTOL)


def test_newdata_not_modified():
    fx = fixture("orth_scale")
    m = fit_fixture(fx)
    nd = _newdata(fx["predict"][0])
    nd.loc[len(nd)] = [9.0, None, "M01"]
    before = copy.deepcopy(nd)
    pred = m.predict(nd, allow_new_levels=True)
    pd.testing.assert_frame_equal(nd, before)
    assert np.isnan(pred.iloc[-1])  # missing Sex: missing prediction (lme4's na.pass)


def test_dict_newdata_and_empty_newdata(sleep):
    _fx, m = sleep
    from_dict = m.predict({"Days": [0.0, 1.0], "Subject": ["308", "308"]})
    np.testing.assert_allclose(from_dict.to_numpy(), m.fitted().to_numpy()[:2], rtol=1e-12)
    empty = m.predict(pd.DataFrame({"Days": pd.Series([], dtype=float),
                                    "Subject": pd.Series([], dtype=str)}))
    assert len(empty) == 0
