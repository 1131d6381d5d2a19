r"""The priors of one model, resolved against its design, and their deviance.

:class:`ModelPriors` holds one covariance prior per random-effects term (or None), the
fixed-effect prior and the residual prior, every default filled in for the model (blme's
defaults depend on the term's dimension and on LMM vs GLMM). Its deviance at
``(Lambda_k, beta, sigma)`` comes in blme's parts (:mod:`.priors`):

.. math::

    D_{prior} = \sum_k e_k(\Lambda, \beta)\,\sigma^{k} + \pi(\Lambda) + c + d\,\log\sigma^2 .
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._messages import emit_warning
from .priors import (
    DEFAULT,
    Normal,
    Point,
    Prior,
    PriorContext,
    PriorError,
    PriorTypeError,
    PriorWarning,
    T,
    Wishart,
)

__all__ = ["ModelPriors", "PriorParts", "PriorWarning", "resolve_priors"]


@dataclass(frozen=True)
class PriorParts:
    """The prior deviance at one point, in blme's parts.

    Attributes
    ----------
    exponential : dict of int -> float
        ``e_k`` by power ``k`` of sigma.
    polynomial : float
    constant : float
    df : float
        Coefficient of ``log sigma^2``.
    """

    exponential: dict
    polynomial: float
    constant: float
    df: float

    def total(self, sigma: float = 1.0) -> float:
        """The prior deviance at ``sigma``."""
        out = self.polynomial + self.constant
        if self.df:
            out += self.df * math.log(sigma * sigma)
        for k, e in self.exponential.items():
            if e:
                out += e * sigma ** k
        return out


@dataclass(frozen=True)
class ModelPriors:
    """Resolved priors of a model.

    Attributes
    ----------
    cov : tuple of (Prior or None)
        One per random-effects term, in the design's term order.
    fixef : Prior or None
    resid : Prior or None
        LMMs only.
    groups : tuple of str
        Grouping factor of each term (for display).
    glmm : bool
    """

    cov: tuple
    fixef: Prior | None
    resid: Prior | None
    groups: tuple
    glmm: bool

    # -- what the objective needs to know ------------------------------------------------
    @property
    def any(self) -> bool:
        """Some prior is applied."""
        return self.fixef is not None or self.resid is not None or any(
            c is not None for c in self.cov)

    @property
    def fixed_sigma(self) -> float | None:
        """The residual sd a point prior fixes (None when sigma is estimated)."""
        return self.resid.sigma if isinstance(self.resid, Point) else None

    @property
    def beta_numeric(self) -> bool:
        """The fixed effects cannot be profiled (a t prior): they join the optimizer."""
        return isinstance(self.fixef, T)

    @property
    def normal_fixef(self) -> Normal | None:
        return self.fixef if isinstance(self.fixef, Normal) else None

    @property
    def constant(self) -> float:
        parts = [self.fixef, self.resid, *self.cov]
        return float(sum(p.constant for p in parts if p is not None and not
                         isinstance(p, Point)))

    @property
    def df(self) -> float:
        parts = [self.fixef, self.resid, *self.cov]
        return float(sum(p.df_adjust for p in parts if p is not None and not
                         isinstance(p, Point)))

    def sigma_powers(self) -> set[int]:
        """Powers of sigma in the exponential terms other than -2 (blme's "extra"
        exponential terms, which decide how sigma is profiled)."""
        powers = {p.sigma_power() for p in [*self.cov, self.resid]
                  if p is not None and not isinstance(p, Point)}
        return {k for k in powers if k not in (0, -2)}

    def interior_theta(self, design) -> np.ndarray:
        """Indices of the theta entries (Cholesky diagonals) whose term's prior is infinite
        at zero: the estimate lies inside, so they can be optimized on the log scale."""
        out = []
        for prior, t, sl in zip(self.cov, design.terms, design.theta_slices(), strict=True):
            if prior is not None and prior.infinite_at_zero():
                idx = np.arange(sl.start, sl.stop)
                out.append(idx[np.isfinite(t.structure.lower_bounds())])
        return np.concatenate(out) if out else np.zeros(0, dtype=int)

    # -- the deviance --------------------------------------------------------------------
    def cov_parts(self, lams: list) -> tuple[dict, float]:
        """Exponential terms (by power) and polynomial of the covariance priors at the
        relative covariance factors ``lams`` (one p x p Lambda per term)."""
        exp: dict = {}
        poly = 0.0
        for prior, lam in zip(self.cov, lams, strict=True):
            if prior is None:
                continue
            # gamma / inverse gamma priors are on a scalar term's sd (Lambda is 1 x 1)
            arg = float(lam[0, 0]) if prior.scalar_term else lam
            k = prior.sigma_power()
            exp[k] = exp.get(k, 0.0) + prior.exponential(arg)
            poly += prior.polynomial(arg)
        return exp, poly

    def parts(self, lams: list, beta: np.ndarray, sigma: float | None = None) -> PriorParts:
        """All parts at ``(Lambda, beta)``; ``sigma`` only for a common-scale t prior (whose
        exponential term is not a power of sigma)."""
        exp, poly = self.cov_parts(lams)
        if self.fixef is not None:
            if isinstance(self.fixef, T):
                e = self.fixef.exponential(beta, sigma)
                exp[0] = exp.get(0, 0.0) + e
            else:
                k = self.fixef.sigma_power()
                exp[k] = exp.get(k, 0.0) + self.fixef.exponential(beta)
        if self.resid is not None and not isinstance(self.resid, Point):
            k = self.resid.sigma_power()
            exp[k] = exp.get(k, 0.0) + self.resid.exponential()
        return PriorParts(exp, poly, self.constant, self.df)

    # -- display -------------------------------------------------------------------------
    def describe(self) -> list[str]:
        """blme's prior lines (``Cov prior  : Subject ~ wishart(...)``)."""
        lines: list[str] = []
        cov = [f"{g} ~ {p.describe()}" for g, p in zip(self.groups, self.cov, strict=True)
               if p is not None]
        for i, text in enumerate(cov):
            lines.append(("Cov prior  : " if i == 0 else "           : ") + text)
        if self.fixef is not None:
            lines.append(f"Fixef prior: {self.fixef.describe()}")
        if self.resid is not None:
            lines.append(f"Resid prior: {self.resid.describe()}")
        return lines

    def __repr__(self) -> str:
        return "ModelPriors(" + "; ".join(self.describe() or ["none"]) + ")"


