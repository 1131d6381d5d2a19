"""Large LMMs on Dask input start where the in-memory fit starts (fitting/moment_start).

From ``MOMENT_START_MIN_ROWS`` rows the gradient search starts from the moment estimate,
which reads the objective's cross-products only: a Dask fit (cross-products summed over
the partitions) takes the in-memory fit's start to rounding and then its optimizer path.
Oracle: the in-memory fit of the same rows. Tolerances: the start to 1e-12 relative;
the fits to the issue's (objective 1e-8 relative, estimates 1e-7), on Dask's threaded
scheduler here, with and without prior weights (the ``distributed.LocalCluster`` cases
are in tests/test_dask_backend.py, which has a cluster running). Before the start was
shared, the Dask fit started from lme4's theta and these fits differed by 1.6e-7 to
1.0e-6 in theta.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

from test_dask_backend import LARGE_FORMULAS as FORMULAS  # noqa: E402  (after importorskip)
from test_dask_backend import START_RTOL, fit_both, large_frame  # noqa: E402


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return large_frame()


def _objectives(formula, df, weights=None):
    """The in-memory and the Dask objective of one model (no fit)."""
    from mixedmodels.backends.dask.lmm import reduce_lmm
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.design.response import numeric_response
    from mixedmodels.formula import parse_formula
    from mixedmodels.objective import LMMObjective

    design = mm.materialize(parse_formula(formula), df, weights=weights)
    mem = LMMObjective(design)
    prepared = prepare(
        formula,
        dd.from_pandas(df, npartitions=4),
        weights=weights,
        offset=None,
        contrasts=None,
        response=numeric_response,
    )
    return mem, reduce_lmm(prepared.frame, prepared, "auto").objective(True)


@pytest.mark.parametrize(
    ("formula", "weights"), [*((f, None) for f in FORMULAS), (FORMULAS[1], "w")]
)
def test_moment_start_equals_in_memory(sync, frame, formula, weights):
    from mixedmodels.fitting.lmm import MOMENT_START_MIN_ROWS
    from mixedmodels.fitting.moment_start import moment_theta

    assert len(frame) >= MOMENT_START_MIN_ROWS
    mem, red = _objectives(formula, frame, weights)
    assert mem.method == red.method == "blocked"
    want = moment_theta(mem)
    assert want is not None
    np.testing.assert_allclose(moment_theta(red), want, rtol=START_RTOL, atol=0.0)


@pytest.mark.parametrize(
    ("formula", "kw"),
    [*((f, {}) for f in FORMULAS), (FORMULAS[1], {"weights": "w", "REML": False})],
)
def test_threaded_fits_equal_in_memory(frame, formula, kw):
    with dask.config.set(scheduler="threads"):
        fit_both(formula, frame, **kw)
