"""The general Laplace engine against lme4's Laplace (glmer), the exact Gaussian likelihood
(lmer by ML) and finite differences of its own objective."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from laplace_oracles import GaussianLogVar, PoissonLog
from mixedmodels.design import materialize
from mixedmodels.formula import parse_formula
from mixedmodels.formula.components import parse_component
from mixedmodels.objective.laplace import LaplaceObjective
from mixedmodels.objective.laplace.parameters import make_layout

#: Relative agreement of two Laplace deviances computed by different code.
DEVIANCE_RTOL = 1e-9
#: Central-difference step and tolerance for gradient checks.
FD_STEP = 1e-5
GRAD_ATOL = 2e-5


def _design(formula, data, disp=None):
    """Design with an optional dispformula component."""
    spec = parse_formula(formula)
    if disp is not None:
        from dataclasses import replace
        spec = replace(spec, extra_components=(parse_component(disp, "disp", spec),))
    return materialize(spec, data, require_random=False)


def _fd_grad(f, x, h=FD_STEP):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(3)
    n, ng, nh = 400, 15, 8
    g = rng.integers(0, ng, n)
    h = rng.integers(0, nh, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.6, ng)[g] + rng.normal(0, 0.4, nh)[h] \
        + 0.3 * x * rng.normal(size=ng)[g]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x,
                         "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h]})


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 | g) + (1 | h)",
                                     "y ~ x + (x | g)"])
def test_poisson_laplace_equals_glmer(counts, formula):
    """Canonical link: lme4's Laplace deviance and ours are the same function."""
    design = _design(formula, counts)
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(PoissonLog(), design.y, comps, layout)
    ref = mm.GLMMObjective(design, mm.families.Poisson())
    rng = np.random.default_rng(0)
    for _ in range(3):
        theta = design.theta0() * rng.uniform(0.2, 1.2) + 0.1 * rng.normal(size=design.n_theta)
        beta = np.array([0.2, 0.4]) + 0.1 * rng.normal(size=2)
        x = layout.pack({"beta.cond": beta, "theta.cond": theta})
        assert obj(x) == pytest.approx(ref(np.r_[theta, beta]), rel=DEVIANCE_RTOL)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 | g) + (1 | h)",
                                     "y ~ x + (x | g)"])
def test_poisson_gradient_matches_finite_differences(counts, formula):
    design = _design(formula, counts)
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(PoissonLog(), design.y, comps, layout)
    x = layout.pack({"beta.cond": [0.25, 0.45],
                     "theta.cond": design.theta0() * 0.6 + 0.05})
    f, g = obj.value_and_gradient(x)
    assert f == pytest.approx(obj(x), rel=1e-12)
    np.testing.assert_allclose(g, _fd_grad(obj, x), atol=GRAD_ATOL, rtol=1e-5)


def test_gaussian_laplace_is_the_exact_ml_deviance():
    """For a Gaussian response the Laplace approximation is exact: -2 log L of lmer(ML)."""
    df = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", df, REML=False)
    design = _design("Reaction ~ Days + (Days | Subject)", df, disp="~1")
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(GaussianLogVar(), design.y, comps, layout)
    theta_abs = m.theta * m.sigma        # glmmTMB's Lambda is absolute
    x = layout.pack({"beta.cond": m.beta, "beta.disp": [2 * np.log(m.sigma)],
                     "theta.cond": theta_abs})
    assert obj(x) == pytest.approx(m.objective, rel=DEVIANCE_RTOL)
    _f, g = obj.value_and_gradient(x)
    np.testing.assert_allclose(g, 0.0, atol=1e-3)     # lmer's optimum
    np.testing.assert_allclose(g, _fd_grad(obj, x), atol=GRAD_ATOL, rtol=1e-5)


