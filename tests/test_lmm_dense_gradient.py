"""The small-LMM optimizer path: the dense system's exact gradient, the projected BFGS that
uses it, and the convergence check from analytic derivatives.

Oracles: central finite differences of the objective (gradient), BOBYQA on the same
objective (optimum), and the finite-difference convergence check (derivatives, verdict).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import materialize
from mixedmodels.diagnostics import check_convergence, check_convergence_gradient
from mixedmodels.formula import parse_formula
from mixedmodels.objective import LMMObjective
from mixedmodels.optim import minimize, minimize_bounded_bfgs

#: Central-difference step (relative to max(|theta|, 1)) of the gradient oracle.
FD_H = 1e-5
#: Gradient agreement with central differences, relative to max(1, max |gradient|):
#: truncation ~h^2 f''' and rounding ~1e-13 |f| / h are both below 1e-6 for these models.
GRAD_RTOL = 1e-6
#: Objective of the projected BFGS no worse than BOBYQA's by more than this (deviance units).
OBJ_ATOL = 1e-6
#: Relative agreement of the optima's theta (both converged to ~1e-6 in the objective).
THETA_RTOL = 2e-3
#: Hessian from forward differences of the exact gradient against lme4-style differences
#: of the objective (both O(h) at FD_STEP = 1e-4): relative to the largest entry.
HESS_RTOL = 1e-2


def _long(n_subj=12, n_time=4, seed=3):
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_subj), n_time)
    time = np.tile(np.arange(n_time), n_subj)
    x = rng.normal(size=subject.size)
    y = (1.0 + 0.5 * x + rng.normal(size=n_subj)[subject] + 0.3 * time
         + rng.normal(scale=0.7, size=subject.size))
    return pd.DataFrame({"y": y, "x": x, "subject": subject.astype(str), "time": time,
                         "w": rng.uniform(0.5, 2.0, subject.size),
                         "off": rng.normal(scale=0.2, size=subject.size)})


CASES = [
    ("scalar", "dyestuff", "Yield ~ 1 + (1 | Batch)", {}),
    ("vector", "sleepstudy", "Reaction ~ Days + (Days | Subject)", {}),
    ("uncorrelated", "sleepstudy", "Reaction ~ Days + (Days || Subject)", {}),
    ("crossed", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}),
    ("nested", "pastes", "strength ~ 1 + (1 | batch/cask)", {}),
    ("factor slope", "orthodont", "distance ~ age + (0 + Sex | Subject)", {}),
    ("weights and offset", None, "y ~ x + (1 + x | subject)", {"weights": "w", "offset": "off"}),
    ("structured (lambda_jacobian)", None,
     "y ~ x + (1 | subject) + ar1(0 + factor(time) | subject)", {}),
]


def _objective(data_name, formula, kw, reml, sigma=None):
    data = _long() if data_name is None else mm.datasets.load(data_name)
    design = materialize(parse_formula(formula), data, **kw)
    obj = LMMObjective(design, reml=reml, sigma=sigma)
    assert obj.method == "dense" and obj.has_gradient
    return obj


def _fd_gradient(obj, theta):
    h = FD_H * np.maximum(np.abs(theta), 1.0)
    return np.array([(obj(theta + hi * e) - obj(theta - hi * e)) / (2 * hi)
                     for hi, e in zip(h, np.eye(theta.size), strict=True)])


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_dense_gradient_matches_finite_differences(case, reml):
    _, data_name, formula, kw = case
    obj = _objective(data_name, formula, kw, reml)
    rng = np.random.default_rng(7)
    theta = obj.theta0 + rng.uniform(0.1, 0.6, obj.theta0.size)
    f, g = obj.value_and_gradient(theta)
    assert f == obj(theta)
    fd = _fd_gradient(obj, theta)
    np.testing.assert_allclose(g, fd, rtol=0, atol=GRAD_RTOL * max(1.0, np.max(np.abs(fd))))


def test_dense_gradient_with_known_sigma():
    obj = _objective("sleepstudy", "Reaction ~ Days + (Days | Subject)", {}, True, sigma=25.0)
    theta = np.array([0.8, 0.1, 0.3])
    _, g = obj.value_and_gradient(theta)
    fd = _fd_gradient(obj, theta)
    np.testing.assert_allclose(g, fd, rtol=0, atol=GRAD_RTOL * max(1.0, np.max(np.abs(fd))))


def test_dense_gradient_is_exact_at_a_zero_variance():
    # the criterion is even in a scalar term's theta: the gradient is 0 at theta_k = 0,
    # computed without Lambda^{-1}; the other parameter's gradient still matches
    obj = _objective("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}, True)
    theta = np.array([0.0, 1.3])
    _, g = obj.value_and_gradient(theta)
    assert g[0] == 0.0
    step = np.array([0.0, FD_H * 1.3])
    fd1 = (obj(theta + step) - obj(theta - step)) / (2 * step[1])
    assert g[1] == pytest.approx(fd1, abs=GRAD_RTOL * max(1.0, abs(fd1)))


MODELS = [
    ("dyestuff", "Yield ~ 1 + (1 | Batch)", True),
    ("dyestuff2", "Yield ~ 1 + (1 | Batch)", True),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", True),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    ("pastes", "strength ~ 1 + (1 | batch/cask)", True),
    ("orthodont", "distance ~ age + (age | Subject)", True),
    ("orthodont", "distance ~ age + (0 + Sex | Subject)", True),
]
#: Each subject of Orthodont has one sex: the correlation of the Sex-valued slope is not
#: identified (a flat direction), so only the objective is compared there.
UNIDENTIFIED = {"distance ~ age + (0 + Sex | Subject)"}


@pytest.mark.parametrize("model", MODELS, ids=[f"{m[0]}:{m[1]}:{m[2]}" for m in MODELS])
def test_projected_bfgs_reaches_bobyqas_optimum_in_fewer_evaluations(model):
    data_name, formula, reml = model
    obj = _objective(data_name, formula, {}, reml)
    opt, _ = minimize_bounded_bfgs(obj.value_and_gradient, obj.theta0, obj.lower)
    ref = minimize(obj, obj.theta0, obj.lower, optimizer="bobyqa")
    assert opt.converged
    assert opt.fval <= ref.fval + OBJ_ATOL
    if formula not in UNIDENTIFIED:
        np.testing.assert_allclose(opt.x, ref.x, rtol=THETA_RTOL, atol=1e-3)
    assert opt.n_evals < ref.n_evals
    assert np.all(opt.x >= obj.lower)


def test_singular_fit_lands_on_the_bound():
    # Dyestuff2: the batch variance is zero; the search ends within rounding of 0 and
    # lmer's snap to the boundary puts it there exactly
    obj = _objective("dyestuff2", "Yield ~ 1 + (1 | Batch)", {}, True)
    opt, _ = minimize_bounded_bfgs(obj.value_and_gradient, obj.theta0, obj.lower)
    assert opt.converged and opt.x[0] < 1e-8
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("dyestuff2"))
    assert m.theta[0] == 0.0
    assert m.opt.optimizer == "gradient:projected BFGS"


def test_bounded_bfgs_on_a_quadratic_with_an_active_bound():
    # minimum of (x - c)' A (x - c) over x0 >= 0, x1 free, with c0 < 0: x0 = 0 and
    # x1 = c1 - A10 (0 - c0) / A11 (the conditional minimum)
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    c = np.array([-0.5, 0.4])

    def fg(x):
        d = x - c
        return float(d @ A @ d), 2.0 * A @ d

    opt, g = minimize_bounded_bfgs(fg, np.array([1.0, 1.0]), np.array([0.0, -np.inf]))
    assert opt.converged
    assert opt.x[0] == 0.0
    assert opt.x[1] == pytest.approx(c[1] + A[1, 0] * c[0] / A[1, 1], abs=1e-6)
    assert g[0] > 0


def test_lmer_falls_back_to_bobyqa_when_the_gradient_path_fails(monkeypatch):
    import mixedmodels.fitting.lmm as lmm_fit

    def stuck(fg, x0, lower, **kw):
        # (kw: the moment start asks for the initial Hessian.) No iteration, from a point
        # off the start: sleepstudy's REML moment start is its optimum, where one
        # iteration would converge and BOBYQA could not do better
        opt, g = minimize_bounded_bfgs(fg, 1.5 * x0, lower, maxiter=0, **kw)
        return opt, g

    monkeypatch.setattr(lmm_fit, "minimize_bounded_bfgs", stuck)
    sleep = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert m.opt.optimizer.startswith("nlopt:LN_BOBYQA (after gradient:projected BFGS")
    ref = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, optimizer="bobyqa")
    assert m.objective == pytest.approx(ref.objective, abs=OBJ_ATOL)


def test_optimizer_bobyqa_stays_reachable():
    sleep = mm.datasets.load("sleepstudy")
    b = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, optimizer="bobyqa")
    a = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert b.opt.optimizer == "nlopt:LN_BOBYQA"
    assert a.opt.optimizer == "gradient:projected BFGS"
    assert a.objective <= b.objective + OBJ_ATOL
    assert a.opt.n_evals < b.opt.n_evals


@pytest.mark.parametrize("model", [MODELS[2], MODELS[7], MODELS[5]],
                         ids=["sleepstudy", "orthodont", "penicillin"])
def test_gradient_convergence_check_matches_the_finite_difference_one(model):
    data_name, formula, reml = model
    obj = _objective(data_name, formula, {}, reml)
    ref = minimize(obj, obj.theta0, obj.lower, optimizer="bobyqa")
    x = ref.x
    f, g = obj.value_and_gradient(x)
    a = check_convergence_gradient(obj.value_and_gradient, x, obj.lower, g, grad_tol=0.0)
    b = check_convergence(obj, x, obj.lower, f, grad_tol=0.0)
    assert a.converged == b.converged
    np.testing.assert_array_equal(a.active, b.active)
    # the finite-difference gradient at FD_STEP carries ~1e-4 of truncation
    np.testing.assert_allclose(a.gradient, b.gradient, atol=1e-3)
    scale = np.max(np.abs(b.hessian))
    np.testing.assert_allclose(a.hessian, b.hessian, rtol=0, atol=HESS_RTOL * scale)
    assert a.n_evals == x.size       # gradient calls, against ~(k^2 + 3k) / 2 + k evaluations
    assert b.n_evals > a.n_evals


def test_gradient_check_flags_a_saddle_on_the_bound():
    # Penicillin with the plate variance held at 0 is a saddle: zero gradient there (the
    # criterion is even in theta_1), negative curvature into the region
    obj = _objective("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = minimize(lambda t: obj(np.array([0.0, t[0]])), np.array([1.0]),
                        np.array([0.0]), optimizer="bobyqa")
    x = np.array([0.0, best.x[0]])
    f, g = obj.value_and_gradient(x)
    a = check_convergence_gradient(obj.value_and_gradient, x, obj.lower, g)
    b = check_convergence(obj, x, obj.lower, f)
    assert not a.converged and not b.converged
    np.testing.assert_array_equal(a.saddle, b.saddle)
    assert a.saddle[0]
