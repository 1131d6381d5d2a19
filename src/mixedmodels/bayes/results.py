"""Results of blmer / bglmer: ordinary fit results that also carry their priors.

A :class:`BlmerResult` *is* a :class:`~mixedmodels.LinearMixedModelResult` (a
:class:`BglmerResult` a :class:`~mixedmodels.GeneralizedLinearMixedModelResult`): fixef,
ranef, vcov, predict, simulate, bootstrap, confint and anova work on it. What differs, as in
blme:

* ``objective`` is the penalized objective that was minimized (likelihood part plus prior
  deviance);
* ``likelihood`` is blme's REML criterion / deviance at the estimates (``REMLcrit()``,
  ``deviance()`` of a blme fit) and ``prior_deviance`` the prior's part;
* ``loglik`` (hence AIC, BIC and anova's statistics) is the log-likelihood at the posterior
  mode, ``-likelihood / 2``, as blme's ``logLik``; anova notes that the fits have priors;
* ``vcov`` is ``sigma^2 R_X^{-1} R_X^{-T}`` with the normal prior's precision in ``R_X``
  (LMMs) and the inverse Hessian of the penalized objective (GLMMs), as blme's;
* the summary begins with blme's prior lines and ``Prior dev``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..display.tables import Report, ReportDisplay
from ..results import GeneralizedLinearMixedModelResult, LinearMixedModelResult
from .model_priors import ModelPriors
from .priors import Point

__all__ = ["BglmerResult", "BlmerResult", "PriorSummary"]

#: Printed by anova for fits that include priors.
PRIOR_NOTE = ("fits with priors (blmer/bglmer): logLik is the log-likelihood at the "
              "posterior mode, without the prior deviance; the likelihood-ratio tests are "
              "approximate")


@dataclass(frozen=True, repr=False)
class PriorSummary(ReportDisplay):
    """A fit's summary preceded by blme's prior lines.

    Attributes
    ----------
    priors : ModelPriors
    prior_deviance : float
    inner : LMMSummary or GLMMSummary
        The summary of the fit with the likelihood part as its objective.
    """

    priors: ModelPriors
    prior_deviance: float
    inner: object

    def __getattr__(self, name):
        # the inner summary's tables (coefficients, varcorr ...) are the summary's
        if name in ("priors", "prior_deviance", "inner"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def report(self) -> Report:
        """blme's layout: prior lines, ``Prior dev``, then the fit's summary."""
        lines = [*self.priors.describe(), f"Prior dev  : {self.prior_deviance:.4f}", ""]
        return Report(tuple(lines) + tuple(self.inner.report().blocks))


class _PriorFit:
    """What both result classes add (they keep the penalized objective as ``penalized``,
    a workspace rebuilt on unpickling like ``objective_function``)."""

    _extra_workspace = "penalized"

    @property
    def loglik(self) -> float:
        """Log-likelihood at the estimates, without the prior (blme's ``logLik``)."""
        return -0.5 * self.likelihood

    @property
    def prior_note(self) -> str:
        """What anova prints for fits with priors."""
        return PRIOR_NOTE

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop(self._extra_workspace, None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        object.__setattr__(self, self._extra_workspace, self._rebuild_penalized())

    def _kind(self) -> str:
        return super()._kind() + ", with priors"


@dataclass(frozen=True, eq=False, repr=False)
class BlmerResult(_PriorFit, LinearMixedModelResult):
    """A linear mixed model fitted with blme's priors (what :func:`~mixedmodels.blmer`
    returns); see the module docstring for what differs from an lmer fit.

    Attributes
    ----------
    priors : ModelPriors
        The priors with every default filled in.
    likelihood : float
        REML criterion / deviance at the estimates (the objective without the prior).
    prior_deviance : float
        ``objective - likelihood``.
    penalized : PenalizedLMMObjective
        The penalized objective (a workspace: rebuilt when unpickled).
    """

    priors: ModelPriors | None = None
    likelihood: float = float("nan")
    prior_deviance: float = 0.0
    penalized: object = field(default=None, repr=False)

    def _rebuild_penalized(self):
        from .lmm_objective import PenalizedLMMObjective

        return PenalizedLMMObjective(self.design, self.priors, self.reml)

    def profiler(self):
        """The evaluator of :meth:`profile` and ``confint(method="profile")``: the penalized
        objective (:mod:`mixedmodels.bayes.profile`).

        Returns
        -------
        BlmerProfiler
        """
        from .profile import BlmerProfiler

        return BlmerProfiler(self)

    @property
    def df(self) -> int:
        """Number of parameters; a point prior's fixed sigma is not estimated."""
        fixed = isinstance(self.priors.resid, Point)
        return self.design.p + self.design.n_theta + (0 if fixed else 1)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood at the estimates (ML fits: the likelihood part; REML fits: the
        ML deviance profiled at the estimated theta, as lme4)."""
        if not self.reml:
            return self.likelihood
        return super().deviance

    def summary(self, ddf: str | None = "lme4"):
        """blme's summary: prior lines, prior deviance, lme4's summary of the fit with the
        REML criterion / deviance without the prior.

        Parameters
        ----------
        ddf : str or None
            As for :meth:`LinearMixedModelResult.summary` (``"lme4"``: no df).

        Returns
        -------
        PriorSummary
        """
        inner = super().summary(ddf)
        inner = dataclasses.replace(inner, objective=self.likelihood)
        return PriorSummary(self.priors, self.prior_deviance, inner)


@dataclass(frozen=True, eq=False, repr=False)
class BglmerResult(_PriorFit, GeneralizedLinearMixedModelResult):
    """A GLMM fitted with blme's priors (what :func:`~mixedmodels.bglmer` returns); see the
    module docstring.

    Attributes
    ----------
    priors : ModelPriors
    likelihood : float
        Laplace deviance at the estimates (without the prior).
    prior_deviance : float
    penalized : PenalizedGLMMObjective
        The penalized objective (a workspace: rebuilt when unpickled).
    """

    priors: ModelPriors | None = None
    likelihood: float = float("nan")
    prior_deviance: float = 0.0
    penalized: object = field(default=None, repr=False)

    def _rebuild_penalized(self):
        from .glmm_objective import PenalizedGLMMObjective

        return PenalizedGLMMObjective(self.design, self.family, self.priors, self.nAGQ)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood at the estimates, without the prior."""
        return self.likelihood

    def summary(self, ddf: str | None = "lme4"):
        """blme's summary: prior lines, prior deviance, glmer's summary without the prior.

        Parameters
        ----------
        ddf : {"lme4", None}
            As for :meth:`GeneralizedLinearMixedModelResult.summary`.

        Returns
        -------
        PriorSummary
        """
        return PriorSummary(self.priors, self.prior_deviance, super().summary(ddf))
