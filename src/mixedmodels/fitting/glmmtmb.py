r"""``glmmtmb``: glmmTMB's model class -- any family, zero-inflation, hurdles, dispersion
models -- fitted by the general Laplace engine.

The model (glmmTMB's): for observation ``i``

.. math::

    y_i \sim f(\,\cdot \mid \mu_i, \phi_i, \psi), \qquad
    g(\mu_i) = X_i\beta + Z_i b + o_i, \qquad
    \mathrm{logit}\,\pi_i = X^{zi}_i\beta_{zi} + Z^{zi}_i b_{zi}, \qquad
    \log\phi_i = X^{d}_i\beta_d,

with zero-inflation ``P(y = 0) = pi + (1 - pi) f(0)`` (for a zero-truncated family this is a
hurdle model: zeros with probability ``pi``, positive counts from the truncated family),
random effects ``b ~ N(0, Sigma(theta))`` per term and family parameters ``psi`` (Tweedie
power, Student-t df). Minus twice the log-likelihood is approximated by Laplace's method
(:mod:`mixedmodels.objective.laplace`) and minimized over the parameter layout
(:mod:`mixedmodels.fitting.laplace_fit`): quasi-Newton with the exact gradient, Newton steps
with the Hessian of that gradient, which also gives the standard errors (``2 H^{-1}``).
``REML=True`` integrates the conditional fixed effects out (glmmTMB's REML).

Fitting runs in two stages: the model without random effects from moment starting values
(cheap: no inner problem), then the full model from there.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError, MixedModelsWarning
from .._messages import user_stacklevel
from .._threads import blas_threads
from ..backends.dask import is_dask_input
from ..design import Design, materialize
from ..design.lhs import binomial_parts, make_response, response_variables
from ..families import Binomial as DevianceBinomial
from ..families.density import ModelDensity
from ..families.registry import make_response_family
from ..families.wrappers import ZeroInflated
from ..formula import parse_formula
from ..formula.components import parse_component
from ..objective.laplace import LaplaceObjective
from ..objective.laplace.parameters import FamilyParameter, make_layout
from ..results.glmmtmb import GlmmTMBResult
from ..results.recipe import FitRecipe
from .common import collect_warnings
from .glmmtmb_gaussian import gaussian_profiled_start
from .glmmtmb_wall import continue_inside, has_wall
from .laplace_fit import optimize_laplace
from .range_start import positional_terms, range_escape_start

__all__ = ["FIXED_GAUSSIAN_LOG_VARIANCE", "GlmmTMBWarning", "glmmtmb"]

#: ``dispformula = ~0`` for a Gaussian model: glmmTMB fixes ``log sigma^2`` at
#: ``log(sqrt(.Machine$double.eps))``, so the residual sd is about 1.2e-4 (the random
#: effects then carry all the variation).
FIXED_GAUSSIAN_LOG_VARIANCE = 0.5 * float(np.log(np.finfo(float).eps))
#: Standard deviation of the random effects at the start, relative to the residual sd of
#: the linked starting means (link scale).
THETA_START_SCALE = 0.5
#: Families whose support is the real line: no zero-inflation or hurdle.
REAL_LINE_FAMILIES = frozenset({"gaussian", "t"})
#: A family parameter that the stage without random effects moved farther than this (on
#: its link scale) from its own start is not carried into the full model: without the
#: random effects the t's df can run to its flat Gaussian limit (log df ~ 20), where the
#: full model's gradient in it vanishes and the optimizer stays on that plateau (6.2
#: deviance units above glmmTMB's optimum on Orthodont with dispformula = ~Sex).
FAMILY_CARRY_MAX_SHIFT = 3.0
#: Zero-inflation probabilities beyond these are reported (glmmTMB's diagnose()).
ZI_EXTREME = (1e-6, 1.0 - 1e-6)
#: Start of the zero-inflation coefficients when the stage without random effects drove
#: every zero-inflation probability below ``ZI_EXTREME[0]``: glmmTMB's own start (all 0,
#: probability 1/2). There the logistic is flat (its derivative ~ exp(eta)), so the full
#: model's gradient in the coefficients vanishes and the optimizer stays put even when the
#: random effects leave excess zeros to explain (nbinom2, zi ~ 1, (x | g), n = 3000: the
#: carried logit -28.4 stayed there, 0.057 deviance units above glmmTMB's optimum at -5.63).
ZI_RESTART = 0.0
#: A dispersion coefficient that the stage without random effects moved farther than this
#: (log scale) from its moment start restarts the full model's conditional and dispersion
#: coefficients at their moment starts: a truncated negative binomial's likelihood has a
#: finite limit as the size and the mean go to 0 together (the log-series distribution),
#: and without the random effects the fit can run off along that ridge (log size -23.9,
#: intercept -22.7), where the full model's gradients vanish; we stayed there, 1.40
#: deviance units above glmmTMB's interior optimum (truncated_nbinom2 + diag(x | g)).
DISP_CARRY_MAX_SHIFT = 10.0


class GlmmTMBWarning(MixedModelsWarning):
    """A fit of glmmTMB's class converged to a doubtful point (an extreme zero-inflation
    probability, a non-positive-definite Hessian)."""


def _components(spec, ziformula, dispformula, fam):
    zi = parse_component(ziformula, "zi", spec)
    disp = parse_component(dispformula, "disp", spec)
    base = fam
    if not zi.is_empty and base.name in REAL_LINE_FAMILIES:
        raise FormulaError(
            f"ziformula {ziformula!r} adds a probability mass at zero; the {base.name} "
            "family's response ranges over the whole real line, so a zero is not special "
            "(zero-inflation is for counts, and a hurdle for positive responses such as "
            "Gamma, beta or lognormal)")
    if zi.is_empty and base.name == "ziGamma":
        raise FormulaError("family='ziGamma' is a hurdle model: give the zero model as "
                           "ziformula (e.g. ziformula='~1')")
    fixed_disp = False
    if not base.has_dispersion:
        if (not disp.is_empty and disp.fixed.replace(" ", "") != "1") or disp.random:
            raise FormulaError(
                f"the {base.name} family has no dispersion parameter; remove dispformula "
                f"{dispformula!r}")
        disp = None
    elif disp.is_empty:
        if base.name != "gaussian":
            raise FormulaError(
                f"dispformula '~0' (a fixed, tiny dispersion) is only for the gaussian "
                f"family, not {base.name}")
        disp = dataclasses.replace(disp, fixed="1")
        fixed_disp = True
    extra = tuple(c for c in (None if zi.is_empty else zi, disp) if c is not None)
    return dataclasses.replace(spec, extra_components=extra), fixed_disp


def _response(fam):
    """materialize()'s response callable and how y/size/weights are formed."""
    if fam.needs_size:
        return make_response(DevianceBinomial())
    return make_response(_NumericFamily(fam.name))


