"""The exact gradients of glmer's criteria on Dask input (backends/dask/glmm_gradient.py).

Oracle: the in-memory gradients (:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient`
and :class:`~mixedmodels.objective.glmm_gradient.Stage0Gradient`, themselves checked against
finite differences in tests/test_glmm_gradient*.py) at the same point, and the in-memory fit
with the same (default) optimizer. The Dask gradients come from the summed cross-products and
three passes (the selected inverse of ``M`` on the pairs of levels the rows use): crossed
factors, three factors (pairs of rest levels), a vector-valued first block over a crossed
rest, the pattern form of ``L21`` (forced), and a non-canonical link (Laplace weights that
are not the observed ones: a second factorization). The quadrature gradient
(:class:`~mixedmodels.objective.agq_gradient.AGQGradient` in memory, two passes of level
sums on Dask) likewise, at a point and through the fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels import DroppedRowsWarning

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")

#: Same-point criteria, Dask vs in memory (sums over partitions in another order).
EVAL_RTOL = 1e-11
#: Same-point gradients, relative to the gradient's largest entry (the brief's 1e-10; the
#: two take the same PIRLS path, so they differ by rounding: measured <= 4e-14).
GRAD_RTOL = 1e-10
#: Fits with the default optimizer on both sides (the issue's tolerances).
OBJ_RTOL = 1e-8
EST_TOL = 1e-7


def _close(a, b, tol):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)), initial=0.0)
    assert err <= tol, err


def _sim(n=700, seed=5):
    """Counts and 0/1 responses on three crossed factors (30 x 8 x 5 levels)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 30, n), rng.integers(0, 8, n), rng.integers(0, 5, n)
    x = rng.normal(size=n)
    eta = (-0.3 + 0.4 * x + rng.normal(0, 0.6, 30)[a] + rng.normal(0, 0.3, 30)[a] * x
           + rng.normal(0, 0.4, 8)[b] + rng.normal(0, 0.3, 5)[c])
    return pd.DataFrame({"x": x, "a": [f"a{v}" for v in a], "b": b, "c": c,
                         "cnt": rng.poisson(np.exp(eta)),
                         "yb": rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)})


def _objectives(formula, df, family, nagq=1):
    """The Dask and the in-memory objective of one model (no fit)."""
    from mixedmodels.backends.dask.glmm import DaskGLMMObjective
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.design.lhs import make_response
    from mixedmodels.fitting.glmm import glmm_design
    from mixedmodels.objective.glmm import GLMMObjective

    prepared = prepare(formula, dd.from_pandas(df, npartitions=3), weights=None,
                       offset=None, contrasts=None, response=make_response(family))
    obj = DaskGLMMObjective(prepared.frame, prepared, family, nagq)
    obj_mem = GLMMObjective(glmm_design(formula, df, family), family, nagq)
    return obj, obj_mem


def _grad_close(g, g_mem):
    scale = max(1.0, float(np.max(np.abs(g_mem))))
    assert np.max(np.abs(g - g_mem)) <= GRAD_RTOL * scale, np.max(np.abs(g - g_mem)) / scale


@pytest.mark.parametrize("formula, family, pattern", [
    # three factors, W_L (Fisher's) not the observed weights: rest-rest pairs, two factors
    ("yb ~ x + (1 | a) + (1 | b) + (1 | c)", mm.families.Binomial(link="probit"), False),
    # a vector-valued first block (terms merged on one factor, not first in the formula)
    # over two crossed factors (dense L21)
    ("cnt ~ x + (1 | b) + (x || a) + (1 | c)", mm.families.Poisson(), False),
    # L21 on its pattern (the large-rest form of PIRLS's system, forced here)
    ("cnt ~ x + (1 | a) + (1 | b) + (1 | c)", mm.families.Poisson(), True),
])
def test_crossed_gradients_equal_in_memory(sync, monkeypatch, formula, family, pattern):
    """Laplace gradient in (theta, beta) and nAGQ = 0 gradient in theta, Dask vs in memory,
    at a point off the optimum; both objectives pick the Dask gradient's path."""
    from mixedmodels.backends.dask.glmm_gradient import DaskLaplaceGradient, DaskStage0Gradient
    from mixedmodels.fitting.glmm_gradient import reset_pirls
    from mixedmodels.objective import pirls_system
    from mixedmodels.objective.glmm_gradient import LaplaceGradient, Stage0Gradient

    if pattern:
        monkeypatch.setattr(pirls_system, "DENSE_L21_MAX_ENTRIES", 0)
    obj, obj_mem = _objectives(formula, _sim(), family)
    theta = obj.design.theta0() * 0.8 + 0.1
    f0, g0 = DaskStage0Gradient(obj)(theta)
    f0_mem, g0_mem = Stage0Gradient(obj_mem)(theta)
    inner = obj.pirls.psystem
    assert getattr(inner, "inner", inner).mode == ("pattern" if pattern else "dense")
    assert obj.stage0_gradient_factory() is DaskStage0Gradient
    assert obj.laplace_gradient_factory() is DaskLaplaceGradient
    assert abs(f0 / f0_mem - 1.0) <= EVAL_RTOL
    _grad_close(g0, g0_mem)
    assert np.max(np.abs(g0_mem)) > 1.0           # a point where the gradient is not ~0
    x = np.concatenate([theta, obj_mem.solve0(theta).beta + 0.05])
    # each PIRLS solve from lme4's start on both sides: started from the previous modes,
    # the two sides' modes sit up to PIRLS's tolerance (1e-10) apart, which moves a
    # gradient by ~1e-8; from one start they take the same path, to rounding
    reset_pirls(obj)
    reset_pirls(obj_mem)
    f, g = DaskLaplaceGradient(obj)(x)
    f_mem, g_mem = LaplaceGradient(obj_mem)(x)
    assert abs(f / f_mem - 1.0) <= EVAL_RTOL
    _grad_close(g, g_mem)


