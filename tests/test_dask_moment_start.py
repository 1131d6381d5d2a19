"""Large LMMs on Dask input start where the in-memory fit starts (fitting/moment_start).

From ``MOMENT_START_MIN_ROWS`` rows the gradient search starts from the moment estimate,
which reads the objective's cross-products only: a Dask fit (cross-products summed over
the partitions) takes the in-memory fit's start to rounding and then its optimizer path.
Oracle: the in-memory fit of the same rows. Tolerances: the start to 1e-12 relative;
the fits to the issue's (objective 1e-8 relative, estimates 1e-7), on Dask's threaded
scheduler and on a ``distributed.LocalCluster`` of two worker processes, with and
without prior weights. Before the start was shared, the Dask fit started from lme4's
theta and these fits differed by 1.6e-7 to 1.0e-6 in theta.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

from test_dask_backend import assert_same_fit  # noqa: E402  (after the importorskip)

#: Same start on both sides: the cross-products differ by the order of their sums.
START_RTOL = 1e-12
N_ROWS = 12_000

FORMULAS = [
    "y ~ x + (1 | a) + (1 | b)",  # crossed scalar terms
    "y ~ x + (x | a) + (1 | b)",  # vector-valued first term over a crossed one
    "y ~ x + (x || a) + (1 | b)",  # terms merged on one factor
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """12,000 rows: random intercepts and slopes on a text factor 'a' (120 levels),
    crossed intercepts on 'b' (25 levels), prior weights 'w'."""
    rng = np.random.default_rng(7)
    n_a, n_b = 120, 25
    a, b = rng.integers(0, n_a, N_ROWS), rng.integers(0, n_b, N_ROWS)
    x = rng.normal(size=N_ROWS)
    y = (
        1.0
        + 0.5 * x
        + rng.normal(0, 0.8, n_a)[a]
        + rng.normal(0, 0.4, n_a)[a] * x
        + rng.normal(0, 0.6, n_b)[b]
        + rng.normal(0, 1.0, N_ROWS)
    )
    return pd.DataFrame(
        {"y": y, "x": x, "a": [f"a{v:03d}" for v in a], "b": b, "w": rng.uniform(0.5, 2, N_ROWS)}
    )


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


def _fit_both(formula, df, client=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converged, non-singular fit on both sides
        m_mem = mm.lmer(formula, df, **kw)
        m = mm.lmer(formula, dd.from_pandas(df, npartitions=4), scheduler=client, **kw)
    # the moment start was taken, on both sides
    assert not np.array_equal(m_mem.opt.x0, m_mem.design.theta0())
    np.testing.assert_allclose(m.opt.x0, m_mem.opt.x0, rtol=START_RTOL, atol=0.0)
    assert_same_fit(m, m_mem)


@pytest.mark.parametrize(
    ("formula", "kw"),
    [*((f, {}) for f in FORMULAS), (FORMULAS[1], {"weights": "w", "REML": False})],
)
def test_threaded_fits_equal_in_memory(frame, formula, kw):
    with dask.config.set(scheduler="threads"):
        _fit_both(formula, frame, **kw)


@pytest.mark.parametrize(("formula", "kw"), [(FORMULAS[1], {}), (FORMULAS[2], {"weights": "w"})])
def test_local_cluster_fits_equal_in_memory(cluster_client, frame, formula, kw):
    _fit_both(formula, frame, client=cluster_client, **kw)