class _NumericFamily:
    """The name the numeric response parser needs for its messages."""

    def __init__(self, name):
        self.name = name


def _start(density, fam, design: Design, y, size, w, comps):
    """Moment start of the fixed effects: least squares of the link of the family's
    starting means on X; dispersion from the family's moment estimate."""
    mu0 = fam.start_mu(y, weights=w, size=size)
    if fam.needs_size:
        mu0 = (y + 0.5) / (size + 1.0)
    with np.errstate(all="ignore"):
        eta0 = density.links["mu"].link(mu0)
    eta0 = np.where(np.isfinite(eta0), eta0, 0.0)
    starts = {}
    X = comps["cond"].X
    if X.shape[1]:
        beta, *_ = np.linalg.lstsq(X, eta0 - comps["cond"].offset, rcond=None)
        starts["cond"] = beta
    if "disp" in comps and comps["disp"].p:
        with np.errstate(all="ignore"):
            mu_hat = density.links["mu"].linkinv(X @ starts.get("cond", np.zeros(0))
                                                  + comps["cond"].offset)
        phi0 = fam.start_phi(y, mu_hat, weights=w, size=size)
        b = np.zeros(comps["disp"].p)
        names = comps["disp"].fixed.names
        if "Intercept" in names:
            b[list(names).index("Intercept")] = np.log(max(float(phi0), 1e-8))
        starts["disp"] = b
    return starts


def _family_parameters(fam, y) -> list[FamilyParameter]:
    extras = fam.start_extras(y)
    out = []
    for name in fam.extras:
        link = fam.parameter_link(name)
        start = float(link.link(np.asarray(extras.get(name, 1.0), dtype=float)))
        out.append(FamilyParameter(name, start, label=name))
    return out


