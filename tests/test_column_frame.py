"""The model frame keeps the columns it hands out (design/frame.py: ColumnFrame)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.design.frame import ColumnFrame, build_model_frame


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"y": rng.normal(size=12), "x": np.arange(12.0),
                         "g": pd.Categorical(list("abc") * 4), "unused": 1})


def test_lookups_are_kept_and_equal_to_pandas():
    frame = ColumnFrame.wrap(_data())
    first = frame["x"]
    assert frame["x"] is first                    # the kept Series
    pd.testing.assert_series_equal(first, pd.DataFrame(frame)["x"])
    assert isinstance(frame[["x", "y"]], pd.DataFrame)


def test_assignment_clears_what_is_kept():
    frame = ColumnFrame.wrap(_data())
    old = frame["x"]
    frame["x"] = frame["x"] * 2.0
    np.testing.assert_array_equal(frame["x"].to_numpy(), 2.0 * old.to_numpy())
    del frame["x"]
    assert "x" not in frame.columns


def test_derived_frames_are_plain_and_pickling_works():
    frame = ColumnFrame.wrap(_data())
    frame["y"]
    assert type(frame.copy()) is pd.DataFrame
    assert type(frame.iloc[:3]) is pd.DataFrame
    assert type(frame.assign(z=1)) is pd.DataFrame
    back = pickle.loads(pickle.dumps(frame))
    np.testing.assert_array_equal(back["y"].to_numpy(), frame["y"].to_numpy())


def test_model_frame_columns_match_the_data():
    data = _data()
    mf = build_model_frame(data, {"y": "response", "x": "fixed effects",
                                  "g": "grouping factor of (1 | g)"})
    assert isinstance(mf.frame, ColumnFrame)
    for name in ("y", "x", "g"):
        pd.testing.assert_series_equal(mf.frame[name], data[name])
    # with a dropped row the kept columns are the subset's, not the caller's
    data.loc[4, "x"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = build_model_frame(data, {"y": "response", "x": "fixed effects"})
    assert len(mf.frame["x"]) == 11 and np.all(np.isfinite(mf.frame["x"]))


def test_fit_unchanged_by_the_kept_columns():
    data = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    assert abs(m.objective - 1743.6282719584901) < 1e-8
