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
   deviance there (its own PIRLS solve, the solution its result holds) equals the
   engine's objective (:data:`OBJECTIVE_AGREEMENT_TOL`; else the two are not the same
   function and the two stages run);
3. the optimum is confirmed where the predicted decrease :math:`g^\top H^{-1} g / 2` of
   the engine's exact gradient ``g`` and Hessian ``H`` there (the derivatives of that
   function) is below :data:`DECREMENT_TOL`; else Newton steps in glmer's deviance, with
   its exact gradient (:class:`~mixedmodels.objective.glmm_gradient.LaplaceGradient`)
   and ``H``, until it is (else the two stages run);
4. the standard errors from ``H`` (the block of beta in :math:`2 H^{-1}`: the Hessian of
   the same deviance in the same parameters, by differences of the exact gradient, where
   the two stages difference glmer's gradient in whitened coordinates), stored as glmer
   stores them: derivatives in coordinates ``x = x* + T z`` with :math:`T^\top H T = 2 I`.

Where a check fails the two stages run on a fresh objective, as they did before the route
(a singular fit, whose Hessian is not positive definite, pays the engine's fit on top).
An engine optimum on the wall of a Toeplitz domain (:func:`wall_terms`) is handed back as
a :class:`WallOptimum`: glmer runs its two stages too and keeps the lower fit (their
search in the lag correlations cannot reach the wall, so the wall optimum usually wins:
homtoep_pois 835.9491 against 836.6230), reported as a boundary fit (its docstring).
The result is glmer's (:class:`~mixedmodels.results.glmm.GeneralizedLinearMixedModelResult`
with glmer's objective, left at the optimum, for profiles, predictions and refits).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from ..covariance.base import SINGULAR_TOL
from ..design import Design
from ..families import Family
from ..objective.glmm import GLMMObjective

__all__ = ["WallOptimum", "fit_structured", "takes_structured_route", "wall_terms"]

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
#: Smallest eigenvalue of a Toeplitz term's correlation matrix below which the engine's
#: optimum counts as on the wall of the domain (the structure's singularity rule,
#: :data:`~mixedmodels.covariance.base.SINGULAR_TOL`; homtoep_pois: 3.6e-7).
WALL_EIGEN_TOL = SINGULAR_TOL
#: The wall optimum replaces the two stages' fit only when glmer's deviance there is lower
#: by more than this (deviance units): else the two stages' fit is kept, as before.
WALL_GAIN_TOL = 1e-6
#: Imaginary step of the chart's complex-step Jacobian (exact to rounding).
CHART_COMPLEX_STEP = 1e-20


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
    """``(fit, at_wall)``: the engine's fit of ``design`` and whether it ended on the wall
    of a Toeplitz domain (:func:`wall_terms`; its Hessian is not positive definite there
    and it does not converge in glmmTMB's sense); ``(None, False)`` where it warned or did
    not converge otherwise (a doubtful optimum: the two stages decide) or failed."""
    from .._messages import held, report
    from ..families.registry import make_response_family
    from .glmmtmb import fit_glmmtmb

    with warnings.catch_warnings(record=True) as caught, held() as log:
        warnings.simplefilter("always")
        try:
            fit = fit_glmmtmb(design, make_response_family(family, family.link.name))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, RuntimeError):
            # (MixedModelsError is a ValueError): the two stages meet the same model
            fit = None
    if fit is not None and fit.fit.hessian is not None and not fit.fit.converged \
            and wall_terms(design, _theta_of(fit)):
        # an optimum on the wall of a Toeplitz domain: its warnings (glmmTMB's
        # non-positive-definite Hessian) are not glmer's (WallOptimum.result has its own)
        return fit, True
    for w in log:
        report(w.message)       # the collectors see them, as before (not shown)
    if fit is None or fit.fit.hessian is None or caught or log or not fit.fit.converged:
        return None, False
    return fit, False


def _theta_of(tmb) -> np.ndarray:
    """The engine's covariance parameters (glmer's ``theta``)."""
    return np.asarray(tmb.layout.get(tmb.fit.x, "theta.cond"), dtype=float)


def wall_terms(design: Design, theta: np.ndarray) -> list[int]:
    """Terms whose covariance has a wall (not defined everywhere, with an unconstrained
    chart ``t_from_chart``: ``toep``, ``homtoep``) and is on it at ``theta``: a correlation
    matrix ``R`` whose smallest eigenvalue is below :data:`WALL_EIGEN_TOL`."""
    out = []
    for i, (t, sl) in enumerate(zip(design.terms, design.theta_slices(), strict=True)):
        S = t.structure
        if S.defined_everywhere or not hasattr(S, "t_from_chart"):
            continue
        cor = np.asarray(theta[sl], dtype=float)[S.n_sd:]
        if cor.size and np.all(np.isfinite(cor)) \
                and np.linalg.eigvalsh(S.correlation(cor))[0] < WALL_EIGEN_TOL:
            out.append(i)
    return out


def _route_gradient(obj: GLMMObjective):
    """A builder (no arguments) of glmer's exact Laplace gradient for the route's Newton
    steps, or None where glmer has none (the route is not taken): the one glmer's own
    stages use, or, for a model whose only obstacle is a Toeplitz term (a covariance not
    defined for every parameter vector: glmer's stages keep BOBYQA there, whose restarts
    cope with the infinite deviances beyond the wall), the same gradient with an infinite
    deviance where the correlation is not one. The route needs it only at and near the
    engine's optimum -- an interior point (the engine's fit ends with a positive definite
    Hessian and no warning) whose Newton steps halve on an infinite deviance, or a point
    on the wall (:class:`WallOptimum`), where it is evaluated once, inside -- and most
    routed fits need no Newton step, so it is built only when asked for (its set-up is
    ~2% of a small fit)."""
    from ..objective.glmm_gradient import LaplaceGradient

    # (laplace_gradient(obj, "auto", False) of glmer's stages: the objective's factory)
    factory = obj.laplace_gradient_factory()
    if factory is not None:
        return lambda: factory(obj)
    terms = obj.design.terms
    if (type(obj) is not GLMMObjective or obj.nAGQ != 1 or obj.phi_block
            or all(t.structure.defined_everywhere for t in terms)):
        return None
    try:
        obj.family.variance_deriv2(np.ones(1) * 0.5)
        for t, sl in zip(terms, obj.design.theta_slices(), strict=True):
            t.structure.lambda_jacobian(obj.design.theta0()[sl])
    except (NotImplementedError, ValueError, np.linalg.LinAlgError):
        return None
    return lambda: _InsideGradient(LaplaceGradient(obj))


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


def _checked_value(obj: GLMMObjective, grad, x: np.ndarray):
    """glmer's ``(F, dF/dx)`` at the engine's optimum ``x``: the same evaluation as
    ``grad(x)``, without PIRLS's sensitivity of the modes (``du/d[theta, beta]``, a solve
    with ``q + p``-column right-hand sides: ~10% of the check on hetar1_pois), which only
    predicts the modes of the next solve. Most routed fits need no further solve (no
    Newton step; the result leaves the workspace at the modes without a prediction, as
    :func:`~.glmm._leave_workspace_at` does for the two stages); where a Newton step is
    needed :func:`_predict_from` computes it then."""
    pirls = obj.pirls
    predict = pirls.predict
    pirls.predict = False
    try:
        return grad(x)
    finally:
        pirls.predict = predict


def _checked_solution(obj: GLMMObjective, x: np.ndarray):
    """glmer's solution (PIRLS's modes and its Laplace deviance) at the engine's optimum
    ``x``, without PIRLS's sensitivity of the modes (as :func:`_checked_value`): the
    solution glmer's result holds, and the deviance the route compares with the engine's
    objective."""
    pirls = obj.pirls
    predict = pirls.predict
    pirls.predict = False
    try:
        return obj.solve(x)
    finally:
        pirls.predict = predict


def _predict_from(obj: GLMMObjective, grad) -> None:
    """Before the first Newton step: the modes' sensitivity at the checked point
    (:meth:`~mixedmodels.objective.pirls.PIRLS.reference_of` of its solve), from which
    PIRLS predicts the modes at the step's end, as it would have had the check kept it."""
    from ..objective.pirls import PIRLS

    pirls = obj.pirls
    last = getattr(grad, "last_solve", None)
    if pirls.predict and type(pirls) is PIRLS and last is not None:
        pirls._ref = pirls.reference_of(last[3])


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

    make_grad = _route_gradient(obj)
    if make_grad is None:
        return None
    log = _StageLog(obj)
    t0 = time.perf_counter()
    tmb, at_wall = _engine_fit(design, family)
    if tmb is None:
        return None
    order = _glmer_order(obj, tmb)
    if order is None:
        return None
    L = tmb.layout
    x = obj.join(L.get(tmb.fit.x, "theta.cond"), L.get(tmb.fit.x, "beta.cond"))
    if np.any(x <= obj.lower):
        return None         # on a bound: the two stages' one-sided derivatives
    u = np.asarray(tmb.fit.solution.u)
    if u.shape == obj.pirls.u_start.shape and np.all(np.isfinite(u)):
        # PIRLS from the engine's modes (the same spherical effects ``u``, ``b = Lambda
        # u``): the inner problem is convex for a canonical link, so the start changes
        # only its iterations (7 -> 1 on the structures fixtures), not the modes
        obj.pirls.u_start = u.copy()
        obj.pirls._ref = None
    f_engine = float(tmb.fit.solution.objective)
    if at_wall:
        grad = make_grad()
        f, g = _checked_value(obj, grad, x)
        if not abs(f - f_engine) <= OBJECTIVE_AGREEMENT_TOL:
            return None
        return WallOptimum(design, obj, grad, tmb, x, f, g, check_conv, t0)
    # glmer's own solution at the engine's optimum: its deviance must be the engine's
    # objective (the same function of the same parameters)
    sol = _checked_solution(obj, x)
    if not abs(float(sol.objective) - f_engine) <= OBJECTIVE_AGREEMENT_TOL:
        return None
    H = tmb.fit.hessian[np.ix_(order, order)]
    H = 0.5 * (H + H.T)
    try:
        chol = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    # the engine's exact gradient of that function there, with the Hessian it was
    # differenced from: where their Newton decrement is below DECREMENT_TOL the optimum
    # is confirmed without glmer's own gradient (an evaluation of the same derivative by
    # other code: ~5-10% of a small routed fit); else glmer's gradient decides, and its
    # Newton steps move x
    f, g = float(sol.objective), np.asarray(tmb.fit.gradient, dtype=float)[order]
    grad = None
    n_steps = 0
    step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
    if not -0.5 * float(g @ step) < DECREMENT_TOL:
        grad = make_grad()
        f, g = _checked_value(obj, grad, x)
    while grad is not None:
        step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        decrement = -0.5 * float(g @ step)
        if decrement < DECREMENT_TOL:
            break
        if n_steps == POLISH_STEPS:
            return None
        if n_steps == 0:
            _predict_from(obj, grad)
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
    if grad is not None:
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
    derivs, conv = None, None
    if not calc_derivs:
        vcov, how = sol.phi * _rx_vcov(obj, sol), "RX"
    else:
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


@dataclasses.dataclass
class WallOptimum:
    r"""The engine's optimum of a glmer model on the wall of a Toeplitz domain (a singular
    lag correlation matrix), in glmer's layout ``x = [theta, beta]`` with glmer's deviance
    ``f`` and gradient ``g`` there; :func:`~.glmm._fit_glmm` runs the two stages as well
    and keeps this one (:meth:`result`) only where it is lower (:data:`WALL_GAIN_TOL`).

    Where the two stages lose, glmer's fit is the wall optimum with lme4's conventions for
    a boundary (singular) fit: a
    :class:`~mixedmodels._errors.SingularFitWarning` (the Toeplitz structure's
    ``is_singular`` counts a singular ``R``); the fixed effects' standard errors from
    ``R_X``, conditional on ``theta`` (lme4's fallback where the Hessian is not positive
    definite, as it is not on the wall); and the convergence check of lme4's boundary
    fits, on the parameters that are not at the boundary: the gradient in the
    partial-autocorrelation chart ``w`` of each Toeplitz term on the wall
    (:meth:`~mixedmodels.covariance.correlated.Toeplitz.t_from_chart`),

    .. math:: g_w = J^\top g_t, \qquad J = \partial t / \partial w,

    in which the wall lies at infinity (``J`` vanishes along its normal), must be below
    :data:`~mixedmodels.diagnostics.convergence.CONV_GRAD_TOL`, with the rest of ``g``.
    """

    design: Design
    obj: GLMMObjective
    grad: object
    tmb: object
    x: np.ndarray
    f: float
    g: np.ndarray
    check_conv: bool
    t0: float

    @property
    def objective(self) -> float:
        return float(self.f)

    def chart_gradient(self) -> np.ndarray:
        """``g`` with each wall term's correlation block replaced by ``J' g_t``."""
        g = np.array(self.g, dtype=float)
        theta = self.obj.split(self.x)[0]
        offset = 0
        for i, (t, sl) in enumerate(zip(self.design.terms, self.design.theta_slices(),
                                        strict=True)):
            if i not in wall_terms(self.design, theta):
                continue
            S = t.structure
            idx = np.arange(sl.start, sl.stop)[S.n_sd:] + offset
            w = S.chart_from_t(np.asarray(theta[sl], dtype=float)[S.n_sd:])
            J = np.empty((idx.size, idx.size))
            for j in range(idx.size):
                e = w.astype(complex)
                e[j] += 1j * CHART_COMPLEX_STEP
                J[:, j] = S.t_from_chart(e).imag / CHART_COMPLEX_STEP
            g[idx] = J.T @ g[idx]
        return g

    def result(self):
        """glmer's result at the wall optimum (class docstring)."""
        from ..diagnostics.convergence import CONV_GRAD_TOL, ConvergenceReport
        from ..diagnostics.separation import separated_columns
        from .glmm import _result, _rx_vcov, _solution_at, _StageLog
        from .trace import log_stage

        obj, design, tmb, x = self.obj, self.design, self.tmb, self.x
        log = _StageLog(obj)
        sol = _solution_at(obj, self.grad, x)
        pirls = obj.pirls
        if separated_columns(pirls.basis, design.X,
                             pirls.fisher_weights_at(sol.eta, sol.mu), pirls.prior).size:
            return None
        opt = dataclasses.replace(
            tmb.fit.opt, optimizer=f"glmmtmb engine: {tmb.fit.opt.optimizer} (Toeplitz wall)",
            x=x.copy(), fval=float(sol.objective), n_evals=int(tmb.fit.opt.n_evals),
            seconds=time.perf_counter() - self.t0)
        log_stage("glmer", "Laplace (engine, wall)", opt.optimizer, opt.n_evals,
                  opt.seconds, opt.fval)
        log.stage("Laplace")
        conv = None
        if self.check_conv:
            try:
                gw = self.chart_gradient()
            except ValueError:          # a partial autocorrelation rounds to +-1
                gw = np.full(x.size, np.inf)
            worst = float(np.max(np.abs(gw))) if gw.size else 0.0
            ok = worst <= CONV_GRAD_TOL
            groups = ", ".join(repr(design.terms[i].group)
                               for i in wall_terms(design, obj.split(x)[0]))
            wall = (f"the optimum lies on the wall of the Toeplitz domain of {groups} (a "
                    "singular correlation matrix): the deviance is not defined beyond it, "
                    "its Hessian there is not positive definite, and the fixed effects' "
                    "standard errors are conditional on the covariance parameters (R_X)")
            msg = "" if ok else (f"{wall}; the gradient along it (partial-autocorrelation "
                                 f"chart) is {worst:.3g}, above {CONV_GRAD_TOL:g}")
            conv = ConvergenceReport(gradient=gw, hessian=None,
                                     active=np.zeros(x.size, dtype=bool),
                                     newton_decrement=np.nan, converged=ok, message=msg,
                                     n_evals=0, note=wall if ok else "")
            if not ok:
                from .._errors import ConvergenceWarning
                from .._messages import emit_warning
                emit_warning(msg, ConvergenceWarning, stacklevel=4)
        vcov = sol.phi * _rx_vcov(obj, sol)
        return _result(design, obj, sol, sol.family, opt, opt, conv, vcov, "RX", None, [],
                       log)