def _checked_start(start: dict, layout) -> dict:
    """The ``start=`` blocks as arrays, each named in the layout and of its size (a block
    that does not fit is an error, not silently ignored)."""
    out = {}
    for name, value in start.items():
        if name not in layout:
            raise ValueError(f"start: no parameter block {name!r} in this model; its blocks "
                             f"are {', '.join(layout.names_of())}")
        v = np.atleast_1d(np.asarray(value, dtype=float))
        size = layout.block(name).size
        if v.size != size:
            labels = layout.labels[layout.slice(name)]
            raise ValueError(f"start[{name!r}] has {v.size} values but the block has {size} "
                             f"({', '.join(labels)})")
        out[name] = v
    return out


def _zi_vanished(fit, density) -> bool:
    """Every zero-inflation probability of ``fit`` below ``ZI_EXTREME[0]`` (see
    :data:`ZI_RESTART`)."""
    j = density.channels.index("zi")
    with np.errstate(over="ignore"):
        pz = 1.0 / (1.0 + np.exp(-fit.solution.eta[:, j]))
    return bool(np.all(pz < ZI_EXTREME[0]))


def _restart_runaway_dispersion(starts: dict, moment: dict, fixed_disp: bool) -> dict:
    """``starts`` (the stage without random effects) with the conditional and dispersion
    coefficients back at their moment starts ``moment`` when a dispersion coefficient moved
    more than :data:`DISP_CARRY_MAX_SHIFT` from its own (see there)."""
    if fixed_disp or "disp" not in starts or "disp" not in moment:
        return starts
    if np.max(np.abs(starts["disp"] - moment["disp"]), initial=0.0) <= DISP_CARRY_MAX_SHIFT:
        return starts
    out = dict(starts)
    for name in ("cond", "disp"):
        if name in moment:
            out[name] = np.array(moment[name], dtype=float)
    return out


def _carried(fp: FamilyParameter, value: float) -> FamilyParameter:
    """``fp`` starting at the no-random-effects stage's ``value``, unless that ran off
    (see :data:`FAMILY_CARRY_MAX_SHIFT`): then at its own start."""
    if np.isfinite(value) and abs(value - fp.start) <= FAMILY_CARRY_MAX_SHIFT:
        return dataclasses.replace(fp, start=value)
    return fp


def _strip_random(comps: dict) -> dict:
    return {k: dataclasses.replace(v, terms=()) for k, v in comps.items()}


def _theta_scale(density, fam, design, y, size, w, starts) -> float:
    """Start sd of the random effects: :data:`THETA_START_SCALE` times the residual sd of
    the link of the family's starting means about the fixed-effects start -- the scale of
    variation the random effects can explain, on the link scale (the response's own scale
    for an identity link)."""
    mu0 = (y + 0.5) / (size + 1.0) if fam.needs_size else fam.start_mu(y, weights=w,
                                                                      size=size)
    with np.errstate(all="ignore"):
        eta0 = density.links["mu"].link(mu0)
    fitted = design.X @ starts.get("cond", np.zeros(design.p)) + design.offset
    r = (eta0 - fitted)[np.isfinite(eta0)]
    sd = float(np.std(r)) if r.size else 1.0
    return THETA_START_SCALE * (sd if np.isfinite(sd) and sd > 0 else 1.0)