# =========================================================================================
# resolution
# =========================================================================================

def _check_prior(value, arg: str) -> Prior | None:
    if value is None or isinstance(value, Prior):
        return value
    hint = ""
    if isinstance(value, str):
        hint = f"; write mm.priors.{value.split('(')[0].strip()}() instead of a string"
    elif callable(value):
        hint = "; call it: pass mm.priors.wishart(), not mm.priors.wishart"
    raise PriorTypeError(f"{arg} must be a prior such as mm.priors.wishart() or None, got "
                    f"{value!r}{hint}")


def _cov_assignment(cov_prior, design) -> list:
    """The unresolved prior of each term from ``cov_prior`` (see :func:`resolve_priors`)."""
    terms = design.terms
    groups = [t.group for t in terms]
    if cov_prior is DEFAULT:
        return [Wishart() for _ in terms]
    if isinstance(cov_prior, dict):
        unknown = [g for g in cov_prior if g not in groups and g != "default"]
        if unknown:
            raise PriorError(f"cov_prior names grouping factor(s) {unknown} that are not in "
                             f"the model; its grouping factors are {sorted(set(groups))}")
        default = _check_prior(cov_prior.get("default"), "cov_prior['default']") \
            if "default" not in groups else None
        return [_check_prior(cov_prior[g], f"cov_prior[{g!r}]") if g in cov_prior else default
                for g in groups]
    prior = _check_prior(cov_prior, "cov_prior")
    return [prior for _ in terms]


def resolve_priors(design, cov_prior=DEFAULT, fixef_prior=None, resid_prior=None, *,
                   glmm: bool = False) -> ModelPriors:
    """Resolve the prior arguments of :func:`~mixedmodels.blmer` / ``bglmer`` for a design.

    Parameters
    ----------
    design : Design
    cov_prior : Prior, dict, None or DEFAULT
        One prior for every term, ``{group: prior}`` (terms of other groups get
        ``cov_prior["default"]`` when given, else none), None for no covariance prior, or
        ``DEFAULT`` (blme's default: :func:`~mixedmodels.bayes.priors.wishart` per term).
    fixef_prior, resid_prior : Prior or None
    glmm : bool

    Returns
    -------
    ModelPriors
    """
    assigned = _cov_assignment(cov_prior, design)
    cov = []
    for t, prior in zip(design.terms, assigned, strict=True):
        if prior is None:
            cov.append(None)
            continue
        label = f"the ({' + '.join(t.names)} | {t.group}) term"
        ctx = PriorContext("cov", glmm=glmm, dim=t.p, label=label)
        resolved = prior.resolve(ctx)
        if resolved is None:
            emit_warning(f"a {prior.blme_name}() prior is for a term with one random effect "
                         f"per level; it is ignored for {label}, which has {t.p} (use "
                         "wishart() or invwishart())", PriorWarning, stacklevel=4)
        cov.append(resolved)
    names = tuple(design.fixed.names)
    fixef = _check_prior(fixef_prior, "fixef_prior")
    if fixef is not None:
        if not names:
            raise PriorError("fixef_prior given but the model has no fixed effects")
        fixef = fixef.resolve(PriorContext("fixef", glmm=glmm, fixef_names=names,
                                           label="the fixed effects"))
    resid = _check_prior(resid_prior, "resid_prior")
    if resid is not None:
        if glmm:
            raise PriorError("resid_prior is for linear mixed models (blmer); a GLMM has no "
                             "residual variance")
        resid = resid.resolve(PriorContext("resid", label="the residual variance"))
    return ModelPriors(tuple(cov), fixef, resid, tuple(t.group for t in design.terms), glmm)