def test_gradient_with_random_effects_in_two_channels():
    """Random effects in the mean and in the log-variance (block-diagonal H, 2 channels,
    indefinite curvature away from the mode)."""
    rng = np.random.default_rng(5)
    n, ng = 300, 12
    g = rng.integers(0, ng, n)
    x = rng.normal(size=n)
    y = 1 + x + rng.normal(0, 0.7, ng)[g] + np.exp(0.5 * rng.normal(0, 0.5, ng)[g]) \
        * rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"s{i}" for i in g]})
    design = _design("y ~ x + (1 | g)", df, disp="~ x + (1 | g)")
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(GaussianLogVar(), design.y, comps, layout)
    assert obj.structure.block_diagonal and obj.structure.n_channels == 2
    xv = layout.pack({"beta.cond": [1.0, 0.9], "beta.disp": [0.1, -0.1],
                      "theta.cond": [0.6], "theta.disp": [0.4]})
    f, gr = obj.value_and_gradient(xv)
    assert np.isfinite(f)
    np.testing.assert_allclose(gr, _fd_grad(obj, xv), atol=GRAD_ATOL, rtol=1e-5)


def test_no_random_effects_is_the_plain_likelihood(counts):
    design = _design("y ~ x", counts)
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(PoissonLog(), design.y, comps, layout)
    x = np.array([0.1, 0.3])
    eta = design.X @ x
    from scipy import stats
    expected = -2 * stats.poisson.logpmf(design.y, np.exp(eta)).sum()
    assert obj(x) == pytest.approx(expected, rel=1e-12)
    _f, g = obj.value_and_gradient(x)
    np.testing.assert_allclose(g, _fd_grad(obj, x), atol=GRAD_ATOL)


def test_reml_equals_lmer_reml_criterion():
    """glmmTMB's REML (fixed effects integrated with a flat prior) is lme4's criterion."""
    df = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
    design = _design("Reaction ~ Days + (Days | Subject)", df, disp="~1")
    comps = design.components
    layout = make_layout(comps, reml=True)
    obj = LaplaceObjective(GaussianLogVar(), design.y, comps, layout, reml=True)
    x = layout.pack({"beta.disp": [2 * np.log(m.sigma)], "theta.cond": m.theta * m.sigma})
    sol, _, _ = obj.solve(x)
    assert sol.objective == pytest.approx(m.objective, rel=DEVIANCE_RTOL)
    np.testing.assert_allclose(sol.inner_beta, m.beta, rtol=1e-8)
    _f, g = obj.value_and_gradient(x)
    np.testing.assert_allclose(g, 0.0, atol=1e-3)
    np.testing.assert_allclose(g, _fd_grad(obj, x), atol=GRAD_ATOL, rtol=1e-5)


