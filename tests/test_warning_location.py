"""Package warnings name the user's line, not a frame inside mixedmodels.

A fixed ``stacklevel`` at each call site pointed singular-fit and convergence warnings at
``fitting/lmm.py`` / ``fitting/glmm.py``; :func:`mixedmodels._messages.emit_warning` now
walks the stack to the first frame outside the package.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels._errors import ConvergenceWarning, DroppedRowsWarning, SingularFitWarning
from mixedmodels._messages import emit_warning, user_stacklevel


def _assert_points_here(fit, category):
    """Run ``fit()``; every warning of ``category`` it raises must name this file.
    Returns the fit's value."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        value = fit()
    found = [w for w in record if issubclass(w.category, category)]
    assert found, f"expected a {category.__name__}"
    assert all(w.filename == __file__ for w in found), [w.filename for w in found]
    return value, found


def test_lmer_singular_warning_points_at_this_file():
    data = mm.datasets.load("Dyestuff2")     # singular: the warning must be emitted
    _assert_points_here(lambda: mm.lmer("Yield ~ 1 + (1 | Batch)", data), SingularFitWarning)


def test_glmer_singular_warning_points_at_this_file():
    rng = np.random.default_rng(7)
    n, groups = 300, 10
    x = rng.normal(size=n)
    # no between-group variance at all: the fit lands on the boundary
    y = rng.poisson(np.exp(0.5 + 0.3 * x))
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i % groups}" for i in range(n)]})
    fit, _ = _assert_points_here(lambda: mm.glmer("y ~ x + (1 | g)", data, family="poisson"),
                                 SingularFitWarning)
    assert fit.theta[0] == 0.0


def test_glmer_convergence_warning_points_at_this_file():
    # three evaluations cannot reach the optimum: the convergence check must say so
    cbpp = mm.datasets.load("cbpp")
    _assert_points_here(
        lambda: mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                         family="binomial", optimizer_settings={"maxeval": 3}),
        ConvergenceWarning)


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
    _, found = _assert_points_here(
        lambda: (mm.lmer("Reaction ~ Days + (Days | Subject)", sleep),
                 mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                          family="binomial")),
        DroppedRowsWarning)
    assert len(found) == 2


def test_anova_refit_note_points_at_this_file():
    # anova of REML fits refits them by ML and says so (a warnings.warn call site in
    # inference/, which had a fixed stacklevel too)
    from mixedmodels.inference.anova import RefitNote
    sleep = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
        large = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    _assert_points_here(lambda: mm.anova(small, large), RefitNote)
