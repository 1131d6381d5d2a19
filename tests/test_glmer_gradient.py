"""The exact gradient of glmer's Laplace deviance and nAGQ = 0 criterion, checked against
central finite differences of the deviance itself, and the gradient-based fit against the
derivative-free one (same optimum, fewer evaluations, BOBYQA when the gradient fails)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.families import NegativeBinomial, make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.glmm import GLMMObjective
from mixedmodels.objective.glmm_gradient import (
    LaplaceGradient,
    Stage0Gradient,
    gradient_supported,
    stage0_supported,
)

#: Finite-difference step (relative to max(1, |x|)): truncation ~h^2 = 1e-8 of the
#: curvature, rounding ~(deviance noise 1e-10) / h = 1e-6.
FD_STEP = 1e-4
#: Largest gradient error allowed, relative to max(1, max |finite difference|): the
#: finite differences themselves carry ~1e-6 (PIRLS stops within 1e-10 of the modes; the
#: profiled Gamma dispersion within its root-finding tolerance). A wrong term (the third
#: derivative of the log-determinant left out, a sign) shows as errors of 1e-2 to 1.
GRAD_RTOL = 2e-5
#: The gradient fit reaches the derivative-free optimum or a lower one, within this.
OBJECTIVE_SLACK = 1e-6

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
VERBAGG = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


def _simulated(seed: int = 3, n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 25, n)
    h = rng.integers(0, 7, n)
    x = rng.standard_normal(n)
    b0, b1, c0 = rng.standard_normal(25), rng.standard_normal(25), rng.standard_normal(7)
    eta = -0.3 + 0.5 * x + 0.7 * b0[g] + 0.4 * b1[g] * x + 0.5 * c0[h]
    return pd.DataFrame({
        "y": rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))),
        "k": rng.binomial(8, 1.0 / (1.0 + np.exp(-eta))),
        "cnt": rng.poisson(np.exp(0.5 + 0.3 * x + 0.5 * b0[g])),
        "pos": rng.gamma(2.0, np.exp(0.2 + 0.3 * x + 0.4 * b0[g]) / 2.0),
        "wt": rng.uniform(0.5, 2.0, n),
        "x": x, "g": pd.Categorical(g), "h": pd.Categorical(h),
    })


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """The objective called directly, outside a fit's thread limit: small systems, one
    BLAS thread (as every fit uses for them)."""
    with blas_threads():
        yield


@pytest.fixture(scope="module")
def sim():
    return _simulated()


def _verbagg_subset():
    v = mm.datasets.load("VerbAgg")
    items = v["item"].astype(str)
    ids = v["id"].astype(str)
    keep = items.isin(sorted(items.unique())[:10]) & ids.isin(sorted(ids.unique())[:120])
    return v[keep.to_numpy()].reset_index(drop=True)


def _objective(formula, data, family, link=None, nagq=1, **kw):
    fam = family if not isinstance(family, str) else make_family(family, link)
    design = _quiet(glmm_design, formula, data, fam, **kw)
    return GLMMObjective(design, fam, nagq)


def _fd(fun, x):
    out = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = FD_STEP * max(1.0, abs(x[j]))
        out[j] = (fun(x + e) - fun(x - e)) / (2.0 * e[j])
    return out


def _rel_error(g, fd):
    return float(np.max(np.abs(g - fd)) / max(1.0, np.max(np.abs(fd))))


def _laplace_point(obj, seed=1):
    """The nAGQ = 0 estimates, perturbed: a point away from the optimum."""
    s = obj.solve0(obj.design.theta0())
    x = obj.join(s.theta, s.beta)
    return x + 0.1 * np.random.default_rng(seed).standard_normal(x.size)


LAPLACE_CASES = {
    "cbpp logit (cbind)": (CBPP, "cbpp", "binomial", None, {}),
    "cbpp probit (Fisher weights in log|M|)": (CBPP, "cbpp", "binomial", "probit", {}),
    "cbpp cloglog": (CBPP, "cbpp", "binomial", "cloglog", {}),
    "grouseticks Poisson, three terms": (GROUSE, "grouseticks", "poisson", None, {}),
    "grouseticks Poisson sqrt": ("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", "grouseticks",
                                 "poisson", "sqrt", {}),
    "VerbAgg subset, crossed": (VERBAGG, "verbagg", "binomial", None, {}),
    "Gamma log, profiled dispersion": ("y ~ x + (1 | g)", "gammasim", "Gamma", "log", {}),
    "Gamma inverse": ("y ~ x + (1 | g)", "gammasim", "Gamma", None, {}),
    "inverse Gaussian log": ("y ~ x + (1 | g)", "gammasim", "inverse_gaussian", "log", {}),
    "probit, vector term + crossed": ("y ~ x + (x | g) + (1 | h)", "sim", "binomial",
                                      "probit", {}),
    "binomial proportions, weights": ("I(k / 8) ~ x + (1 | g) + (1 | h)", "sim", "binomial",
                                      None, {"weights": np.full(500, 8.0)}),
    "Poisson, prior weights, diag term": ("cnt ~ x + (x || g)", "sim", "poisson", None,
                                          {"weights": "wt"}),
    "Gamma log, random slope": ("pos ~ x + (x | g)", "sim", "Gamma", "log", {}),
}


def _data(name, sim):
    if name == "sim":
        return sim
    if name == "verbagg":
        return _verbagg_subset()
    return mm.datasets.load(name)


@pytest.mark.parametrize("case", list(LAPLACE_CASES))
def test_laplace_gradient_matches_finite_differences(case, sim):
    formula, data, family, link, kw = LAPLACE_CASES[case]
    obj = _objective(formula, _data(data, sim), family, link, **kw)
    assert gradient_supported(obj)
    x = _laplace_point(obj)
    f, g = LaplaceGradient(obj)(x)
    assert f == pytest.approx(obj(x), rel=1e-12)
    assert _rel_error(g, _fd(obj, x)) < GRAD_RTOL


def test_negative_binomial_fixed_shape_gradient():
    obj = _objective("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", mm.datasets.load("grouseticks"),
                     NegativeBinomial(2.0))
    x = _laplace_point(obj)
    _, g = LaplaceGradient(obj)(x)
    assert _rel_error(g, _fd(obj, x)) < GRAD_RTOL


STAGE0_CASES = ["cbpp logit (cbind)", "cbpp probit (Fisher weights in log|M|)",
                "grouseticks Poisson, three terms", "VerbAgg subset, crossed",
                "Gamma log, profiled dispersion", "probit, vector term + crossed"]


@pytest.mark.parametrize("case", STAGE0_CASES)
def test_stage0_gradient_matches_finite_differences(case, sim):
    formula, data, family, link, kw = LAPLACE_CASES[case]
    obj = _objective(formula, _data(data, sim), family, link, nagq=0, **kw)
    assert stage0_supported(obj)
    theta = 0.8 * obj.design.theta0() + 0.05
    f, g = Stage0Gradient(obj)(theta)
    assert f == pytest.approx(obj.stage0(theta), rel=1e-10)
    assert _rel_error(g, _fd(obj.stage0, theta)) < GRAD_RTOL


def test_gradient_is_refused_where_it_does_not_apply():
    cbpp = mm.datasets.load("cbpp")
    assert not gradient_supported(_objective(CBPP, cbpp, "binomial", nagq=5))
    nb = _objective("TICKS ~ YEAR + (1 | LOCATION)", mm.datasets.load("grouseticks"),
                    NegativeBinomial(2.0))
    nb_shape = GLMMObjective(nb.design, NegativeBinomial(2.0), 1, estimate_shape=True)
    # the Laplace deviance has a gradient in the log shape too; the nAGQ = 0 stage has not
    assert gradient_supported(nb_shape) and not stage0_supported(nb_shape)
    # quadrature with a dispersion family (its log phi is a parameter) has none
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 10)
    d = pd.DataFrame({"y": rng.gamma(2.0, np.exp(0.3 * rng.normal(size=12))[g] / 2.0),
                      "g": g.astype(str)})
    with pytest.raises(ValueError, match="optimizer='gradient' needs"):
        _quiet(mm.glmer, "y ~ 1 + (1 | g)", d, family="Gamma", link="log", nAGQ=3,
               optimizer="gradient")


def test_negative_binomial_estimated_shape_gradient():
    g = mm.datasets.load("grouseticks")
    for formula in ("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
                    "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)"):
        design = _quiet(glmm_design, formula, g, NegativeBinomial(1.0))
        obj = GLMMObjective(design, NegativeBinomial(1.7), 1, estimate_shape=True)
        s0 = obj.solve0(design.theta0())
        x = obj.join(s0.theta, s0.beta, nb_theta=1.7) + 0.05
        _, grad = LaplaceGradient(obj)(x)
        assert _rel_error(grad, _fd(obj, x)) < GRAD_RTOL


def test_glmer_nb_gradient_fit():
    g = mm.datasets.load("grouseticks")
    f = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"
    fast = _quiet(mm.glmer_nb, f, g)
    slow = _quiet(mm.glmer_nb, f, g, optimizer="bobyqa")
    assert fast.opt.optimizer.startswith("gradient:")
    assert fast.objective <= slow.objective + OBJECTIVE_SLACK
    assert fast.family.theta == pytest.approx(slow.family.theta, rel=1e-4)
    evals = {r["stage"]: r["evaluations"] for r in fast.fit_log}
    assert evals["Laplace"] < {r["stage"]: r["evaluations"] for r in slow.fit_log}["Laplace"]


@pytest.mark.parametrize("model", ["cbpp", "sim probit", "gamma"])
def test_gradient_fit_reaches_the_derivative_free_optimum(model, sim):
    if model == "cbpp":
        args = (CBPP, mm.datasets.load("cbpp")), {}
    elif model == "sim probit":
        args = ("y ~ x + (x | g) + (1 | h)", sim), {"link": "probit"}
    else:
        args = ("y ~ x + (1 | g)", mm.datasets.load("gammasim")), {"family": "Gamma",
                                                                   "link": "log"}
    fast = _quiet(mm.glmer, *args[0], **args[1])
    slow = _quiet(mm.glmer, *args[0], optimizer="bobyqa", **args[1])
    assert fast.opt.optimizer.startswith("gradient:")
    assert fast.objective <= slow.objective + OBJECTIVE_SLACK
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fast.theta, slow.theta, atol=1e-3)
    evals = {r["stage"]: r["evaluations"] for r in fast.fit_log}
    evals_slow = {r["stage"]: r["evaluations"] for r in slow.fit_log}
    assert evals["Laplace"] < evals_slow["Laplace"]
    assert fast.convergence.converged


def test_failed_gradient_falls_back_to_bobyqa(monkeypatch):
    cbpp = mm.datasets.load("cbpp")
    ref = _quiet(mm.glmer, CBPP, cbpp, optimizer="bobyqa")

    def broken(self, x):
        self.obj.n_evals += 1
        return np.inf, np.full(np.shape(x), np.nan)

    monkeypatch.setattr(LaplaceGradient, "__call__", broken)
    monkeypatch.setattr(Stage0Gradient, "__call__", broken)
    m = _quiet(mm.glmer, CBPP, cbpp)
    assert m.opt.optimizer == "nlopt:LN_BOBYQA"
    assert m.objective == pytest.approx(ref.objective, abs=1e-6)


def test_nagq0_crossed_binomial_with_gradient_matches_bobyqa():
    v = _verbagg_subset()
    fast = _quiet(mm.glmer, VERBAGG, v, nAGQ=0)
    slow = _quiet(mm.glmer, VERBAGG, v, nAGQ=0, optimizer="bobyqa")
    assert fast.opt.optimizer.startswith("gradient:")
    assert fast.objective <= slow.objective + OBJECTIVE_SLACK
    np.testing.assert_allclose(fast.theta, slow.theta, atol=1e-3)
    assert fast.opt.n_evals < slow.opt.n_evals


def test_link_edge_keeps_the_better_of_gradient_and_bobyqa():
    """Gamma data whose inverse-link line wants to cross eta = 0: the criteria are not
    smooth at the edge and have several local minima; BFGS alone stopped 26 units above
    BOBYQA's optimum, so at the edge the derivative-free fit is run too."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(15), 20)
    x = rng.uniform(0, 1, g.size)
    eta = np.maximum(1.02 - x + 0.05 * rng.normal(size=15)[g], 0.001)
    d = pd.DataFrame({"y": rng.gamma(2.0, 1.0 / eta / 2.0), "x": x, "g": g.astype(str)})
    for nagq in (0, 1):
        fast = _quiet(mm.glmer, "y ~ x + (1 | g)", d, family="Gamma", nAGQ=nagq)
        slow = _quiet(mm.glmer, "y ~ x + (1 | g)", d, family="Gamma", nAGQ=nagq,
                      optimizer="bobyqa")
        assert fast.objective <= slow.objective + OBJECTIVE_SLACK