@pytest.mark.parametrize("formula, family, nagq", [
    ("yb ~ x + (1 | a)", mm.families.Binomial(), 9),
    # a non-canonical link: Fisher's Laplace weights (the curvature's own factor)
    ("yb ~ x + (1 | a)", mm.families.Binomial(link="probit"), 5),
    ("cnt ~ x + (1 | b)", mm.families.Poisson(), 25),
])
def test_agq_gradient_equals_in_memory(sync, formula, family, nagq):
    """The quadrature deviance and its gradient in (theta, beta), Dask (two passes after
    PIRLS) vs in memory, at a point off the optimum (measured: <= 8e-16)."""
    from mixedmodels.backends.dask.agq_gradient import DaskAGQGradient
    from mixedmodels.objective.agq_gradient import AGQGradient

    obj, obj_mem = _objectives(formula, _sim(), family, nagq)
    assert obj.laplace_gradient_factory() is DaskAGQGradient
    assert obj_mem.laplace_gradient_factory() is AGQGradient
    theta = obj.design.theta0() * 0.8 + 0.1
    x = np.concatenate([theta, obj_mem.solve0(theta).beta + 0.05])
    f, g = DaskAGQGradient(obj)(x)
    f_mem, g_mem = AGQGradient(obj_mem)(x)
    assert abs(f / f_mem - 1.0) <= EVAL_RTOL
    assert abs(f / obj(x) - 1.0) <= EVAL_RTOL            # the Dask objective's own deviance
    _grad_close(g, g_mem)
    assert np.max(np.abs(g_mem)) > 1.0


def test_vector_first_block_over_sparse_rest_has_no_dask_gradient(sync, monkeypatch):
    """What is not covered: a vector-valued first block whose crossed rest is sparse takes
    PIRLS's general blocked factorization; the Dask objective then offers no gradient
    (BOBYQA) while the in-memory one does."""
    from mixedmodels.objective import pirls_system

    monkeypatch.setattr(pirls_system, "DENSE_L21_MAX_ENTRIES", 0)
    obj, obj_mem = _objectives("cnt ~ x + (x | a) + (1 | b)", _sim(), mm.families.Poisson())
    obj.stage0(obj.design.theta0())                # PIRLS picks its system's form
    assert obj.pirls.psystem.mode == "blocked"
    assert obj.stage0_gradient_factory() is None and obj.laplace_gradient_factory() is None
    assert obj_mem.laplace_gradient_factory() is not None


def _fits(formula, df, npartitions=2, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        m_mem = mm.glmer(formula, df, **kw)
        m = mm.glmer(formula, dd.from_pandas(df, npartitions=npartitions), **kw)
    return m, m_mem


def _assert_same_fit(m, m_mem):
    assert abs(m.objective / m_mem.objective - 1.0) <= OBJ_RTOL
    _close(m.theta, m_mem.theta, EST_TOL)
    _close(m.beta, m_mem.beta, EST_TOL)
    # the same stages with the same optimizers (quadrature's too: its exact gradient on
    # both sides, backends/dask/agq_gradient.py)
    assert m.opt_stage0.optimizer == m_mem.opt_stage0.optimizer
    assert m.opt.optimizer == m_mem.opt.optimizer


@pytest.mark.parametrize("formula, family, nagq", [
    # the cases that differed by 2e-7 and 3e-5 with BOBYQA in the Dask nAGQ = 0 stage
    ("cnt ~ x + (x | a)", "poisson", 1),
    ("yb ~ x + (1 | a)", "binomial", 9),
])
def test_default_optimizer_fit_equals_in_memory(sync, formula, family, nagq):
    """optimizer='auto' on both sides: the nAGQ = 0 stage runs on its exact gradient on
    Dask too, so the fits take the same path and agree to the issue's tolerances."""
    m, m_mem = _fits(formula, _sim(400), family=family, nAGQ=nagq)
    assert m.opt_stage0.optimizer.startswith("gradient")
    _assert_same_fit(m, m_mem)


@pytest.mark.slow
@pytest.mark.parametrize("formula, family, nagq", [
    ("yb ~ x + (1 | a)", "binomial", 1),
    ("cnt ~ x + (1 | a)", "poisson", 1),
    ("cnt ~ x + (x | a)", "poisson", 1),
    ("yb ~ x + (x | a)", "binomial", 1),
    ("yb ~ x + (1 | a)", "binomial", 9),
    ("cnt ~ x + (1 | a)", "poisson", 9),
    ("cnt ~ x + (1 | a) + (1 | b)", "poisson", 1),
])
def test_local_cluster_default_optimizer_fits(cluster_client, formula, family, nagq):
    """Two worker processes, the default optimizer on both sides: (1 | g), (x | g), nAGQ = 9
    and crossed factors, binomial and Poisson (100-400 passes each: slow on this machine)."""
    m, m_mem = _fits(formula, _sim(400), family=family, nAGQ=nagq)
    assert m.opt_stage0.optimizer.startswith("gradient")
    _assert_same_fit(m, m_mem)