def fit_glmmtmb(design: Design, fam, *, REML: bool = False, fixed_disp: bool = False,
                start=None, check_conv: bool = True) -> GlmmTMBResult:
    """Fit a materialized design of glmmTMB's class.

    Parameters
    ----------
    design : Design
        With the ``zi`` / ``disp`` components of the model.
    fam : ResponseFamily
        The response family (without its zero-inflation wrapper).
    REML : bool
        Integrate the conditional fixed effects out.
    fixed_disp : bool
        Hold a gaussian's log residual variance at :data:`FIXED_GAUSSIAN_LOG_VARIANCE`.
    start : dict or array-like, optional
        ``{block name: values}`` of the layout, or the conditional model's theta.
    check_conv : bool
        Accepted for the refitting interface; the convergence check (the Newton decrement
        at the optimum) is always made, it costs nothing beyond the Hessian.

    Returns
    -------
    GlmmTMBResult
    """
    if start is not None and not isinstance(start, dict):
        start = {"theta.cond": np.asarray(start, dtype=float)}
    comps = design.components
    fam_model = ZeroInflated(fam) if "zi" in comps else fam
    density = ModelDensity(fam_model)
    if fam.needs_size:
        y, size, w = binomial_parts(design)
    else:
        y, size = design.y, None
        w = None if design.weights is None else np.asarray(design.weights)
    density.check_response(y, design.spec.response, size=size, weights=w)
    starts = _start(density, fam, design, y, size, w, comps)
    moment = dict(starts)
    if fixed_disp:
        starts["disp"] = np.array([FIXED_GAUSSIAN_LOG_VARIANCE])
    fparams = _family_parameters(fam, y)
    # (not with sigma fixed near zero: the profiled deviance would subtract cross-products
    # ~1e8 times larger than the residual sum of squares it needs)
    profiled = None if (start or fixed_disp) else gaussian_profiled_start(
        design, fam, comps, reml=bool(REML), weights=w, fixed_log_variance=None)
    if profiled is not None:
        # a Gaussian LMM: the profiled deviance's optimum is the start, the general
        # engine adds its exact gradient, Hessian and Newton polish
        return _finish(design, density, fam, y, size, w, comps, fparams, starts,
                       profiled, REML, fixed_disp)
    # stage 1: no random effects (and, for REML, the fixed effects still estimated)
    bare = _strip_random(comps)
    layout0 = make_layout(bare, fparams, beta_start=starts, fixed_beta={"disp": fixed_disp})
    obj0 = LaplaceObjective(density, y, bare, layout0, weights=w, size=size)
    fit0 = optimize_laplace(obj0, layout0.start, hessian=False)
    x0 = fit0.x
    starts = {name: layout0.get(x0, f"beta.{name}") for name in bare
              if f"beta.{name}" in layout0}
    fparams = [_carried(fp, float(layout0.get(x0, f"family.{fp.channel}")[0]))
               for fp in fparams]
    if "zi" in starts and _zi_vanished(fit0, density):
        starts["zi"] = np.full_like(starts["zi"], ZI_RESTART)
    starts = _restart_runaway_dispersion(starts, moment, fixed_disp)
    # stage 2: the full model (its layout is made by _finish; here only to check start=)
    scale = _theta_scale(density, fam, design, y, size, w, starts)
    theta0 = {}
    for name, lp in comps.items():
        if lp.terms:
            sd = scale if name == "cond" else THETA_START_SCALE
            theta0[f"theta.{name}"] = np.concatenate([t.structure.start(sd)
                                                      for t in lp.terms])
    if start:
        layout = make_layout(comps, fparams, beta_start=starts,
                             fixed_beta={"disp": fixed_disp}, reml=REML)
        theta0.update(_checked_start(start, layout))
    return _finish(design, density, fam, y, size, w, comps, fparams, starts, theta0,
                   REML, fixed_disp, range_search=not (start and any(
                       k.startswith("theta") for k in start)),
                   marginal_start=not start)


def _finish(design, density, fam, y, size, w, comps, fparams, starts, blocks, REML,
            fixed_disp, range_search: bool = False,
            marginal_start: bool = False) -> GlmmTMBResult:
    """Stage 2: the full model from ``blocks`` (starting values by layout block); with
    ``range_search`` the optimum of a model with distance-based terms is checked against a
    few other ranges and the model fitted again from a better one (:mod:`.range_start`);
    with ``marginal_start`` the conditional fixed effects (from the fit without random
    effects) are first moved to keep the marginal means (:func:`_marginal_mean_start`)."""
    layout = make_layout(comps, fparams, beta_start=starts,
                         fixed_beta={"disp": fixed_disp}, reml=REML)
    x_start = layout.pack({k: v for k, v in blocks.items() if k in layout})
    obj = LaplaceObjective(density, y, comps, layout, weights=w, size=size, reml=REML)
    # sigma held at eps^(1/4): the inner Hessian's condition ~1e8 rounds the gradient at
    # the closing Hessian's forward-difference scale (see LaplaceObjective)
    obj.rounded_gradients = bool(fixed_disp and obj._quadratic)
    if marginal_start and "beta.cond" in layout:
        x_start = _marginal_mean_start(obj, density, comps, x_start)
    fit = optimize_laplace(obj, x_start)
    if not fit.converged and has_wall(obj):
        # stopped at the wall of a Toeplitz correlation's domain (glmmtmb_wall)
        fit = continue_inside(obj, fit)
    if range_search and any(True for _ in positional_terms(obj, comps)):
        fit = _escape_range_optimum(obj, comps, fit, x_start)
    if fit.message:
        warnings.warn(fit.message, GlmmTMBWarning, stacklevel=user_stacklevel())
    _check_zero_inflation(fit, obj, density)
    result = GlmmTMBResult(design, density, fam.name, layout, fit, bool(REML), obj)
    recipe = FitRecipe.make(None, design.spec.formula, None, {}, fit_glmmtmb,
                            {"fam": fam, "REML": bool(REML), "fixed_disp": fixed_disp})
    return dataclasses.replace(result, recipe=recipe)