def test_repeated_point_is_answered_from_memory_and_moved_point_is_not(sim):
    """The gradient remembers its last evaluations (same bits, same family): a repeat adds
    no evaluation and gives the same numbers; any other point is evaluated afresh and
    matches a fresh objective's answer."""
    obj = _objective("y ~ x + (x | g) + (1 | h)", sim, "binomial")
    grad = LaplaceGradient(obj)
    x = _laplace_point(obj)
    f1, g1 = grad(x)
    n = obj.n_evals
    f2, g2 = grad(x.copy())
    assert obj.n_evals == n and f2 == f1 and np.array_equal(g2, g1)
    g2[:] = 0.0                                   # the caller's copy, not the memory's
    assert np.array_equal(grad(x)[1], g1)
    y = x.copy()
    y[0] += 1e-3
    fy, gy = grad(y)
    assert obj.n_evals == n + 1
    fresh = LaplaceGradient(_objective("y ~ x + (x | g) + (1 | h)", sim, "binomial"))
    fz, gz = fresh(y)
    assert fy == pytest.approx(fz, rel=1e-12) and _rel_error(gy, gz) < 1e-7
    # another family on the same objective: not the remembered answer
    obj.family = make_family("binomial", "probit")
    fp, _ = grad(x)
    assert obj.n_evals == n + 2 and fp != f1


