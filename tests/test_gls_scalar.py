"""The one-parameter search of ``gls`` fits with a cheap derivative
(:mod:`mixedmodels.fitting.gls_scalar`): cubic Hermite steps against functions with known
minima, a domain edge (non-finite values beyond it), warm starts, and the fits that take
it matching nlme's log-likelihood."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mixedmodels as mm
import rside_fixtures as rf
from mixedmodels.fitting.gls_scalar import minimize_scalar_with_gradient

#: Distance of the found minimizer from the known one (the search stops on a derivative
#: of 1e-5: for these curvatures of order one, ~1e-5 in x at worst, usually far less).
X_TOL = 1e-5
#: nlme's log-likelihoods, as the parity tests compare them.
LOGLIK_TOL = 1e-6


def _fg(f, g):
    return lambda x: (f(float(x[0])), np.array([g(float(x[0]))]))


CASES = [
    # exp(x) - 2x: minimum at log 2, far from quadratic on the left
    (lambda x: math.exp(x) - 2.0 * x, lambda x: math.exp(x) - 2.0, -3.0, math.log(2.0)),
    # a quartic bowl: curvature vanishing at the minimum
    (lambda x: (x - 1.5) ** 4 + 0.1 * (x - 1.5) ** 2, lambda x: 4 * (x - 1.5) ** 3
     + 0.2 * (x - 1.5), 0.0, 1.5),
    # logit-scale correlation-like: flattening on one side
    (lambda x: math.log1p(math.exp(-x)) + 0.2 * x, lambda x: -1.0 / (1.0 + math.exp(x))
     + 0.2, 5.0, math.log(4.0)),
]


@pytest.mark.parametrize("f, g, x0, xmin", CASES, ids=["exp", "quartic", "softplus"])
def test_finds_the_minimum(f, g, x0, xmin):
    opt, grad = minimize_scalar_with_gradient(_fg(f, g), np.array([x0]))
    assert opt.return_code.startswith("converged")
    assert opt.x[0] == pytest.approx(xmin, abs=X_TOL)
    assert abs(grad[0]) <= 1e-5
    assert opt.fval == pytest.approx(f(opt.x[0]))


def test_steps_back_from_non_finite_values():
    # -log(1 - x) - 5x: minimum at 0.8, undefined from x = 1 on; the steps from 0 would
    # pass the edge
    def f(x):
        return -math.log(1.0 - x) - 5.0 * x if x < 1.0 else math.inf

    opt, _ = minimize_scalar_with_gradient(_fg(f, lambda x: 1.0 / (1.0 - x) - 5.0),
                                           np.array([0.0]))
    assert opt.return_code.startswith("converged")
    assert opt.x[0] == pytest.approx(0.8, abs=X_TOL)


def test_warm_start_settles_in_few_evaluations():
    f, g, _, xmin = CASES[0]
    cold, _ = minimize_scalar_with_gradient(_fg(f, g), np.array([xmin + 0.01]))
    warm, _ = minimize_scalar_with_gradient(_fg(f, g), np.array([xmin + 0.01]), warm=True)
    assert warm.x[0] == pytest.approx(xmin, abs=X_TOL)
    assert warm.n_evals <= 4 < cold.n_evals + 2


def test_no_finite_start():
    opt, _ = minimize_scalar_with_gradient(lambda x: (math.inf, np.zeros(1)), np.zeros(1))
    assert opt.return_code == "no finite objective value at the start"


@pytest.mark.parametrize("name", ["ovary_gls_ar1", "orth_gls_cs", "bw_gls_power_time",
                                  "bw_gls_varexp"])
def test_one_parameter_fits_match_nlme(name):
    fx = next(f for f in rf.models("gls") if f["name"] == name)
    m = eval(fx["py_call"], {"mm": mm, "d": rf.data(fx["data"])})
    assert m.opt.optimizer == "gradient:1-D cubic"
    assert m.loglik == pytest.approx(fx["logLik"], abs=LOGLIK_TOL)
    assert m.convergence is None or m.convergence.converged
