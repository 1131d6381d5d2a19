r"""The fast route of ``glmer`` for structured covariance terms (``ar1``, ``cs``, ``toep``,
``exp``, ``gau``, ``mat``, ``propto``, ``homdiag``, ...): the glmmtmb engine's fit, checked
and finished in glmer's own deviance.

Why a second route. lme4 has no such terms, so there is no lme4 stopping point for glmer to
reproduce, and glmer's two stages (the nAGQ = 0 search, then the Laplace search in
whitened coordinates, then a finite-difference Hessian, each with PIRLS at every
evaluation) cost 2-10 times what the glmmtmb engine (:mod:`~.laplace_fit`: quasi-Newton
with the exact gradient of the Laplace objective, Newton steps with its Hessian) needs for
the same model. For these models both doors minimize the same function: glmer's Laplace
deviance of a family without a dispersion parameter, with its canonical link, is glmmTMB's
``-2 log L`` (the structures fixtures agree to 1e-9), and both use the structure's own
parameters ``theta`` (:attr:`~mixedmodels.design.random.RandomTerm.structure`).

The route (:func:`fit_structured`):

1. fit the design by the engine (:func:`~.glmmtmb.fit_glmmtmb`); a fit that warns, does
   not converge, or ends with a variance parameter on a bound, goes back to the two stages;
2. map its optimum to glmer's layout, ``x* = [theta*, beta*]``, and check that glmer's
   deviance there equals the engine's objective (:data:`OBJECTIVE_AGREEMENT_TOL`; else the
   two are not the same function and the two stages run);
3. Newton steps in glmer's deviance, with its exact gradient ``g``
   (:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient`) and the engine's
   Hessian ``H``, until the predicted decrease :math:`g^\top H^{-1} g / 2` is below
   :data:`DECREMENT_TOL` (else the two stages run);
4. the standard errors from ``H`` (the block of beta in :math:`2 H^{-1}`: the Hessian of
   the same deviance in the same parameters, by differences of the exact gradient, where
   the two stages difference glmer's gradient in whitened coordinates), stored as glmer
   stores them: derivatives in coordinates ``x = x* + T z`` with :math:`T^\top H T = 2 I`.

Where a check fails the two stages run on a fresh objective, as they did before the route
(a singular fit, whose Hessian is not positive definite, pays the engine's fit on top).
The result is glmer's (:class:`~mixedmodels.results.glmm.GeneralizedLinearMixedModelResult`
with glmer's objective, left at the optimum, for profiles, predictions and refits).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from ..design import Design
from ..families import Family
from ..objective.glmm import GLMMObjective

__all__ = ["fit_structured", "takes_structured_route"]

#: Families of the route, each with its canonical link: no dispersion parameter (glmer
#: profiles none, glmmTMB has none) and an inner Hessian that is the Fisher information,
#: so the two objectives are the same function of ``[theta, beta]``. With another link
#: lme4's Laplace approximation (and glmer's) uses the Fisher weights where glmmTMB uses
#: the observed Hessian of the log-likelihood: a different objective (0.58 deviance units
#: apart on a simulated probit model), whose optimum the engine does not find.
ROUTE_FAMILIES = {"poisson": "log", "binomial": "logit"}
#: Largest difference of glmer's deviance and the engine's objective at the engine's optimum
#: for the route to keep it (the structures fixtures: below 1e-9).
OBJECTIVE_AGREEMENT_TOL = 1e-6
#: Predicted decrease ``g' H^{-1} g / 2`` of glmer's deviance (deviance units) below which
#: its gradient confirms the optimum; the engine's own criterion is of the same order.
DECREMENT_TOL = 1e-7
#: Newton steps at most in step 3 before the route gives the fit back to the two stages.
POLISH_STEPS = 4
#: Halvings of a Newton step that does not lower the deviance before the route gives up.
POLISH_HALVINGS = 6


def takes_structured_route(design: Design, family: Family, nAGQ: int, estimate_shape: bool,
                           start, optimizer: str, optimizer_settings) -> bool:
    """Whether :func:`fit_structured` is tried: a Laplace fit (nAGQ = 1) with at least one
    structured term, of a family in :data:`ROUTE_FAMILIES` with its link, by the
    default optimizer with no start and no settings (those ask for glmer's own stages),
    without other linear predictors.

    Models of lme4's terms only never take it: their fits stay lme4's, bit for bit."""
    return (nAGQ == 1 and not estimate_shape and not start and optimizer == "auto"
            and optimizer_settings is None
            and ROUTE_FAMILIES.get(family.name) == family.link.name
            and not family.has_dispersion and not design.extra_components
            and any(t.structured for t in design.terms))


def _engine_fit(design: Design, family: Family):
    """The engine's fit of ``design``, or None where it warned (a doubtful optimum: the
    two stages decide) or failed."""
    from ..families.registry import make_response_family
    from .glmmtmb import fit_glmmtmb

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_glmmtmb(design, make_response_family(family, family.link.name))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, RuntimeError):
            # (MixedModelsError is a ValueError): the two stages meet the same model
            return None
    if caught or not fit.fit.converged or fit.fit.hessian is None:
        return None
    return fit


def _route_gradient(obj: GLMMObjective):
    """glmer's exact Laplace gradient for the route's Newton steps: the one glmer's own
    stages use, or, for a model whose only obstacle is a Toeplitz term (a covariance not
    defined for every parameter vector: glmer's stages keep BOBYQA there, whose restarts
    cope with the infinite deviances beyond the wall), the same gradient with an infinite
    deviance where the correlation is not one. The route needs it only at and near the
    engine's optimum, an interior point (the engine's fit ends with a positive definite
    Hessian and no warning), and halves a step that meets an infinite deviance."""
    from ..objective.glmm_gradient import LaplaceGradient
    from .glmm_gradient import laplace_gradient

    grad = laplace_gradient(obj, "auto", False)
    if grad is not None:
        return grad
    terms = obj.design.terms
    if (type(obj) is not GLMMObjective or obj.nAGQ != 1 or obj.phi_block
            or all(t.structure.defined_everywhere for t in terms)):
        return None
    try:
        obj.family.variance_deriv2(np.ones(1) * 0.5)
        for t, sl in zip(terms, obj.design.theta_slices(), strict=True):
            t.structure.lambda_jacobian(obj.design.theta0()[sl])
        return _InsideGradient(LaplaceGradient(obj))
    except (NotImplementedError, ValueError, np.linalg.LinAlgError):
        return None


class _InsideGradient:
    """A :class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient` that answers
    ``(inf, nan)`` beyond the wall of a Toeplitz term's domain (its Cholesky factor
    fails there) instead of raising; everything else is the gradient's own."""

    def __init__(self, exact):
        self._exact = exact

    def __call__(self, x: np.ndarray):
        try:
            f, g = self._exact(x)
        except np.linalg.LinAlgError:       # R(t) is not positive definite
            f, g = np.inf, None
        if not np.isfinite(f):
            return np.inf, np.full(np.size(x), np.nan)
        return f, g

    def __getattr__(self, name: str):
        return getattr(self._exact, name)


def _glmer_order(obj: GLMMObjective, tmb) -> np.ndarray:
    """Index of each entry of glmer's ``[theta, beta]`` in the engine's free parameters."""
    L = tmb.layout
    where = np.full(L.size, -1)
    where[np.asarray(L.free_index)] = np.arange(len(L.free_index))
    idx = np.r_[np.arange(L.size)[L.slice("theta.cond")], np.arange(L.size)[L.slice(
        "beta.cond")]]
    out = where[idx]
    return out if out.size == obj.layout.size and np.all(out >= 0) else None


def fit_structured(design: Design, family: Family, obj: GLMMObjective, calc_derivs: bool,
                   check_conv: bool):
    """glmer's fit of a model of :func:`takes_structured_route` by the engine (module
    docstring), or None where a check fails and the two stages should run.

    Parameters
    ----------
    design, family, obj
        As :func:`~.glmm._fit_glmm` has them (``obj``: glmer's Laplace objective).
    calc_derivs, check_conv
        As for :func:`~.glmm.glmer`.

    Returns
    -------
    GeneralizedLinearMixedModelResult or None
    """
    from ..diagnostics.separation import separated_columns
    from .glmm import _result, _rx_vcov, _solution_at, _StageLog
    from .glmm_vcov import DevianceDerivatives, convergence_report, vcov_from_hessian
    from .trace import log_stage

    grad = _route_gradient(obj)
    if grad is None:
        return None
    log = _StageLog(obj)
    t0 = time.perf_counter()
    tmb = _engine_fit(design, family)
    if tmb is None:
        return None
    order = _glmer_order(obj, tmb)
    if order is None:
        return None
    L = tmb.layout
    x = obj.join(L.get(tmb.fit.x, "theta.cond"), L.get(tmb.fit.x, "beta.cond"))
    if np.any(x <= obj.lower):
        return None         # on a bound: the two stages' one-sided derivatives
    H = tmb.fit.hessian[np.ix_(order, order)]
    H = 0.5 * (H + H.T)
    try:
        chol = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    u = np.asarray(tmb.fit.solution.u)
    if u.shape == obj.pirls.u_start.shape and np.all(np.isfinite(u)):
        # PIRLS from the engine's modes (the same spherical effects ``u``, ``b = Lambda
        # u``): the inner problem is convex for a canonical link, so the start changes
        # only its iterations (7 -> 1 on the structures fixtures), not the modes
        obj.pirls.u_start = u.copy()
        obj.pirls._ref = None
    f, g = grad(x)
    if not abs(f - float(tmb.fit.solution.objective)) <= OBJECTIVE_AGREEMENT_TOL:
        return None
    n_steps = 0
    while True:
        step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        decrement = -0.5 * float(g @ step)
        if decrement < DECREMENT_TOL:
            break
        if n_steps == POLISH_STEPS:
            return None
        for _ in range(POLISH_HALVINGS + 1):
            # (halved while it does not descend: along a flat direction -- a correlation
            # near one -- the quadratic model overshoots)
            f_new, g_new = grad(x + step)
            if f_new < f:
                break
            step = 0.5 * step
        else:
            return None
        x, f, g, n_steps = x + step, f_new, g_new, n_steps + 1
    sol = _solution_at(obj, grad, x)
    pirls = obj.pirls
    if separated_columns(pirls.basis, design.X, pirls.fisher_weights_at(sol.eta, sol.mu),
                         pirls.prior).size:
        return None         # the two stages hold separated coefficients and warn
    opt = dataclasses.replace(
        tmb.fit.opt, optimizer=f"glmmtmb engine: {tmb.fit.opt.optimizer}",
        x=x.copy(), fval=float(sol.objective), n_evals=int(tmb.fit.opt.n_evals) + n_steps,
        seconds=time.perf_counter() - t0)
    log_stage("glmer", "Laplace (engine)", opt.optimizer, opt.n_evals, opt.seconds,
              opt.fval)
    log.stage("Laplace")
    k, p = obj.n_theta, obj.p
    vcov, how, derivs, conv = sol.phi * _rx_vcov(obj, sol), "RX", None, None
    if calc_derivs:
        # x = x* + T z with T' H T = 2 I: glmer's whitened coordinates for this Hessian
        T = np.sqrt(2.0) * np.linalg.inv(chol).T
        derivs = DevianceDerivatives(free=np.ones(x.size, dtype=bool), gradient=T.T @ g,
                                     hessian=T.T @ H @ T, n_evals=0)
        vcov, how = vcov_from_hessian(derivs, T, np.arange(k, k + p)), "hessian"
        if check_conv:
            conv = convergence_report(derivs, np.zeros(x.size), np.full(x.size, -np.inf))
            if not conv.converged:
                return None     # the two stages judge (and warn) from their own search
        log.stage("Hessian")
    return _result(design, obj, sol, sol.family, opt, opt, conv, vcov, how, derivs, [],
                   log)