def test_blocked_solve_many_matches_column_solves(sim):
    """BlockedHessian.solve_many (the joint solve's columns at once) is solve per column;
    slot_inverse_lapack is slot_inverse."""
    obj = _objective(GROUSE, mm.datasets.load("grouseticks"), "poisson")
    grad = Stage0Gradient(obj)
    theta = obj.design.theta0()
    assert np.isfinite(grad(theta)[0])
    H = grad._M
    assert hasattr(H, "solve_many")
    V = np.random.default_rng(5).standard_normal((grad.structure.q, 4))
    cols = np.column_stack([H.solve(V[:, j]) for j in range(V.shape[1])])
    np.testing.assert_allclose(H.solve_many(V), cols, rtol=1e-12, atol=1e-12)
    # the selected inverse with LAPACK's S^{-1} is the one by triangular solves
    fast = H.slot_inverse_lapack()
    H._Sinv = None
    np.testing.assert_allclose(fast, H.slot_inverse(), rtol=1e-10, atol=1e-13)


def test_snap_to_boundary_evaluates_only_when_a_parameter_is_near_its_bound():
    from mixedmodels.fitting.common import snap_to_boundary

    calls = []

    def fun(x):
        calls.append(x.copy())
        return float(np.sum((x - 0.5) ** 2))

    lower = np.array([0.0, -np.inf])
    x, f = snap_to_boundary(fun, np.array([0.3, 2.0]), None, lower)
    assert not calls and f is None and np.array_equal(x, [0.3, 2.0])
    # near the bound: the value at x is computed once, the move kept only if no worse
    x, f = snap_to_boundary(fun, np.array([1e-9, 2.0]), None, lower)
    assert len(calls) == 2 and x[0] == 1e-9 and f == pytest.approx(fun(np.array([1e-9, 2.0])))


