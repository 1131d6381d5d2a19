"""The nAGQ = 0 stage's gradient search (fitting.glmm._stage0_search) and the projected
BFGS's inverse-Hessian model it hands to the Laplace stage's scaling."""

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.optim import minimize_bounded_bfgs

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_bounded_bfgs_reports_its_inverse_hessian_in_x():
    # f = sum c_i (log x_i - log m_i)^2 on x > 0: the search runs in log x, where the
    # Hessian is diag(2 c); in x at the optimum it is diag(2 c / m^2)
    c, m = np.array([3.0, 10.0]), np.array([0.5, 2.0])

    def fg(x):
        r = np.log(x) - np.log(m)
        return float(c @ r ** 2), 2.0 * c * r / x

    model = {}
    opt, _ = minimize_bounded_bfgs(fg, np.ones(2), np.zeros(2), model=model)
    assert opt.return_code.startswith("converged")
    np.testing.assert_allclose(opt.x, m, rtol=1e-6)
    np.testing.assert_allclose(np.diag(model["hess_inv"]), m ** 2 / (2.0 * c), rtol=0.05)


def test_bounded_bfgs_model_is_none_without_curvature():
    model = {}
    minimize_bounded_bfgs(lambda x: (float(x @ x), 2.0 * x), np.zeros(1), np.full(1, -np.inf),
                          model=model)
    assert model["hess_inv"] is None


@pytest.mark.parametrize("nagq", [0, 1])
def test_cbpp_stage0_runs_the_projected_bfgs(nagq):
    cbpp = mm.datasets.load("cbpp")
    m = mm.glmer(CBPP, cbpp, family="binomial", nAGQ=nagq)
    assert m.opt_stage0.optimizer == "gradient:projected BFGS"
    assert m.opt_stage0.converged
    assert m.opt_stage0.n_evals <= 6
    # lme4 1.1-31: 184.1086 (nAGQ = 0), 184.0526 (Laplace)
    assert m.solution.objective == pytest.approx(184.1086 if nagq == 0 else 184.0526,
                                                 abs=1e-4)
