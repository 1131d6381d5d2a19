r"""Likelihood profiles of a GLMM (lme4's ``profile`` for ``glmer`` fits).

The parameters are the standard deviations and correlations of the random effects (theta
itself for a scalar term: the random effects are not scaled by a residual sd) and the fixed
effects, and the deviance is the fit's own (Laplace or adaptive quadrature) ``-2 log L`` of
``[theta, beta]``. Each parameter is held fixed in turn and *all* others, fixed effects
included, are optimized -- every evaluation runs PIRLS for the conditional modes -- exactly as
lme4 profiles GLMMs. The grid, root finding and boundary handling are those of
:mod:`~mixedmodels.inference.profile`.

As lme4, families with a dispersion parameter or an estimated negative binomial shape are not
profiled: their random-effects standard deviations are relative to the dispersion, which the
deviance here profiles out.
"""

from __future__ import annotations

import numpy as np

from .._errors import MixedModelsError
from ..display.progress import progress_bar
from .profile import (
    ALPHA_MAX,
    LikelihoodProfile,
    RebuildsObjective,
    _curve,
    _inner_minimize,
    _Point,
    _walk,
    first_shift,
    profile_settings,
)
from .varpar import SdCorMap

__all__ = ["profile_glmm"]


class _GLMMProfiler(RebuildsObjective):
    """Deviance of ``omega = [sd/cor..., beta]`` for a fitted GLMM."""

    def __init__(self, m):
        from ..objective.glmm import GLMMObjective

        if m.family.has_dispersion:
            raise MixedModelsError(
                f"profiles of GLMMs with a dispersion parameter ({m.family.name}) are not "
                "available (lme4 does not profile them either); use "
                "confint(method='wald') or confint(method='boot')")
        # glmer_nb: the estimated shape is held fixed (m.family carries it), as lme4's
        # profile of a glmer.nb fit and as the Hessian behind its standard errors
        self._spec = (m.design, m.family, max(m.nAGQ, 1))
        self.obj = GLMMObjective(*self._spec)
        self.map = SdCorMap(m.design, has_sigma=False)
        self.k = self.map.size
        self.opt = np.concatenate([self.map.from_theta(m.theta), np.asarray(m.beta, float)])
        self.lower = np.concatenate([self.map.lower, np.full(m.design.p, -np.inf)])
        self.upper = np.concatenate([self.map.upper, np.full(m.design.p, np.inf)])
        self.kinds = tuple(self.map.kinds) + ("fixef",) * m.design.p
        self.base = float(self.dev(self.opt))
        if not np.isclose(self.base, m.objective, rtol=0.0, atol=1e-6 * max(1.0, m.objective)):
            raise MixedModelsError(
                f"the deviance at the estimates ({self.base:.6f}) differs from the fit's "
                f"({m.objective:.6f}); the fit may not have converged")

    def _new_objective(self):
        from ..objective.glmm import GLMMObjective

        return GLMMObjective(*self._spec)

    def dev(self, omega: np.ndarray) -> float:
        theta, _ = self.map.to_theta(omega[:self.k])
        return float(self.obj(self.obj.join(theta, omega[self.k:])))

    def point(self, w: int, x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        free = np.arange(self.opt.size) != w

        def f(y):
            omega = np.empty(self.opt.size)
            omega[w] = x
            omega[free] = y
            return self.dev(omega)

        y, fval = _inner_minimize(f, start[free], self.lower[free], self.upper[free])
        omega = np.empty(self.opt.size)
        omega[w] = x
        omega[free] = y
        return fval, omega


def profile_glmm(m, which=None, alphamax: float = ALPHA_MAX, cutoff: float | None = None,
                 delta: float | None = None, progress=None) -> LikelihoodProfile:
    """Profile the parameters of the GLMM ``m`` (arguments as
    :func:`~mixedmodels.inference.profile.profile_lmm`)."""
    pr = _GLMMProfiler(m)
    names = list(pr.map.names) + list(m.fixef.index)
    wanted, cutoff, delta = profile_settings(names, which, alphamax, cutoff, delta)
    curves = {}
    bar = progress_bar(len(wanted), progress, "profile", unit="parameters")
    for w, name in enumerate(names):
        if name not in wanted:
            continue
        est = float(pr.opt[w])
        lo, hi = float(pr.lower[w]), float(pr.upper[w])
        # lme4's first step for every GLMM parameter: 1% away from the estimate
        shift = first_shift(est, lo, hi)

        point = _Point(pr, "glmm", w)
        pts = _walk(point, est, shift, pr.opt, lo, hi, cutoff, delta, pr.base)
        curves[name] = _curve(name, pr.kinds[w], pts, est, (lo, hi), point, pr.base)
        bar.update(len(curves))
    bar.close()
    return LikelihoodProfile(curves, pr.base, tuple(names))
