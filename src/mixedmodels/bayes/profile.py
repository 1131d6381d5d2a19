"""Profiles of a blmer fit: the penalized objective instead of the deviance.

A blmer fit's intervals from ``confint(method="profile")`` profile the objective the fit
minimized (ML deviance plus prior deviance, after an ML refit as lme4 does): for a
parameter held fixed, every other parameter is optimized with the prior in place, and
``zeta`` is the signed root of the increase of that objective -- a profile of the log
posterior density, whose intervals approximate the posterior's the way profile-likelihood
intervals approximate the likelihood's. With blme's default prior the profile of a
standard deviation rises to infinity at zero, so its interval never reaches the boundary.
"""

from __future__ import annotations

import numpy as np

from ..inference.profile import _inner_minimize, _LMMProfiler
from .priors import Point

__all__ = ["BlmerProfiler"]


class BlmerProfiler(_LMMProfiler):
    """Evaluations of the penalized objective for the profile code (ML fits)."""

    def __init__(self, m):
        priors = m.priors
        if isinstance(priors.resid, Point):
            raise NotImplementedError(
                "profiling a blmer fit with a point residual prior (fixed sigma) is not "
                "supported; use confint(method='boot') or the posterior (m.sample())")
        if priors.beta_numeric:
            raise NotImplementedError(
                "profiling a blmer fit with a t prior on the fixed effects is not supported; "
                "use confint(method='boot') or the posterior (m.sample())")
        super().__init__(m)
        self.penalized = m.penalized

    def _new_objective(self):
        self.penalized = self.m._rebuild_penalized()
        return super()._new_objective()

    def dev_sdcor(self, pars: np.ndarray) -> float:
        theta, sigma = self.map.to_theta(pars)
        if sigma <= 0:
            return np.inf
        pt = self.penalized.at(theta, sigma=float(sigma))
        return np.inf if pt is None else pt.objective

    def var_point(self, w: int, x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        free = np.arange(self.map.size) != w
        lower, upper = self.map.lower[free], self.map.upper[free]

        def full(y):
            pars = np.empty(self.map.size)
            pars[w] = x
            pars[free] = y
            return pars

        y, fval = _inner_minimize(lambda y: self.dev_sdcor(full(y)), start, lower, upper)
        pars = full(y)
        theta, sigma = self.map.to_theta(pars)
        pt = self.penalized.at(theta, sigma=float(sigma))
        beta = pt.beta if pt is not None else self.beta
        return fval, np.concatenate([pars, beta])

    def fixef_dev(self, j: int, b: float, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        pt = self.penalized.at(theta, fix=(j, b))
        if pt is None:
            return np.inf, np.nan, self.beta
        return pt.objective, pt.sigma, pt.beta
