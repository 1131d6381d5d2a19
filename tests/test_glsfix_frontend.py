"""The glsfix lane's shortcuts in the shared front end, each against what it replaces."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import lapack

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.design import materialize
from mixedmodels.design.fixed import take_rank_factor
from mixedmodels.design.frame import columns_at
from mixedmodels.design.response import _is_bool, is_numeric_column
from mixedmodels.formula import parse_formula
from mixedmodels.linalg.basis import FixedBasis

DTYPES = [np.bool_, np.int8, np.int64, np.uint32, np.float16, np.float32, np.float64,
          np.longdouble, np.complex128, "datetime64[ns]", "timedelta64[ns]", object, "U3",
          "S2"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numeric_and_bool_tests_match_pandas_on_numpy_dtypes(dtype):
    dt = np.dtype(dtype)
    col = pd.Series(np.zeros(3, dtype=dt))
    expect = pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)
    assert is_numeric_column(col) == expect
    assert _is_bool(dt) == pd.api.types.is_bool_dtype(dt)


@pytest.mark.parametrize("values", [pd.array([1, None], dtype="Int64"),
                                    pd.array([True, False], dtype="boolean"),
                                    pd.Categorical(["a", "b"])])
def test_numeric_and_bool_tests_of_extension_dtypes_are_pandas_own(values):
    col = pd.Series(values)
    dt = col.dtype
    expect = not isinstance(dt, pd.CategoricalDtype) and (
        pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
    assert is_numeric_column(col) == expect
    assert _is_bool(dt) == pd.api.types.is_bool_dtype(dt)


def test_columns_at_reports_the_series_dtypes():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": pd.Categorical(["x", "y"]), "c": [1, 2],
                       "d": pd.to_datetime(["2020-01-01", "2020-01-02"]).tz_localize("UTC"),
                       "e": pd.array([1, None], dtype="Int64")})
    dtypes: dict = {}
    cols = columns_at(df, list(df.columns), tuple(range(df.shape[1])), None, dtypes)
    assert dtypes == {n: c.dtype for n, c in cols.items()}
    assert dtypes == dict(df.dtypes)


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas():
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    with threadpool_limits(limits=2, user_api="blas"):
        with blas_threads():
            assert blas() == 1
            with blas_threads(5):                  # nested: the outer limit stays
                assert blas() == 1
            assert blas() == 1
        assert blas() == 2
        with pytest.raises(RuntimeError), blas_threads():
            raise RuntimeError("restored on the way out too")
        assert blas() == 2


def _design(formula="distance ~ age * Sex"):
    return materialize(parse_formula(formula), mm.datasets.load("Orthodont"),
                       require_random=False)


def test_rank_factor_is_the_basis_factor_bit_for_bit():
    design = _design()
    qr = take_rank_factor(design.fixed)
    assert qr is not None
    fresh, _, _, info = lapack.dgeqrf(np.asarray(design.X, dtype=float))
    assert info == 0 and np.array_equal(qr, fresh)
    shared, own = FixedBasis.of(design.X, None, qr), FixedBasis.of(design.X)
    for field in ("R", "R_inv", "X"):
        assert np.array_equal(getattr(shared, field), getattr(own, field))
    assert shared.log_det_R2 == own.log_det_R2


def test_rank_factor_is_handed_over_once_and_never_to_a_replaced_matrix():
    design = _design()
    assert take_rank_factor(design.fixed) is not None
    assert take_rank_factor(design.fixed) is None          # taken: a refit factors again
    design = _design()
    moved = dataclasses.replace(design.fixed, X=design.X + 1.0)
    assert take_rank_factor(moved) is None                  # replace drops it
    # a matrix swapped in place of the one it was made from is not trusted
    object.__setattr__(design.fixed, "X", design.X.copy())
    assert take_rank_factor(design.fixed) is None


def test_no_rank_factor_with_dropped_columns_or_weights():
    df = mm.datasets.load("Orthodont").assign(age2=lambda d: 2.0 * d["age"])
    with pytest.warns(mm.RankDeficiencyWarning):
        design = materialize(parse_formula("distance ~ age + age2"), df, require_random=False)
    assert take_rank_factor(design.fixed) is None
    # with weights the basis factors the weighted matrix: the unweighted factor is ignored
    design = _design()
    qr = take_rank_factor(design.fixed)
    w = np.linspace(0.5, 2.0, design.nobs)
    a, b = FixedBasis.of(design.X, w, qr), FixedBasis.of(design.X, w)
    assert np.array_equal(a.R, b.R) and np.array_equal(a.X, b.X)
    assert not np.array_equal(a.R, FixedBasis.of(design.X, None, qr).R)


def test_fits_with_and_without_the_hand_over_agree_exactly(monkeypatch):
    o = mm.datasets.load("Orthodont")
    sleep = mm.datasets.load("sleepstudy")
    fits = [lambda: mm.gls("distance ~ age * Sex", o,
                           variance=mm.var_ident(form="~ 1 | Sex"), method="ML"),
            lambda: mm.gls("distance ~ age * Sex", o,
                           correlation=mm.cor_comp_symm(form="~ 1 | Subject")),
            lambda: mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)]
    shared = [f() for f in fits]
    import mixedmodels.fitting.rside as rs
    import mixedmodels.objective.lmm as ol
    monkeypatch.setattr(rs, "take_rank_factor", lambda fixed: None)
    monkeypatch.setattr(ol, "take_rank_factor", lambda fixed: None)
    for a, f in zip(shared, fits, strict=True):
        b = f()
        assert a.loglik == b.loglik
        assert np.array_equal(a.beta, b.beta)
        assert np.array_equal(np.asarray(a.vcov), np.asarray(b.vcov))


def test_design_pickles_without_the_taken_factor():
    m = mm.gls("distance ~ age * Sex", mm.datasets.load("Orthodont"))
    assert "_rank_qr" not in m.design.fixed.__dict__
    again = pickle.loads(pickle.dumps(m.design))
    assert np.array_equal(again.X, m.design.X)
