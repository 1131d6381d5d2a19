r"""Nakagawa-Schielzeth R² and the intraclass correlation, as ``performance`` computes them.

``performance::r2_nakagawa`` and ``performance::icc`` (0.10.2, with ``insight`` 0.19.0's
``get_variance``) split the variance of the linear predictor scale into

* ``fixed``: the sample variance (``n - 1``) of ``X beta`` over the rows of the fit;
* ``random``: for each random-effects term that is not observation-level, the mean over the
  rows of ``z_i' Sigma_k z_i`` (Johnson 2014's random-slope extension), ``Sigma_k`` the
  term's covariance and ``z_i`` the row's values of the term's effects taken from the
  fixed-effects matrix (an effect without a matching fixed-effects column is left out, as
  insight does, which warns that such a model inflates the conditional R²);
* ``residual`` = ``distribution`` + ``dispersion``. ``distribution`` is the
  distribution-specific variance on the link scale: ``sigma^2`` for linear models;
  ``pi^2 / 3``, 1 and ``pi^2 / 6`` for binomial logit, probit and cloglog links; for count
  families with a log link the lognormal approximation ``log(1 + V(mu0) / mu0^2)`` with
  ``mu0 = exp(beta_0)`` the intercept of the *null model* (the same model with the fixed
  effects replaced by an intercept, random effects, offsets and zero-inflation kept; refitted
  here through the recipe; for ``glmer_nb`` with the full model's shape held fixed, as
  lme4's ``update`` of a ``glmer.nb`` fit does), ``V`` the family's variance function
  (Poisson ``mu``, NB2 ``mu (1 + mu / theta)``, NB1 ``mu (1 + phi)``; zero-inflated: the
  mean over the rows of the full model's ``(1 - p)(mu + p mu^2)`` for Poisson and
  ``(1 - p) V(mu) + mu^2 (p^2 + p)`` for negative binomials, divided by ``mu0^2``); 0.25 for
  a square-root link; ``sigma^2`` for Gamma families; for glmmTMB's generalized Poisson
  (``genpois``, ``V(mu) = mu phi`` with ``phi = sigma()``) the same lognormal
  approximation with ``V(mu0) = mu0 phi``; for glmmTMB's beta family (logit link)
  performance's ``log(1 + V / mu0^2)`` with ``V = mu0 (1 - mu0) / (1 + phi)`` and
  ``mu0 = exp(beta_0)`` of the null model -- ``exp`` of a *logit*-scale intercept (an odds,
  not a mean), taken over from performance 0.10.2 as it is so that the numbers agree.
  Tweedie, Conway-Maxwell-Poisson and truncated families are not covered (performance's
  values for them rest on parameters that do not describe the distribution: the random
  effects' theta for ``compois``, ``sigma()`` as a mean for truncated Poisson).
  ``dispersion`` is the variance
  of observation-level random effects (a grouping factor with one level per row) in GLMMs
  (0 for linear models).

Then

.. math:: R^2_{marginal} = \frac{\sigma^2_f}{\sigma^2_f + \sigma^2_r + \sigma^2_\epsilon},
          \quad R^2_{conditional} = \frac{\sigma^2_f + \sigma^2_r}
          {\sigma^2_f + \sigma^2_r + \sigma^2_\epsilon}, \quad
          ICC_{adj} = \frac{\sigma^2_r}{\sigma^2_r + \sigma^2_\epsilon}, \quad
          ICC_{unadj} = \frac{\sigma^2_r}{\sigma^2_f + \sigma^2_r + \sigma^2_\epsilon}.

As in performance, a singular fit (an element of theta on its zero bound below 1e-5 for
lme4's class; a variance below 1e-5 for glmmTMB's) leaves the random variance undefined:
the conditional R² and the ICCs are NaN and the marginal R² is
``sigma_f^2 / (sigma_f^2 + sigma_e^2)``, with a warning.

One deliberate difference: insight sums the random variance over the *grouping factors*,
taking for each only the first term of that factor, so ``(x || g)`` (two terms of ``g``)
loses the slope's variance. Here every term counts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import MixedModelsError, MixedModelsWarning
from .._messages import user_stacklevel
from ..display.tables import Report, ReportDisplay
from .terms import fixed_terms, has_intercept

__all__ = ["ICCResult", "R2Result", "VarianceDecomposition", "icc", "icc_by_group",
           "intercept_variances", "r2_nakagawa", "variance_decomposition"]

#: performance's ``tolerance``: theta (lme4) or variances (glmmTMB) below it are zero.
SINGULAR_TOL = 1e-5
#: The null model's mean below which performance warns the lognormal approximation is poor.
SMALL_MU = 6.0
#: Distribution-specific variances of the binomial links (performance's).
_BINOMIAL_LINK_VAR = {"logit": np.pi ** 2 / 3, "probit": 1.0, "cloglog": np.pi ** 2 / 6}


class R2Warning(MixedModelsWarning):
    """A variance decomposition that performance would also flag (singular fits, small
    means, random slopes without fixed effects)."""


@dataclass(frozen=True, repr=False)
class VarianceDecomposition(ReportDisplay):
    """The variance components of the R² and ICC (link scale; module docstring).

    Attributes
    ----------
    fixed, random, residual, distribution, dispersion : float
        ``random`` is NaN for a singular fit.
    method : str
        How ``distribution`` was obtained.
    """

    fixed: float
    random: float
    residual: float
    distribution: float
    dispersion: float
    method: str

    def report(self) -> Report:
        """The printed layout (see ``ReportDisplay``)."""
        lines = [f"{k:<13} {getattr(self, k):.5g}" for k in
                 ("fixed", "random", "residual", "distribution", "dispersion")]
        return Report(("Variance components (link scale)", *lines,
                       f"distribution-specific variance: {self.method}"))


@dataclass(frozen=True, repr=False)
class R2Result(ReportDisplay):
    """Nakagawa-Schielzeth R² (:func:`r2_nakagawa`).

    Attributes
    ----------
    conditional : float
        Variance explained by fixed and random effects (NaN for singular fits).
    marginal : float
        Variance explained by the fixed effects.
    variances : VarianceDecomposition
    """

    conditional: float
    marginal: float
    variances: VarianceDecomposition

    def report(self) -> Report:
        """The printed layout (see ``ReportDisplay``)."""
        return Report(("R2 for Mixed Models", f"  Conditional R2: {self.conditional:.3f}",
                       f"     Marginal R2: {self.marginal:.3f}"))


@dataclass(frozen=True, repr=False)
class ICCResult(ReportDisplay):
    """Intraclass correlation (:func:`icc`).

    Attributes
    ----------
    adjusted : float
        ``random / (random + residual)``.
    unadjusted : float
        ``random / (fixed + random + residual)``.
    variances : VarianceDecomposition
    """

    adjusted: float
    unadjusted: float
    variances: VarianceDecomposition

    def report(self) -> Report:
        """The printed layout (see ``ReportDisplay``)."""
        return Report(("Intraclass Correlation Coefficient",
                       f"    Adjusted ICC: {self.adjusted:.3f}",
                       f"  Unadjusted ICC: {self.unadjusted:.3f}"))


# -- the model's pieces ------------------------------------------------------------------
def _is_tmb(m) -> bool:
    return callable(getattr(m, "component", None))


def _cond(m):
    """The lme4-style view of the conditional model (the fit itself for lme4's class)."""
    return m.component("cond") if _is_tmb(m) else m


def _kind(m) -> tuple[str, str]:
    """(family, link) in insight's terms: ``gaussian`` for linear mixed models."""
    family = getattr(m, "family", None)
    if family is None:
        return "gaussian", "identity"
    if _is_tmb(m):
        return m.family_name, m.density.links["mu"].name
    return family.name, family.link.name


def _var_fixed(view) -> float:
    eta = view.design.X @ np.asarray(view.beta, float)
    return float(np.var(eta, ddof=1)) if eta.size > 1 else 0.0


def _term_variance(view, k: int, t, cov: np.ndarray) -> float:
    """Mean over rows of ``z_i' Sigma z_i`` with ``z`` the fixed-effects columns named as
    the term's effects (insight's ``.compute_variance_random``)."""
    X = view.design.X
    fixed = list(view.design.fixed.names)
    cols, keep = [], []
    for j, name in enumerate(t.names):
        if name in fixed:
            cols.append(X[:, fixed.index(name)])
            keep.append(j)
        elif name == "Intercept":         # insight adds an intercept column when X has none
            cols.append(np.ones(X.shape[0]))
            keep.append(j)
    if not keep:
        return 0.0
    Z = np.column_stack(cols)
    S = cov[np.ix_(keep, keep)]
    return float(np.mean(np.einsum("ij,jk,ik->i", Z, S, Z)))


def _random_parts(view) -> tuple[float, float, bool]:
    """(random, observation-level) variances and whether an effect lacks a fixed column."""
    n = view.design.nobs
    fixed = set(view.design.fixed.names)
    random = dispersion = 0.0
    missing = False
    for k, (t, vt) in enumerate(zip(view.design.terms, view.varcorr.terms, strict=True)):
        part = _term_variance(view, k, t, np.asarray(vt.cov, float))
        missing |= any(nm not in fixed and nm != "Intercept" for nm in t.names)
        if t.nlevels == n:
            dispersion += part
        else:
            random += part
    return random, dispersion, missing


def _singular(m) -> bool:
    if _is_tmb(m):
        return any(bool(np.any(np.diag(np.atleast_2d(t.cov)) < SINGULAR_TOL))
                   for t in m.varcorr.terms)
    lower = m.design.theta_lower()
    theta = np.asarray(m.theta, float)
    return bool(np.any(np.abs(theta[lower == 0]) < SINGULAR_TOL))


# -- the distribution-specific variance ------------------------------------------------------
def _null_mu(m) -> float:
    """``exp`` of the intercept of the null model (fixed effects replaced by an intercept;
    refitted through the recipe unless the model has no other fixed terms)."""
    view = _cond(m)
    terms = fixed_terms(view.design)
    if not terms and has_intercept(view.design):
        null = m
    else:
        changes = " ".join(f"- {t.label}" for t in terms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MixedModelsWarning)
            null = m.update(f". ~ . {changes} + 1")
            if getattr(m, "shape_estimated", False):
                # lme4's update of a glmer.nb fit refits glmer with the full model's
                # negative binomial shape held fixed; performance's null model is that one
                null = null.recipe.fit_design(null.design, family=m.family,
                                              estimate_shape=False)
    view = _cond(null)
    # by position in the design, not by label (labels follow mm.options(coef_names=...))
    beta0 = float(np.asarray(view.beta, float)[list(view.design.fixed.names).index("Intercept")])
    return float(np.exp(beta0))


def _count_variance(m, family: str, mu0: float) -> float:
    """``V(mu0)`` (performance's ``vv``) for the count families, zero-inflation included."""
    zero_inflated = _is_tmb(m) and "zi" in m.design.components
    if family == "negative_binomial":          # glmer_nb: lme4's theta
        return mu0 * (1.0 + mu0 / float(m.family.theta))
    k = None
    if family in ("nbinom2", "nbinom1", "genpois"):
        k = float(m.sigma)                      # glmmTMB's sigma(): theta or phi
    if not zero_inflated:
        if family == "poisson":
            return mu0
        if family == "genpois":                 # glmmTMB's genpois()$variance(mu, phi)
            return mu0 * k
        if family == "nbinom2":
            return mu0 * (1.0 + mu0 / k)
        if family == "nbinom1":
            return mu0 * (1.0 + k)
    else:
        p = np.asarray(m.predict(type="zprob"), float)
        mu = np.asarray(m.predict(type="conditional"), float)
        if family == "poisson":
            return float(np.mean((1.0 - p) * (mu + p * mu * mu)))
        if family in ("nbinom2", "nbinom1"):
            v = mu * (1.0 + mu / k) if family == "nbinom2" else mu * (1.0 + k)
            return float(np.mean((1.0 - p) * v + mu * mu * (p * p + p)))
    raise MixedModelsError(_unsupported(family, "log"))


def _unsupported(family: str, link: str) -> str:
    return (f"r2/icc: the distribution-specific variance of the {family} family with the "
            f"{link} link is not defined here (performance's approximations cover "
            "gaussian, binomial (logit, probit, cloglog), Poisson and negative binomial "
            "(log, sqrt) and their zero-inflated glmmTMB versions, generalized Poisson "
            "(log), beta (logit) and Gamma)")


def _distribution_variance(m, family: str, link: str) -> tuple[float, str]:
    if family == "gaussian":
        if link != "identity":
            raise MixedModelsError(_unsupported(family, link))
        return float(m.sigma) ** 2, "residual variance sigma^2"
    if family == "binomial":
        if link not in _BINOMIAL_LINK_VAR:
            raise MixedModelsError(_unsupported(family, link))
        return float(_BINOMIAL_LINK_VAR[link]), f"binomial {link} link"
    if family == "Gamma":
        return float(m.sigma) ** 2, "Gamma: sigma^2"
    if family == "beta":
        if link != "logit":
            raise MixedModelsError(_unsupported(family, link))
        mu0 = _null_mu(m)
        phi = float(m.sigma)
        vv = mu0 * (1.0 - mu0) / (1.0 + phi)
        return (float(np.log1p(vv / mu0 ** 2)),
                "beta: log(1 + V/mu0^2), V = mu0 (1 - mu0) / (1 + phi), mu0 = exp(b0) "
                "(performance's)")
    if family in ("poisson", "nbinom1", "nbinom2", "negative_binomial", "genpois"):
        if link == "sqrt":
            return 0.25, "square-root link: 0.25"
        if link != "log":
            raise MixedModelsError(_unsupported(family, link))
        mu0 = _null_mu(m)
        if mu0 < SMALL_MU:
            warnings.warn(f"mu of {mu0:.1f} is too close to zero, the lognormal "
                          "approximation of the distribution-specific variance may be "
                          "unreliable (performance's warning)", R2Warning,
                          stacklevel=user_stacklevel())
        vv = _count_variance(m, family, mu0)
        return float(np.log1p(vv / mu0 ** 2)), "lognormal approximation log(1 + V(mu0)/mu0^2)"
    raise MixedModelsError(_unsupported(family, link))


def variance_decomposition(m) -> VarianceDecomposition:
    """The variance components of :func:`r2_nakagawa` and :func:`icc` (module docstring).

    Parameters
    ----------
    m : fitted model
        ``lmer``, ``glmer``, ``glmer_nb`` or ``glmmtmb`` fit (conditional model; glmmTMB
        dispersion models are ignored, as performance does).

    Returns
    -------
    VarianceDecomposition
    """
    if not hasattr(m, "design") or (not getattr(m.design, "terms", None) and not _is_tmb(m)):
        raise MixedModelsError("r2/icc need a mixed model (a fit with random effects)")
    view = _cond(m)
    if not view.design.terms:
        raise MixedModelsError("r2/icc need random effects in the conditional model")
    family, link = _kind(m)
    fixed = _var_fixed(view)
    random, dispersion, missing = _random_parts(view)
    if missing:
        warnings.warn("random slopes not present as fixed effects: this inflates the "
                      "conditional R2 (performance's warning); add the slopes' variables to "
                      "the fixed effects", R2Warning, stacklevel=user_stacklevel())
    if family == "gaussian":
        dispersion = 0.0
    if _singular(m):
        warnings.warn("some variance components equal zero (singular fit): the random "
                      "variance, the conditional R2 and the ICC are not computed",
                      R2Warning, stacklevel=user_stacklevel())
        random = float("nan")
    dist, method = _distribution_variance(m, family, link)
    return VarianceDecomposition(fixed, random, dist + dispersion, dist, dispersion, method)


def r2_nakagawa(m) -> R2Result:
    """Marginal and conditional R² of Nakagawa & Schielzeth (performance's
    ``r2_nakagawa``; module docstring).

    Parameters
    ----------
    m : fitted model

    Returns
    -------
    R2Result
        ``conditional``, ``marginal``, ``variances``.
    """
    v = variance_decomposition(m)
    if np.isnan(v.random):
        return R2Result(float("nan"), v.fixed / (v.fixed + v.residual), v)
    total = v.fixed + v.random + v.residual
    return R2Result((v.fixed + v.random) / total, v.fixed / total, v)


def intercept_variances(m) -> dict[str, float]:
    """insight's ``var.intercept``: per grouping factor, the variance of its random
    intercept (from the factor's first term that has one; observation-level factors
    included), in the order of the model's terms (the conditional model of a glmmtmb
    fit)."""
    view = _cond(m)
    out: dict[str, float] = {}
    for t, vt in zip(view.design.terms, view.varcorr.terms, strict=True):
        if t.group in out or "Intercept" not in t.names:
            continue
        j = list(t.names).index("Intercept")
        out[t.group] = float(np.atleast_2d(np.asarray(vt.cov, float))[j, j])
    return out


def icc_by_group(m) -> pd.DataFrame:
    r"""The intraclass correlation of each grouping factor (performance's
    ``icc(by_group = TRUE)``):

    .. math:: ICC_g = \frac{\sigma^2_{0g}}{\sigma^2_r + \sigma^2_\epsilon},

    ``sigma_0g^2`` the variance of the factor's random intercept, ``sigma_r^2`` and
    ``sigma_eps^2`` the random and residual variances of :func:`variance_decomposition`
    (with the variance of every term in ``sigma_r^2``: see the module docstring). With
    random slopes the ICC of a factor depends on the covariate, so the values are only
    indicative (a warning, as performance's).

    Parameters
    ----------
    m : fitted model

    Returns
    -------
    pandas.DataFrame
        Indexed by ``group``, one column ``ICC`` (NaN for a singular fit).
    """
    v = variance_decomposition(m)
    view = _cond(m)
    if any(nm != "Intercept" for t in view.design.terms for nm in t.names):
        warnings.warn("the model has random slopes: ICCs by grouping factor are not "
                      "accurate (performance's warning)", R2Warning, stacklevel=user_stacklevel())
    groups = intercept_variances(m)
    if not groups:
        raise MixedModelsError("icc(by_group=True) needs random intercepts: no grouping "
                               "factor of the model has one")
    denom = v.random + v.residual
    out = pd.DataFrame({"ICC": [g / denom for g in groups.values()]},
                       index=pd.Index(list(groups), name="group"))
    out.attrs["heading"] = ("ICC by Group",)
    return out


def icc(m) -> ICCResult:
    """Adjusted and unadjusted intraclass correlation (performance's ``icc``; module
    docstring).

    Parameters
    ----------
    m : fitted model

    Returns
    -------
    ICCResult
        ``adjusted``, ``unadjusted``, ``variances`` (NaN ICCs for singular fits).
    """
    v = variance_decomposition(m)
    total = v.fixed + v.random + v.residual
    return ICCResult(v.random / (v.random + v.residual), v.random / total, v)
