"""Package warnings name the user's line, not a frame inside mixedmodels.

A fixed ``stacklevel`` at each call site pointed singular-fit and convergence warnings at
``fitting/lmm.py`` / ``fitting/glmm.py``; :func:`mixedmodels._messages.emit_warning` now
walks the stack to the first frame outside the package.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels._errors import ConvergenceWarning, DroppedRowsWarning, SingularFitWarning
from mixedmodels._messages import emit_warning, user_stacklevel


def _package_warnings(record, category):
    return [w for w in record if issubclass(w.category, category)]


def test_lmer_singular_warning_points_at_this_file():
    data = mm.datasets.load("Dyestuff2")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mm.lmer("Yield ~ 1 + (1 | Batch)", data)
    found = _package_warnings(record, SingularFitWarning)
    assert found, "Dyestuff2 is singular: the warning must be emitted"
    assert all(w.filename == __file__ for w in found), [w.filename for w in found]


def test_glmer_singular_warning_points_at_this_file():
    rng = np.random.default_rng(7)
    n, groups = 300, 10
    x = rng.normal(size=n)
    # no between-group variance at all: the fit lands on the boundary
    y = rng.poisson(np.exp(0.5 + 0.3 * x))
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i % groups}" for i in range(n)]})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = mm.glmer("y ~ x + (1 | g)", data, family="poisson")
    if fit.theta[0] > 0:
        pytest.skip("this draw is not singular")
    found = _package_warnings(record, SingularFitWarning)
    assert found
    assert all(w.filename == __file__ for w in found), [w.filename for w in found]


def test_glmer_convergence_warning_points_at_this_file():
    # three evaluations cannot reach the optimum: the convergence check must say so
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mm.datasets.load("cbpp"), family="binomial",
                 optimizer_settings={"maxeval": 3})
    found = _package_warnings(record, ConvergenceWarning)
    assert found
    assert all(w.filename == __file__ for w in found), [w.filename for w in found]


def test_emit_warning_from_a_user_helper_names_the_helper():
    # called directly from outside the package, the warning is the caller's own line
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        emit_warning("a note", UserWarning, stacklevel=7)   # stacklevel is ignored
    assert len(record) == 1 and record[0].filename == __file__


def test_user_stacklevel_counts_package_frames():
    # from outside the package the caller itself is the user's frame
    assert user_stacklevel() == 1


def test_dropped_rows_warning_points_at_this_file():
    # the same design code serves lmer and glmer at different depths of the stack
    sleep = mm.datasets.load("sleepstudy")
    sleep.loc[3, "Reaction"] = np.nan
    cbpp = mm.datasets.load("cbpp")
    cbpp.loc[2, "incidence"] = np.nan
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    found = _package_warnings(record, DroppedRowsWarning)
    assert len(found) == 2
    assert all(w.filename == __file__ for w in found), [w.filename for w in found]