def _marginal_mean_start(obj, density, comps, x: np.ndarray) -> np.ndarray:
    r"""``x`` with the conditional fixed effects moved so that the model's marginal means
    match those of the fit without random effects they come from (a log link): with
    random effects of variance ``v_i = Var([Z b]_i)`` on the linear predictor,
    ``E[y_i] = exp(x_i' beta + v_i / 2)``, so ``beta`` starts at the least-squares
    solution of ``X beta = X beta_0 - v / 2``. From the unshifted start the intercept is
    about ``v / 2`` too high and the quasi-Newton method spends its first iterations
    finding that out (over the structures fixtures with a log link: 11 fewer gradients
    in 11 fits; homdiag_pois 8 -> 6, ar1_pois 11 -> 8). The logit's analogue (the
    attenuation ``beta / sqrt(1 + 0.346 v)``) was measured and left out: one gradient
    more on three of seven binomial fixtures, none fewer."""
    if density.links["mu"].name != "log":
        return x
    S = obj.structure
    cond = [ts for ts in S.terms if ts.component == "cond"]
    X = comps["cond"].X
    if not cond or not X.shape[1]:
        return x
    a = S.slot_values(S.lambdas(obj.theta(x)))
    v = sum(np.sum(a[:, ts.slots] ** 2, axis=1) for ts in cond)
    shift, *_ = np.linalg.lstsq(X, 0.5 * v, rcond=None)
    out = x.copy()
    out[obj.layout.slice("beta.cond")] -= shift
    return out


def _escape_range_optimum(obj, comps, fit, x_start):
    """``fit``, or the fit from the better point :func:`.range_start.range_escape_start`
    finds for a distance-based term's range when it finds one (whichever fit is lower)."""
    x_alt = range_escape_start(obj, positional_terms(obj, comps), fit.x,
                               float(fit.solution.objective), x_start)
    if x_alt is None:
        obj(fit.x)          # the objective's workspace back at the optimum
        return fit
    alt = optimize_laplace(obj, x_alt)
    if alt.solution.objective < fit.solution.objective:
        return alt
    obj(fit.x)
    return fit


def _check_zero_inflation(fit, obj, density) -> None:
    if "zi" not in density.channels:
        return
    j = density.channels.index("zi")
    with np.errstate(over="ignore"):
        pz = 1.0 / (1.0 + np.exp(-fit.solution.eta[:, j]))
    lo, hi = ZI_EXTREME
    if np.all(pz < lo):
        warnings.warn(
            f"the zero-inflation probability is below {lo:g} for every observation: the "
            "data show no excess zeros and the ziformula is probably unnecessary (its "
            "coefficients and standard errors are not meaningful)", GlmmTMBWarning,
            stacklevel=user_stacklevel())
    elif np.any((pz < lo) | (pz > hi)):
        warnings.warn(
            "the zero-inflation probability is driven to 0 or 1 for some observations "
            f"(range {pz.min():.3g} to {pz.max():.3g}); a zero-inflation coefficient may be "
            "at infinity (complete separation of the zeros)", GlmmTMBWarning,
            stacklevel=user_stacklevel())


