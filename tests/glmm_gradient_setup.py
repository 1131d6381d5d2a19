"""A fitted GLMM's Laplace gradient at its optimum, for the tests of the standard
errors' gradient differences (predicted modes, batched differences)."""

from __future__ import annotations

import numpy as np

import mixedmodels as mm
from mixedmodels.fitting.glmm_gradient import _optimum_reference
from mixedmodels.objective.glmm_gradient import LaplaceGradient


def fitted_gradient(formula, data, family):
    """``(model, objective, gradient, x, reference)``: ``glmer`` fitted, its gradient
    evaluated once at the optimum ``x = [theta, beta]`` and the optimum's reference
    (modes and factor) the differences start from."""
    m = mm.glmer(formula, data, family=family)
    obj = m.objective_function
    grad = LaplaceGradient(obj)
    x = np.r_[m.theta, np.asarray(m.fixef)]
    grad(x)
    return m, obj, grad, x, _optimum_reference(grad, x)
