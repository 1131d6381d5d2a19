"""Bad input gets a clear error or warning naming the problem (issue 2, "Bad input").

Every error is one of the package's own (:class:`mixedmodels.FormulaError`,
:class:`mixedmodels.DataError`, both ``ValueError``), never a numpy or pandas traceback from
deep inside, and the caller's DataFrame is never modified.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FORMULA = "Reaction ~ Days + (Days | Subject)"
# fits of the same rows must agree to rounding
SAME_FIT_RTOL = 1e-10


@pytest.fixture
def sleep() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return mm.lmer(formula, data, **kw)


# -- formula syntax --------------------------------------------------------------------------
SYNTAX = [
    ("Reaction ~ Days + (1 | )", r"'\(1 \| \)' has no grouping variable after '\|'"),
    ("Reaction ~ Days + ( | Subject)", r"'\( \| Subject\)' has nothing before '\|'"),
    ("Reaction ~ Days + (1 | Subject", r"1 unclosed '\(' \(the one at character 19"),
    ("Reaction ~ Days + 1 | Subject)", r"unbalanced '\)' at character 30"),
    ("Reaction ~ Days + 1 | Subject", r"'1 \| Subject' contains '\|' but is not a parenthesised"),
    ("~ Days + (1 | Subject)", "has no response on the left"),
    ("Reaction ~ Days ~ x + (1 | Subject)", "exactly one '~'"),
    ("Reaction ~ ", r"nothing on the right of '~'"),
    ("Reaction ~ Days + (1 | Subject | Days)", r"has more than one '\|'"),
    ("Reaction ~ Days - (1 | Subject)", r"cannot be subtracted: '- \(1 \| Subject\)'"),
    ("Reaction ~ Days + + (1 | Subject)", r"a '\+' with nothing next to it after 'Days'"),
    ("Reaction ~ Days + (1 | Subject) +", r"after '\(1 \| Subject\)'"),
    ("Reaction ~ Days + (Days + | Subject)",
     r"term '\(Days \+ \| Subject\)' has a '\+' with nothing next to it after 'Days'"),
    ("Reaction ~ Days + (1 | log(Subject))",
     r"grouping factor 'log\(Subject\)' in random-effects term .* is not a column name"),
    ("Reaction ~ Days + (1 | Subject + Days)", r"crossed factors write separate terms"),
    ("Reaction ~ Days + (1 | Subject/)", r"'/' needs a factor on each side"),
    ("Reaction ~ Days + (0 | Subject)", r"'\(0 \| Subject\)' has no columns"),
    ("Reaction ~ Days + diag(Days || Subject)", r"'\|\|' cannot be combined with diag\(\)"),
    ("Reaction ~ Days + offset() + (1 | Subject)", r"'offset\(\)' .* is empty"),
    ("Reaction ~ I(Days + (1 | Subject)) + (1 | Subject)",
     "random-effects term inside a function call"),
    ("Reaction ~ Days +* Days + (1 | Subject)", r"fixed-effects model matrix .*\+\*"),
    ("Reaction ~ nosuchfunction(Days) + (1 | Subject)", "nosuchfunction"),
]


@pytest.mark.parametrize(("formula", "message"), SYNTAX)
def test_formula_syntax_errors_point_at_the_term(sleep, formula, message):
    with pytest.raises(mm.FormulaError, match=message) as info:
        _fit(formula, sleep)
    assert "\x1b[" not in str(info.value)  # no terminal colour codes from formulaic


def test_formula_must_be_a_string(sleep):
    with pytest.raises(mm.FormulaError, match="formula must be a string, got int"):
        _fit(123, sleep)


def test_no_random_effects_points_to_lm(sleep):
    with pytest.raises(mm.FormulaError, match=r"no random-effects term .* use mm\.lm\(\)"):
        _fit("Reaction ~ Days", sleep)


# -- columns -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("formula", "kw", "message"), [
    ("Reaction ~ Dayz + (1 | Subject)", {},
     r"'Dayz' used in the fixed effects \(did you mean 'Days'\?\)"),
    ("Reaction ~ Days + (1 | Subjekt)", {},
     r"'Subjekt' used in the grouping factor of \(1 \| Subjekt\) \(did you mean 'Subject'"),
    ("Reaction ~ Days + (Dayz | Subject)", {}, r"'Dayz' used in the random-effects term"),
    ("Reactoin ~ Days + (1 | Subject)", {}, r"'Reactoin' used in the response"),
    ("Reaction ~ Days + offset(log(expo)) + (1 | Subject)", {}, r"'expo' used in the offset"),
    ("Reaction ~ Days + (1 | Subject)", {"weights": "w"}, r"weights column 'w' not found"),
    ("Reaction ~ Days + (1 | Subject)", {"offset": "o"}, r"offset column 'o' not found"),
])
def test_missing_columns_are_named(sleep, formula, kw, message):
    with pytest.raises(mm.DataError, match=message) as info:
        _fit(formula, sleep, **kw)
    assert "Available columns: Reaction, Days, Subject" in str(info.value) or "weights" in kw \
        or "offset" in kw


def test_duplicate_column_names(sleep):
    dup = pd.concat([sleep, sleep[["Days"]]], axis=1)
    with pytest.raises(mm.DataError, match="more than one column named 'Days'"):
        _fit(FORMULA, dup)


@pytest.mark.parametrize(("convert", "message"), [
    (lambda s: s.astype(str), r"response 'Reaction' is not numeric \(dtype"),
    (lambda s: pd.Categorical(s.round()), r"response 'Reaction' is not numeric \(dtype category"),
    (lambda s: s > 300, r"response 'Reaction' is boolean; .* binomial"),
])
def test_response_not_numeric(sleep, convert, message):
    sleep["Reaction"] = convert(sleep["Reaction"])
    with pytest.raises(mm.DataError, match=message):
        _fit(FORMULA, sleep)


def test_constant_response(sleep):
    sleep["Reaction"] = 250.0
    with pytest.raises(mm.DataError, match=r"'Reaction' is constant \(every value is 250\)"):
        _fit(FORMULA, sleep)


def test_dates_are_not_numbers(sleep):
    sleep["t"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(sleep["Days"], unit="D")
    with pytest.raises(mm.DataError, match=r"column 't' used in the fixed effects holds dates"):
        _fit("Reaction ~ t + (1 | Subject)", sleep)
    # as a grouping factor a date is just a label
    assert _fit("Reaction ~ Days + (1 | t)", sleep).ngroups == {"t": 10}


def test_values_whose_squares_overflow(sleep):
    sleep["Reaction"] = sleep["Reaction"] * 1e200
    with pytest.raises(mm.DataError, match=r"response 'Reaction' are too large"):
        _fit(FORMULA, sleep)


def test_data_type_and_empty_data(sleep):
    with pytest.raises(mm.DataError, match=r"must be a pandas DataFrame .* got list"):
        _fit(FORMULA, [1, 2, 3])
    with pytest.raises(mm.DataError, match="data has no rows"):
        _fit(FORMULA, sleep.iloc[:0])
    m = _fit(FORMULA, {c: sleep[c].to_numpy() for c in sleep.columns})  # a dict is fine
    assert m.nobs == len(sleep)


# -- lme4's identifiability checks ---------------------------------------------------------------
def test_grouping_factor_with_as_many_levels_as_observations(sleep):
    sleep["obs"] = np.arange(len(sleep))
    with pytest.raises(mm.DataError,
                       match=r"grouping factor 'obs' has 180 levels for 180 observations"):
        _fit("Reaction ~ Days + (1 | obs)", sleep)
    with pytest.raises(mm.DataError, match=r"'Subject:Days' has 180 levels"):
        _fit("Reaction ~ Days + (1 | Subject:Days)", sleep)


def test_more_random_effects_than_observations(sleep):
    few = sleep.groupby("Subject", observed=True).head(2).iloc[:12]  # 6 subjects x 2 days
    with pytest.raises(mm.DataError, match=r"'\(Days \| Subject\)' has 12 random effects "
                                           r"\(6 levels x 2 columns: Intercept, Days\) for "
                                           r"12 observations"):
        _fit(FORMULA, few)
    # a categorical slope has one column per level: the message shows them
    sleep["Day"] = pd.Categorical(sleep["Days"])
    with pytest.raises(mm.DataError, match=r"18 levels x 10 columns: Intercept, Day\[T\.1\]"):
        _fit("Reaction ~ 1 + (Day | Subject)", sleep)


def test_grouping_factor_with_one_level(sleep):
    with pytest.raises(mm.DataError, match="'Subject' has only 1 level"):
        _fit(FORMULA, sleep.iloc[:10])


# -- missing and infinite values -----------------------------------------------------------------
def test_missing_and_infinite_rows_dropped_and_counted(sleep):
    bad = sleep.copy()
    bad["Days"] = bad["Days"].astype(float)
    bad.loc[[0, 5, 7], "Reaction"] = np.nan
    bad.loc[9, "Days"] = np.inf
    bad.loc[11, "Subject"] = np.nan
    bad.loc[12, "Reaction"] = -np.inf
    with pytest.warns(mm.DroppedRowsWarning,
                      match=r"6 of 180 rows dropped for missing or non-finite values "
                            r"\('Reaction': 4, 'Days': 1, 'Subject': 1\)"):
        m = _fit(FORMULA, bad)
    keep = ~bad.index.isin([0, 5, 7, 9, 11, 12])
    ref = _fit(FORMULA, sleep.loc[keep])
    assert m.nobs == 174
    assert m.design.dropped.n_dropped == 6
    assert sorted(m.design.dropped.labels) == [0, 5, 7, 9, 11, 12]
    assert m.objective == pytest.approx(ref.objective, rel=SAME_FIT_RTOL)
    assert list(m.fitted().index) == list(sleep.index[keep])


def test_nullable_dtypes_missing_values(sleep):
    sleep["Reaction"] = pd.array(sleep["Reaction"], dtype="Float64")
    sleep["Days"] = pd.array(sleep["Days"], dtype="Int64")
    sleep.loc[2, "Reaction"] = pd.NA
    sleep.loc[3, "Days"] = pd.NA
    with pytest.warns(mm.DroppedRowsWarning, match=r"'Reaction': 1, 'Days': 1"):
        m = _fit(FORMULA, sleep)
    assert m.nobs == 178


def test_rows_dropped_when_a_transformation_is_not_finite(sleep):
    with pytest.warns(mm.DroppedRowsWarning,
                      match=r"102 of 180 rows dropped: a missing or infinite value from a "
                            r"transformation \('log\(Reaction - 300\)': 102\)"):
        m = _fit("log(Reaction - 300) ~ Days + (1 | Subject)", sleep)
    kept = sleep[sleep["Reaction"] > 300]
    ref = _fit("log(Reaction - 300) ~ Days + (1 | Subject)", kept)
    assert m.nobs == len(kept) == 78
    assert m.objective == pytest.approx(ref.objective, rel=SAME_FIT_RTOL)
    with pytest.warns(mm.DroppedRowsWarning, match=r"'log\(Days\)': 18"):
        _fit("Reaction ~ log(Days) + (1 | Subject)", sleep)


def test_scale_uses_only_the_rows_fitted(sleep):
    """A stateful transform is computed on the rows kept (not on rows dropped for NA)."""
    bad = sleep.copy()
    bad.loc[:20, "Reaction"] = np.nan
    with pytest.warns(mm.DroppedRowsWarning):
        m = _fit("Reaction ~ scale(Days) + (1 | Subject)", bad)
    days = sleep["Days"].to_numpy(float)[21:]
    np.testing.assert_allclose(m.design.X[:, 1], (days - days.mean()) / days.std(ddof=1),
                               rtol=1e-12)


def test_all_rows_dropped(sleep):
    sleep["Reaction"] = np.nan
    with pytest.raises(mm.DataError, match=r"all 180 rows have a missing or non-finite value "
                                           r".*Reaction: 180"):
        _fit(FORMULA, sleep)


def test_all_rows_dropped_by_a_transformation(sleep):
    with pytest.raises(mm.DataError, match=r"all 180 remaining rows have a missing or infinite "
                                           r"value from a transformation"):
        _fit("log(Reaction - 1000) ~ Days + (1 | Subject)", sleep)
    sleep["c"] = 1.0
    with pytest.raises(mm.DataError, match=r"\('scale\(c\)': 180\)"):
        _fit("Reaction ~ scale(c) + (1 | Subject)", sleep)


# -- weights and offsets --------------------------------------------------------------------------
def test_negative_weights(sleep):
    w = np.ones(len(sleep))
    w[[3, 8]] = -1.0
    with pytest.raises(mm.DataError, match=r"non-negative; 2 are negative \(at row positions "
                                           r"3, 8\)"):
        _fit(FORMULA, sleep, weights=w)


def test_missing_weights_and_offsets_drop_rows(sleep):
    w = np.ones(len(sleep))
    w[4] = np.nan
    with pytest.warns(mm.DroppedRowsWarning, match=r"1 of 180 rows dropped .*'weights': 1"):
        m = _fit(FORMULA, sleep, weights=w)
    assert m.nobs == 179
    sleep["w"] = w
    with pytest.warns(mm.DroppedRowsWarning, match=r"'w': 1"):
        _fit(FORMULA, sleep, weights="w")
    off = np.zeros(len(sleep))
    off[[1, 2]] = np.inf
    with pytest.warns(mm.DroppedRowsWarning, match=r"'offset': 2"):
        assert _fit(FORMULA, sleep, offset=off).nobs == 178


@pytest.mark.parametrize(("weights", "message"), [
    (np.ones(10), r"one number per row of data \(180 rows\), got 10 values"),
    (["a"] * 180, "could not read it as numbers"),
    (2.0, "got the single value 2.0"),
    (np.ones((180, 2)), "one number per row"),
])
def test_malformed_weights(sleep, weights, message):
    with pytest.raises(mm.DataError, match=message):
        _fit(FORMULA, sleep, weights=weights)


def test_weights_column_not_numeric(sleep):
    sleep["w"] = "heavy"
    with pytest.raises(mm.DataError, match=r"weights column 'w' is not numeric"):
        _fit(FORMULA, sleep, weights="w")


def test_all_zero_weights(sleep):
    with pytest.raises(mm.DataError, match="all 180 remaining rows have zero prior weight"):
        _fit(FORMULA, sleep, weights=np.zeros(len(sleep)))


# -- the caller's data is never modified -----------------------------------------------------------
def _messy(sleep: pd.DataFrame) -> pd.DataFrame:
    d = sleep.copy()
    d["Days"] = d["Days"].astype(float)
    d.loc[[0, 3], "Reaction"] = np.nan
    d.loc[5, "Days"] = np.inf
    d["Subject"] = d["Subject"].cat.add_categories(["unused"])  # an unused level
    d["w"] = np.where(np.arange(len(d)) % 7 == 0, 0.0, 1.5)
    d["g"] = d["Subject"].astype(str)
    d["other"] = "untouched"
    return d


@pytest.mark.parametrize(("formula", "kw"), [
    ("Reaction ~ Days + (Days | Subject)", {"weights": "w"}),
    ("log(Reaction) ~ scale(Days) + (1 | g)", {"offset": np.zeros(180)}),
    ("Reaction ~ C(Days) + (1 | Subject/g)", {}),
])
def test_callers_data_not_modified(sleep, formula, kw):
    data = _messy(sleep)
    before = copy.deepcopy(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(formula, data, **kw)
        m.predict(data, allow_new_levels=True)
    pd.testing.assert_frame_equal(data, before)
    assert list(data["Subject"].cat.categories)[-1] == "unused"


# -- errors are ours ----------------------------------------------------------------------------
def test_errors_are_value_errors_of_this_package():
    assert issubclass(mm.FormulaError, mm.MixedModelsError)
    assert issubclass(mm.DataError, mm.MixedModelsError)
    assert issubclass(mm.MixedModelsError, ValueError)
