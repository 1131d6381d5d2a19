r"""The frozen result of a fit of glmmTMB's model class (:func:`mixedmodels.glmmtmb`).

The fit has several linear predictors (``cond``: the conditional mean; ``zi``: the
zero-inflation probability, logit scale; ``disp``: the dispersion, log scale) and a parameter
layout (:class:`~mixedmodels.parameters.ParameterLayout`) with fixed effects and covariance
parameters per component and the family's own parameters. Accessors follow glmmTMB:
``fixef`` (conditional model), ``fixef_zi``, ``fixef_disp``, ``coef_table(component)``,
``vcov`` (conditional) and ``vcov_full`` (every free parameter), ``varcorr`` and ``ranef``
per component, ``sigma``, ``family_params``; ``objective`` is minus twice the Laplace
log-likelihood (the REML criterion for ``REML=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from ..design import Design
from .components import ComponentSolution, ComponentView

__all__ = ["GlmmTMBResult", "PREDICT_TYPES"]

#: ``predict(type=...)`` values, glmmTMB's names.
PREDICT_TYPES = ("link", "response", "conditional", "zprob", "zlink", "disp")
#: Component titles in summaries, glmmTMB's wording.
COMPONENT_TITLES = {"cond": "Conditional model", "zi": "Zero-inflation model",
                    "disp": "Dispersion model"}


@dataclass(frozen=True, eq=False)
class GlmmTMBResult:
    """A fitted model of glmmTMB's class.

    Attributes
    ----------
    design : Design
        Response, rows and every component's linear predictor.
    density : ModelDensity
        The response distribution with its links (zero-inflation and truncation included).
    family_name : str
        glmmTMB's family name (``"nbinom2"``, ``"truncated_poisson"``).
    layout : ParameterLayout
    fit : LaplaceFit
        The optimum: parameters, solution at the conditional modes, Hessian, vcov.
    reml : bool
    objective_function : LaplaceObjective
        Reusable for profiles and refits (not part of the result's value).
    messages : tuple of str
    """

    design: Design
    density: object
    family_name: str
    layout: object
    fit: object
    reml: bool
    objective_function: object = field(repr=False)
    messages: tuple[str, ...] = ()

    # -- parameters ------------------------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        """Full parameter vector at the optimum (layout order)."""
        return self.fit.x

    @property
    def solution(self):
        return self.fit.solution

    def _beta(self, component: str) -> np.ndarray:
        if component == "cond" and self.reml:
            return self.solution.inner_beta
        return self.layout.get(self.x, f"beta.{component}", default=np.zeros(0))

    def _names(self, component: str) -> list[str]:
        comps = self.design.components
        return list(comps[component].fixed.names) if component in comps else []

    def _series(self, component: str) -> pd.Series:
        return pd.Series(self._beta(component), index=self._names(component),
                         name=f"fixef_{component}" if component != "cond" else "fixef",
                         dtype=float)

    @property
    def fixef(self) -> pd.Series:
        """Fixed effects of the conditional model."""
        return self._series("cond")

    @property
    def fixef_zi(self) -> pd.Series:
        """Fixed effects of the zero-inflation model (logit scale; empty when absent)."""
        return self._series("zi")

    @property
    def fixef_disp(self) -> pd.Series:
        """Fixed effects of the dispersion model (log scale; empty when absent)."""
        return self._series("disp")

    @property
    def components(self) -> tuple[str, ...]:
        """Components with a linear predictor."""
        return tuple(self.design.components)

    @cached_property
    def vcov_full(self) -> pd.DataFrame:
        """Covariance of every free parameter (``2 H^{-1}``), named as glmmTMB's
        ``vcov(full = TRUE)``: ``cond~x``, ``zi~x``, ``disp~x``, ``theta_...``."""
        labels = list(self.layout.free_labels())
        V = self.fit.vcov
        if V is None:
            V = np.full((len(labels), len(labels)), np.nan)
        return pd.DataFrame(V, index=labels, columns=labels)

    def _vcov_block(self, component: str) -> np.ndarray:
        names = self._names(component)
        if component == "cond" and self.reml:
            return self._reml_vcov()
        labels = [f"{component}~{n}" for n in names]
        full = self.vcov_full
        present = [lab for lab in labels if lab in full.index]
        out = np.full((len(labels), len(labels)), np.nan)
        idx = [labels.index(lab) for lab in present]
        out[np.ix_(idx, idx)] = full.loc[present, present].to_numpy()
        return out

    def _reml_vcov(self) -> np.ndarray:
        """REML: the conditional fixed effects' block of the inner Hessian's inverse."""
        obj = self.objective_function
        obj.solve(self.x)
        q_u = obj.structure.q_u
        if hasattr(obj.hessian, "inverse"):
            return obj.hessian.inverse()[q_u:, q_u:].copy()
        raise NotImplementedError  # pragma: no cover - REML always uses the dense kernel

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the conditional fixed effects."""
        names = self._names("cond")
        return pd.DataFrame(self._vcov_block("cond"), index=names, columns=names)

    def coef_table(self, component: str = "cond") -> pd.DataFrame:
        """Wald table of a component: Estimate, Std. Error, z value, Pr(>|z|)."""
        if component not in COMPONENT_TITLES:
            raise ValueError(f"component must be one of {list(COMPONENT_TITLES)}, got "
                             f"{component!r}")
        est = self._beta(component)
        se = np.sqrt(np.diag(self._vcov_block(component))) if est.size else np.zeros(0)
        z = est / se
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": z,
                             "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z))},
                            index=self._names(component))

    @property
    def se(self) -> pd.Series:
        """Standard errors of the conditional fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="se")

    # -- components as lme4-style views ----------------------------------------------------
    def component(self, name: str = "cond") -> ComponentView:
        """Component ``name`` as a result with ``fixef``, ``varcorr``, ``ranef``,
        ``coef``, ``is_singular`` (see :class:`~.components.ComponentView`)."""
        return self._views[name]

    @cached_property
    def _views(self) -> dict[str, ComponentView]:
        obj = self.objective_function
        sol = self.solution
        views = {}
        obj.solve(self.x)            # the workspace's Hessian at the optimum
        for name in self.design.components:
            terms = [k for k, ts in enumerate(obj.structure.terms) if ts.component == name]
            theta = self.layout.get(self.x, f"theta.{name}", default=np.zeros(0))
            b = [sol.b[k] for k in terms]
            cv = []
            for k in terms:
                ts = obj.structure.terms[k]
                lam = ts.term.structure.lambda_(self.layout.get(
                    self.x, f"theta.{name}")[obj._local_theta(ts)])
                Vu = obj.hessian.term_inverse(ts)
                cv.append(np.matmul(np.matmul(lam, Vu), lam.T))
            views[name] = ComponentView(self.design.component_design(name),
                                        ComponentSolution(theta, self._beta(name), b),
                                        self._vcov_block(name), cv, self.objective, self.df,
                                        self.messages)
        return views

    @property
    def varcorr(self):
        """Variance components of the conditional model (see :meth:`varcorr_of`)."""
        return self.component("cond").varcorr

    def varcorr_of(self, component: str = "cond"):
        """Variance components of one component (``"cond"`` or ``"zi"``)."""
        return self.component(component).varcorr

    def ranef(self, component: str = "cond", cond_var: bool = False) -> dict:
        """Conditional modes of a component's random effects, per grouping factor."""
        return self.component(component).ranef(cond_var=cond_var)

    def coef(self, component: str = "cond") -> dict:
        """Per-group coefficients of a component (fixed plus random effects)."""
        return self.component(component).coef()

    def is_singular(self) -> bool:
        """A variance (nearly) zero or a correlation +-1 in any component."""
        return any(v.is_singular() for v in self._views.values())

    @property
    def ngroups(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lp in self.design.components.values():
            for t in lp.terms:
                out.setdefault(t.group, t.nlevels)
        return out

    # -- likelihood --------------------------------------------------------------------------
    @property
    def objective(self) -> float:
        """Minus twice the log-likelihood (Laplace), or the REML criterion."""
        return float(self.solution.objective)

    @property
    def deviance(self) -> float:
        """``-2 log L`` (what glmmTMB's summary prints as deviance)."""
        return self.objective

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def df(self) -> int:
        """Estimated parameters (glmmTMB's logLik df): the free entries of the layout, plus
        the integrated fixed effects of a REML fit."""
        extra = self.design.p if self.reml else 0
        return int(self.layout.n_free + extra)

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        return self.nobs - self.df

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.df

    @property
    def bic(self) -> float:
        return self.objective + np.log(self.nobs) * self.df

    @property
    def converged(self) -> bool:
        return bool(self.fit.converged)

    def __repr__(self) -> str:
        return (f"<GlmmTMBResult {self.design.spec.formula!r} ({self.family_name}), "
                f"nobs={self.nobs}, objective={self.objective:.4f}>")