def _assert_same_kernel(blocked, dense, S, prods, rng):
    """Log-determinant, solves, selected inverse and term inverses of two kernels."""
    assert dense.factor(prods) and blocked.factor(prods)
    assert blocked.logdet == pytest.approx(dense.logdet, rel=1e-12)
    v = rng.normal(size=S.q)
    np.testing.assert_allclose(blocked.solve(v), dense.solve(v), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(blocked.slot_inverse(), dense.slot_inverse(), atol=1e-12)
    for ts in S.terms:
        np.testing.assert_allclose(blocked.term_inverse(ts), dense.term_inverse(ts),
                                   atol=1e-12)


@pytest.mark.parametrize("mode", ["dense", "pairs", "sparse"])
def test_blocked_hessian_vector_first_block_equals_dense(counts, mode, monkeypatch):
    """Block 1 a vector-valued term ((x | g), the factor with the most levels) crossed with
    two others: the blocked kernel equals the dense one with each way of forming
    ``H12' C`` (a dense product, the precomputed pair products, scipy's sparse product)."""
    from mixedmodels.objective.laplace import blocked as blk
    from mixedmodels.objective.laplace.hessian import DenseHessian

    if mode == "dense":
        monkeypatch.setattr(blk, "DENSE_FLOP_RATIO", 1e9)
    else:
        monkeypatch.setattr(blk, "DENSE_H12_MAX", 0)
    if mode == "sparse":
        monkeypatch.setattr(blk, "PAIR_PRODUCTS_MAX", 0)
    rng = np.random.default_rng(7)
    data = counts.assign(k=[f"k{i}" for i in rng.integers(0, 4, len(counts))])
    design = _design("y ~ x + (x | g) + (1 | h) + (1 | k)", data)
    comps = design.components
    obj = LaplaceObjective(PoissonLog(), design.y, comps, make_layout(comps))
    S = obj.structure
    first = blk.first_block(S)
    assert [ts.term.p for ts in first] == [2]
    lams = S.lambdas(design.theta0() * 0.7 + 0.1)
    a = S.slot_values(lams)
    W = rng.uniform(0.2, 3.0, (S.n, 1, 1))
    prods = S.slot_products(a, W)
    dense, blocked = DenseHessian(S), blk.BlockedHessian(S, first)
    assert blocked._plan.dense == (mode == "dense")
    assert (blocked._plan.keys is not None) == (mode == "pairs")
    _assert_same_kernel(blocked, dense, S, prods, rng)


def test_blocked_hessian_equals_dense(counts):
    """Crossed terms with an observation-level effect: the blocked kernel's log-determinant,
    solves, selected inverse and gradient equal the dense kernel's."""
    from mixedmodels.objective.laplace.blocked import BlockedHessian, first_block
    from mixedmodels.objective.laplace.hessian import DenseHessian

    data = counts.assign(obs=[f"o{i}" for i in range(len(counts))])
    design = _design("y ~ x + (1 | g) + (x | h) + (1 | obs)", data)
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(PoissonLog(), design.y, comps, layout)
    S = obj.structure
    x = layout.pack({"beta.cond": [0.2, 0.4], "theta.cond": design.theta0() * 0.5 + 0.05})
    lams = S.lambdas(obj.theta(x))
    a = S.slot_values(lams)
    rng = np.random.default_rng(1)
    W = rng.uniform(0.2, 3.0, (S.n, 1, 1))
    prods = S.slot_products(a, W)
    dense, blocked = DenseHessian(S), BlockedHessian(S, first_block(S))
    _assert_same_kernel(blocked, dense, S, prods, rng)
    _, g = obj.value_and_gradient(x)
    assert isinstance(obj.hessian, BlockedHessian)
    np.testing.assert_allclose(g, _fd_grad(obj, x), atol=GRAD_ATOL, rtol=1e-5)


def test_marginal_fixed_hessian_is_exact_for_a_gaussian_mean():
    """With a Gaussian response and fixed variances the Laplace objective is quadratic in
    the fixed effects and log det H does not depend on them, so the Gauss-Newton Hessian
    with the modes following the parameters is F's exact Hessian in beta (checked against
    central differences of the exact gradient); the conditional Hessian is larger."""
    df = mm.datasets.load("sleepstudy")
    design = _design("Reaction ~ Days + (Days | Subject)", df, disp="~1")
    comps = design.components
    layout = make_layout(comps)
    obj = LaplaceObjective(GaussianLogVar(), design.y, comps, layout)
    x = layout.pack({"beta.cond": [240.0, 9.0], "beta.disp": [np.log(650.0)],
                     "theta.cond": [24.0, 0.1, 5.9]})
    sl = layout.slice("beta.cond")
    H = obj.marginal_fixed_hessian(x)[sl, sl]
    fd = np.column_stack([_fd_grad(lambda z, j=j: obj.value_and_gradient(z)[1][sl][j], x)
                          for j in range(2)])[sl]
    np.testing.assert_allclose(H, 0.5 * (fd + fd.T), rtol=1e-6)
    cond = obj.fixed_hessian(x)[sl, sl]
    assert np.all(np.linalg.eigvalsh(cond - H) > 0)


def test_carry_reference_across_a_sign_flip():
    """The canonical form flips a term's Lambda columns (same covariance): the reference
    carried across keeps b = Lambda u, so the solve at the flipped point starts at its
    modes (one Newton check, no steps) and finds the same objective and random effects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb("count ~ mined + (1 | site)", mm.datasets.load("Salamanders"),
                       family="poisson", ziformula="~mined")
    obj = m.objective_function
    x = np.array(m.x, dtype=float)
    ts = obj.structure.terms[0]
    flipped = x.copy()
    flipped[obj.theta_index(ts)] *= -1.0
    obj.solve(x)
    obj.carry_reference(x, flipped)
    sol, _, _ = obj.solve(flipped)
    assert sol.n_iter == 1
    assert sol.objective == pytest.approx(m.objective, abs=1e-9)
    np.testing.assert_allclose(sol.b[0], m.solution.b[0], atol=1e-8)
    # without the carried reference the prediction across the flip is far off
    obj.solve(x)
    far, _, _ = obj.solve(flipped)
    assert far.n_iter > 1
    assert far.objective == pytest.approx(m.objective, abs=1e-9)