#: The stage-0 BFGS model's standard deviations against the finite differences' (the
#: whitening needs the scale of each direction, not its digits).
MODEL_SD_RTOL = 0.05


@pytest.mark.parametrize("case", ["cbpp logit (cbind)", "grouseticks Poisson, three terms",
                                  "VerbAgg subset, crossed"])
def test_stage0_model_covariance_matches_finite_differences(case, sim):
    """The Laplace stage's scaling from the stage-0 search's inverse-Hessian model
    agrees with the finite differences of the exact gradient it replaces."""
    from mixedmodels.fitting.glmm import STAGE0_START_SETTINGS, _stage0, _stage0_covariance

    formula, data, family, link, kw = LAPLACE_CASES[case]
    obj = _objective(formula, _data(data, sim), family, link, **kw)
    obj.stage0_tol = 1e-6
    _, v, fun = _quiet(_stage0, obj, obj.design.theta0(), "auto", STAGE0_START_SETTINGS)
    assert fun.hess_inv is not None
    model = _stage0_covariance(fun, v)
    fun.hess_inv = None
    fd = _stage0_covariance(fun, v)
    np.testing.assert_allclose(np.sqrt(np.diag(model)), np.sqrt(np.diag(fd)),
                               rtol=MODEL_SD_RTOL)
