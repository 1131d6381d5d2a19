"""PIRLS's Newton steps with observed weights of both signs (inverse Gaussian and
Gaussian responses under a log link): the same conditional modes as Fisher scoring, in
fewer iterations, and Fisher scoring where Newton's system does not factor."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels._threads import blas_threads
from mixedmodels.families import make_family
from mixedmodels.fitting.glmm import glmm_design
from mixedmodels.objective.pirls import PIRLS

#: Both iterations stop within PIRLS_TOL = 1e-10 of the mode.
MODE_ATOL = 1e-8


@pytest.mark.parametrize("family", ["inverse_gaussian", "gaussian"])
def test_indefinite_newton_reaches_fisher_modes_faster(family):
    data = mm.datasets.load("gammasim")
    fam = make_family(family, "log")
    design = glmm_design("y ~ x + (1 | g)", data, fam)
    newton, fisher = PIRLS(design, fam), PIRLS(design, fam)
    fisher.indefinite_newton = False
    with blas_threads():
        w = fam.observed_weights(design.y, np.full(design.nobs, np.log(design.y.mean())),
                                 np.full(design.nobs, design.y.mean()), newton.prior)
        assert w.min() < 0 < w.max()        # the weights really have both signs
        theta = np.array([0.8])
        beta = np.array([0.5, 1.1])
        for joint in (False, True):
            b = None if joint else beta
            a, c = newton.fit(theta, b), fisher.fit(theta, b)
            np.testing.assert_allclose(a.u, c.u, atol=MODE_ATOL, rtol=0)
            np.testing.assert_allclose(a.beta, c.beta, atol=MODE_ATOL, rtol=0)
            assert a.pdev == pytest.approx(c.pdev, rel=1e-12)
            assert a.observed and not c.observed
            assert a.n_iter < c.n_iter


def test_indefinite_newton_system_falls_back_to_fisher(monkeypatch):
    """Where Newton's system fails to factor, the step is Fisher scoring's."""
    data = mm.datasets.load("gammasim")
    fam = make_family("inverse_gaussian", "log")
    design = glmm_design("y ~ x + (1 | g)", data, fam)
    pirls = PIRLS(design, fam)
    ref = PIRLS(design, fam)
    ref.indefinite_newton = False
    original = PIRLS._factor_step_system

    def refuse_indefinite(self, theta, lams, step, joint):
        return None if step.indefinite else original(self, theta, lams, step, joint)

    monkeypatch.setattr(PIRLS, "_factor_step_system", refuse_indefinite)
    with blas_threads():
        a = pirls.fit(np.array([0.8]), np.array([0.5, 1.1]))
        c = ref.fit(np.array([0.8]), np.array([0.5, 1.1]))
    np.testing.assert_allclose(a.u, c.u, atol=MODE_ATOL, rtol=0)