def glmmtmb(
    formula: str,
    data: pd.DataFrame,
    family="gaussian",
    *,
    link: str | None = None,
    ziformula: str = "~0",
    dispformula: str = "~1",
    REML: bool = False,
    weights=None,
    offset=None,
    start: dict | None = None,
    contrasts: dict | None = None,
    covariance_matrices: dict | None = None,
) -> GlmmTMBResult:
    """Fit a model of glmmTMB's class (zero-inflation, hurdles, dispersion models).

    Parameters
    ----------
    formula : str
        Conditional model, ``"response ~ fixed + (expr | group)"`` as in :func:`lmer`.
        Binomial-type responses as in :func:`glmer` (0/1, proportions with ``weights=``
        as trials, ``cbind(successes, failures)``).
    data : pandas.DataFrame
    family : str or ResponseFamily
        glmmTMB's families: ``gaussian``, ``binomial``, ``betabinomial``, ``poisson``,
        ``genpois``, ``compois``, ``nbinom1``, ``nbinom2``, ``nbinom12``,
        ``truncated_poisson``, ``truncated_genpois``, ``truncated_nbinom1``,
        ``truncated_nbinom2``, ``Gamma``, ``ziGamma``, ``beta`` (``beta_family``),
        ``tweedie``, ``lognormal``, ``t``.
    link : str, optional
        Link of the conditional mean (the family's default otherwise).
    ziformula : str
        One-sided formula of the zero-inflation probability (logit scale), random effects
        allowed: ``"~1"``, ``"~ x + (1 | g)"``, ``"~."`` (the conditional model's right-hand
        side); ``"~0"`` (default) for none. With a truncated family it is the hurdle.
    dispformula : str
        One-sided formula of the dispersion (log scale; glmmTMB 1.1.5's parameterization:
        for the gaussian ``log sigma^2``). ``"~0"`` for a gaussian fixes the residual
        variance near zero.
    REML : bool
        Integrate out the conditional fixed effects (glmmTMB's REML).
    weights : str or array-like, optional
        Prior weights multiplying each observation's log-likelihood (binomial
        proportions: the numbers of trials).
    offset : str or array-like, optional
        Offset of the conditional model.
    start : dict, optional
        Starting values of blocks of the parameter layout (``{"theta.cond": [...]}``).
    contrasts : dict, optional
        Contrasts of categorical predictors by column, as for :func:`~mixedmodels.lmer`
        (every component uses them).
    covariance_matrices : dict, optional
        Known matrices of ``propto`` and ``equalto`` terms by the name the formula gives
        them (``propto(0 + sp | g, K)``, ``equalto(1 | species, K)`` with
        ``{"K": K}``); see docs/structures.md for the covariance structures.

    Returns
    -------
    GlmmTMBResult

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.glmmtmb("count ~ spp + mined + (1 | site)", mm.datasets.load("Salamanders"),
    ...                family="nbinom2", ziformula="~ spp + mined")
    >>> round(m.objective, 2)
    1634.3
    """
    if not isinstance(REML, bool | np.bool_):
        raise TypeError(f"REML must be True or False, got {REML!r}")
    if is_dask_input(data):
        raise NotImplementedError(
            "glmmtmb does not fit Dask input: its Laplace engine evaluates per-row "
            "densities and their derivatives (zero-inflation, dispersion and conditional "
            "models together) at every inner Newton step and for every gradient, which is "
            "not one cross-product reduction per step; for a binomial or Poisson model "
            "without ziformula/dispformula use mm.glmer(formula, ddf, family=...), which "
            "fits Dask input, or fit on ddf.compute() when it fits in memory")
    messages: list[str] = []
    with collect_warnings(messages):
        fam = make_response_family(family, link)
        spec, fixed_disp = _components(parse_formula(formula), ziformula, dispformula, fam)
        design = materialize(spec, data, weights=weights, offset=offset,
                             response=_response(fam),
                             response_vars=response_variables(spec.response),
                             require_random=False, contrasts=contrasts,
                             covariance_matrices=covariance_matrices)
        for lp in design.components.values():
            for t in lp.terms:
                if t.nlevels < 2 and not t.structured:
                    raise DataError(
                        f"grouping factor {t.group!r} has only {t.nlevels} level; a random "
                        "effect needs at least 2 groups")
        dense = max((lp.q for lp in design.components.values()), default=0)
        with blas_threads(dense):
            result = fit_glmmtmb(design, fam, REML=REML, fixed_disp=fixed_disp,
                                 start=start)
    options = {"family": family, "link": link, "ziformula": ziformula,
               "dispformula": dispformula, "REML": REML, "weights": weights,
               "offset": offset, "start": start, "contrasts": contrasts,
               "covariance_matrices": covariance_matrices}
    recipe = FitRecipe.make(glmmtmb, formula, data, options, fit_glmmtmb,
                            result.recipe.design_kwargs)
    return dataclasses.replace(result, messages=tuple(messages), recipe=recipe)
