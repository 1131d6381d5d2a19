"""The exact gradient of glmer's adaptive-quadrature deviance (objective/agq_gradient.py),
checked against central finite differences of the deviance itself, and the gradient fit of
the quadrature stage against the derivative-free one (same optimum or a lower one, fewer
evaluations, standard errors from the gradient's differences close to the deviance's)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.families import NegativeBinomial, make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.agq_gradient import AGQGradient, agq_gradient_supported
from mixedmodels.objective.glmm import GLMMObjective
from test_glmer_gradient import _fd, _rel_error

#: Largest gradient error allowed, relative to max(1, max |finite difference|) (the
#: central differences of test_glmer_gradient.py's ``_fd``): the differences carry ~1e-6
#: (PIRLS stops within 1e-10 of the modes); a missing term (the movement of the node
#: scale, of the mode) shows as errors of 1e-3 to 1.
GRAD_RTOL = 2e-5
#: The gradient fit reaches the derivative-free optimum or a lower one, within this.
OBJECTIVE_SLACK = 1e-7
#: Standard errors from the gradient's forward differences against BOBYQA's deviance
#: differences (each carries ~1e-4 of truncation error at its step).
SE_RTOL = 1e-3

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads():
        yield


def _simulated(seed: int = 11, levels: int = 30, per: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), per)
    x = rng.standard_normal(g.size)
    b = 0.8 * rng.standard_normal(levels)
    eta = -0.2 + 0.6 * x + b[g]
    return pd.DataFrame({
        "y": rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))),
        "cnt": rng.negative_binomial(3.0, 3.0 / (3.0 + np.exp(0.5 + 0.3 * x + b[g]))),
        "x": x, "w": rng.uniform(0.5, 2.0, g.size), "off": 0.1 * rng.standard_normal(g.size),
        "g": g.astype(str),
    })


CASES = [
    # (formula, data, family, link, nAGQ, keyword arguments)
    (CBPP, "cbpp", "binomial", None, 25, {}),
    (CBPP, "cbpp", "binomial", "probit", 7, {}),          # non-canonical: Fisher L, Newton H
    (CBPP, "cbpp", "binomial", "cloglog", 4, {}),         # even rule: no node at the mode
    ("y ~ x + (1 | g)", "sim", "binomial", None, 9, {}),
    ("y ~ x + (x - 1 | g)", "sim", "binomial", None, 5, {}),   # a slope column z_i
    ("cnt ~ x + offset(off) + (1 | g)", "sim", "poisson", None, 11, {"weights": "w"}),
    ("cnt ~ x + (1 | g)", "sim", NegativeBinomial(3.0), None, 6, {}),
]


def _data(name):
    return mm.datasets.load("cbpp") if name == "cbpp" else _simulated()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_agq_gradient_matches_finite_differences(case):
    formula, data, family, link, nagq, kw = case
    fam = make_family(family, link) if isinstance(family, str) else family
    design = _quiet(glmm_design, formula, _data(data), fam, **kw)
    obj = GLMMObjective(design, fam, nagq)
    assert agq_gradient_supported(obj)
    s = obj.solve0(design.theta0())
    rng = np.random.default_rng(2)
    for sign in (1.0, -1.0):       # theta of either sign (the whitened search crosses 0)
        x = obj.join(s.theta, s.beta) + 0.1 * rng.standard_normal(s.theta.size + s.beta.size)
        x[0] *= sign
        f, g = AGQGradient(obj)(x)
        assert f == pytest.approx(obj(x), rel=1e-12)
        assert _rel_error(g, _fd(obj, x)) < GRAD_RTOL


def test_one_node_is_the_laplace_gradient():
    """With one node the quadrature deviance is the Laplace one; their gradients agree."""
    from mixedmodels.objective.glmm_gradient import LaplaceGradient

    cbpp = mm.datasets.load("cbpp")
    fam = make_family("binomial", None)
    design = _quiet(glmm_design, CBPP, cbpp, fam)
    lap = GLMMObjective(design, fam, 1)
    agq = GLMMObjective(design, fam, 3)
    agq.nAGQ = 1          # the same objective, read by the quadrature gradient with K = 1
    s = lap.solve0(design.theta0())
    x = lap.join(s.theta, s.beta) + 0.05
    g_lap = LaplaceGradient(lap)(x)[1]
    f_one, g_one = AGQGradient(agq)._value_and_gradient(
        x.size, agq.pirls.fit(x[:1], x[1:]), fam)
    assert f_one == pytest.approx(lap(x), rel=1e-12)
    np.testing.assert_allclose(g_one, g_lap, rtol=1e-8, atol=1e-8)


def test_refused_where_it_does_not_apply():
    cbpp = mm.datasets.load("cbpp")
    fam = make_family("binomial", None)
    design = _quiet(glmm_design, CBPP, cbpp, fam)
    assert not agq_gradient_supported(GLMMObjective(design, fam, 1))
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 10)
    d = pd.DataFrame({"y": rng.gamma(2.0, np.exp(0.3 * rng.normal(size=12))[g] / 2.0),
                      "g": g.astype(str)})
    gam = make_family("Gamma", "log")
    obj = GLMMObjective(_quiet(glmm_design, "y ~ 1 + (1 | g)", d, gam), gam, 3)
    assert not agq_gradient_supported(obj)
    assert obj.laplace_gradient_factory() is None


@pytest.mark.parametrize("link,nagq", [(None, 25), ("probit", 7), ("cloglog", 9)])
def test_gradient_fit_matches_bobyqa(link, nagq):
    cbpp = mm.datasets.load("cbpp")
    fast = _quiet(mm.glmer, CBPP, cbpp, family="binomial", link=link, nAGQ=nagq)
    slow = _quiet(mm.glmer, CBPP, cbpp, family="binomial", link=link, nAGQ=nagq,
                  optimizer="bobyqa")
    assert fast.opt.optimizer.startswith("gradient:")
    assert fast.objective <= slow.objective + OBJECTIVE_SLACK
    assert fast.opt.n_evals < slow.opt.n_evals / 3
    assert fast.convergence.converged and fast.vcov_method == "hessian"
    np.testing.assert_allclose(np.sqrt(np.diag(fast.vcov_beta)),
                               np.sqrt(np.diag(slow.vcov_beta)), rtol=SE_RTOL)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=1e-4)
