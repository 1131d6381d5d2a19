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
from functools import cached_property, partial

import numpy as np
import pandas as pd
from scipy import stats

from ..design import Design
from ..term_methods import TermsMixin
from .components import ComponentSolution, ComponentView
from .recipe import FitRecipe, RecipeMixin

__all__ = ["PREDICT_TYPES", "GlmmTMBResult"]

#: ``predict(type=...)`` values, glmmTMB's names.
PREDICT_TYPES = ("link", "response", "conditional", "zprob", "zlink", "disp")
#: Relative step of the central differences of the REML modes of beta.
REML_MODE_STEP = 1e-5
#: Cached properties left out of pickles.
_CACHED = frozenset({"_views", "vcov_full"})
#: Component titles in summaries, glmmTMB's wording.
COMPONENT_TITLES = {"cond": "Conditional model", "zi": "Zero-inflation model",
                    "disp": "Dispersion model"}


@dataclass(frozen=True, eq=False)
class GlmmTMBResult(RecipeMixin, TermsMixin):
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
    recipe : FitRecipe or None
        The front door and its exact arguments (``update``, refits).
    """

    design: Design
    density: object
    family_name: str
    layout: object
    fit: object
    reml: bool
    objective_function: object = field(repr=False)
    messages: tuple[str, ...] = ()
    recipe: FitRecipe | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        # cached views and tables are rebuilt on demand (they hold lme4-style result
        # objects that are not part of the fit's value)
        return {k: v for k, v in self.__dict__.items() if k not in _CACHED}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # -- parameters ------------------------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        """Full parameter vector at the optimum (layout order)."""
        return self.fit.x

    @property
    def theta(self) -> np.ndarray:
        """Covariance parameters of every component (``theta.cond`` then ``theta.zi``):
        the lower triangles of the terms' absolute Cholesky factors ``Lambda``."""
        parts = [self.layout.get(self.x, b) for b in self.layout.names_of("theta")]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def solution(self):
        """The Laplace solution at the optimum: conditional modes, linear predictors,
        ``log det H`` (:class:`~mixedmodels.objective.laplace.LaplaceSolution`)."""
        return self.fit.solution

    def _beta(self, component: str) -> np.ndarray:
        if component == "cond" and self.reml:
            return self.solution.inner_beta
        return self.layout.get(self.x, f"beta.{component}", default=np.zeros(0))

    def _names(self, component: str) -> list[str]:
        comps = self.design.components
        return list(comps[component].fixed.labels()) if component in comps else []

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
        """Covariance of every free parameter (``2 H^{-1}``), named and scaled as glmmTMB's
        ``vcov(full = TRUE)``: ``cond~x``, ``zi~x``, ``disp~x``, ``theta_...``, the
        covariance parameters on glmmTMB's scale (log standard deviations, TMB's correlation
        parameters) whatever our optimizer's (:mod:`mixedmodels.results.tmb_scale`;
        :attr:`vcov_optimizer` has them on the optimizer's scale)."""
        from .tmb_scale import glmmtmb_point_and_jacobian

        labels = list(self.layout.free_labels())
        free = list(self.layout.free_index)
        J = glmmtmb_point_and_jacobian(self)[1][np.ix_(free, free)]
        V = self._free_vcov
        # NaN (flat parameters, a log of a zero sd) only where an entry depends on one:
        # J is block diagonal, and 0 * NaN must not spread a flat row over the others
        bad_J, bad_V = ~np.isfinite(J), ~np.isfinite(V)
        J0 = np.where(bad_J, 0.0, J)
        out = J0 @ np.where(bad_V, 0.0, V) @ J0.T
        reach = (np.abs(J0) > 0) | bad_J
        nan = (reach.astype(float) @ bad_V.astype(float) @ reach.T.astype(float)) > 0
        nan |= bad_J.any(axis=1)[:, None] | bad_J.any(axis=1)[None, :]
        out[nan] = np.nan
        return pd.DataFrame(out, index=labels, columns=labels)

    @property
    def vcov_optimizer(self) -> pd.DataFrame:
        """As :attr:`vcov_full`, the covariance parameters on our optimizer's scale (that of
        :attr:`x`: lme4's Cholesky entries for unstructured terms)."""
        labels = list(self.layout.free_labels())
        return pd.DataFrame(self._free_vcov, index=labels, columns=labels)

    @cached_property
    def _free_vcov(self) -> np.ndarray:
        """``2 H^{-1}``; where ``H`` is not positive definite, the covariance with the flat
        parameters held at their estimates, NaN in their rows and columns
        (:mod:`mixedmodels.linalg.flat_parameters`; glmmTMB's ``sdreport`` inverts the
        indefinite ``H``, giving negative variances)."""
        V = self.fit.vcov
        if V is not None:
            return V
        n = self.layout.n_free
        H = self.fit.hessian
        if H is None or H.shape != (n, n):
            return np.full((n, n), np.nan)
        from ..linalg.flat_parameters import conditional_covariance

        return conditional_covariance(H, scale=2.0)[0]

    def _vcov_block(self, component: str) -> np.ndarray:
        # vcov_full is labelled by the layout (formulaic's names), whatever the
        # coef_names option makes of the labels shown
        comps = self.design.components
        names = list(comps[component].fixed.names) if component in comps else []
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
        r"""REML: the fixed effects' block of the inverse of TMB's joint precision.

        The fixed effects are inner (random) variables; glmmTMB takes their covariance
        from ``sdreport``'s joint precision of the inner variables and the parameters,
        whose inverse has the block

        .. math:: H_{\beta\beta}^{-1}\big|_{\text{inner}}
                  + D\, V_x\, D', \qquad D = d\hat\beta / dx,

        the conditional covariance plus the uncertainty of the covariance parameters
        ``x`` (``V_x = vcov_full``) carried through the modes. ``D`` is taken by central
        differences of the modes.
        """
        obj = self.objective_function
        obj.solve(self.x)
        q_u = obj.structure.q_u
        if not hasattr(obj.hessian, "inverse"):  # pragma: no cover - REML is dense
            raise NotImplementedError
        # H holds the basis coordinates beta~ = T^{-1} beta (random_structure)
        T = obj.structure.int_T
        V = T @ obj.hessian.inverse()[q_u:, q_u:] @ T.T
        V = 0.5 * (V + V.T)
        # flat parameters (NaN rows) held at their estimates
        Vx = np.nan_to_num(self._free_vcov)
        layout = self.layout
        D = np.empty((V.shape[0], layout.n_free))
        for k, i in enumerate(layout.free_index):
            h = REML_MODE_STEP * max(1.0, abs(self.x[i]))
            xp, xm = self.x.copy(), self.x.copy()
            xp[i] += h
            xm[i] -= h
            D[:, k] = (obj.solve(xp)[0].inner_beta - obj.solve(xm)[0].inner_beta) / (2 * h)
        obj.solve(self.x)          # the workspace back at the optimum
        return V + D @ Vx @ D.T

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the conditional fixed effects."""
        names = self._names("cond")
        return pd.DataFrame(self._vcov_block("cond"), index=names, columns=names)

    def coef_table(self, component: str = "cond") -> pd.DataFrame:
        """Wald table of a component's fixed effects (glmmTMB's ``summary`` tables).

        Parameters
        ----------
        component : {"cond", "zi", "disp"}

        Returns
        -------
        DataFrame
            Estimate, Std. Error, z value (``estimate / SE``) and Pr(>|z|) (two-sided
            normal), one row per fixed effect (empty when the component is absent).
        """
        if component not in COMPONENT_TITLES:
            raise ValueError(f"component must be one of {list(COMPONENT_TITLES)}, got "
                             f"{component!r}")
        est = self._beta(component)
        se = np.sqrt(np.diag(self._vcov_block(component))) if est.size else np.zeros(0)
        z = est / se
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": z,
                             "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z))},
                            index=self._names(component))

    def anova_table(self, type=2, test: str = "wald", component: str = "cond",
                    ddf=None) -> pd.DataFrame:
        """Wald chi-square tests of a component's fixed-effect terms (glmmTMB's
        ``car::Anova`` method; :mod:`mixedmodels.inference.wald_anova`).

        Parameters
        ----------
        type : {2, 3, "II", "III"}
            Type II (marginality respected, car's default) or type III (each term given
            all others; meaningful for terms in interactions only with sum-to-zero
            contrasts).
        test : {"wald"}
            Wald chi-square tests (glmmTMB's ``Anova`` has no F tests).
        component : {"cond", "zi", "disp"}
            The linear predictor tested.
        ddf : None
            Accepted for symmetry with the lme4-class results only: a fit of glmmTMB's
            class has no denominator-df method (any other value is an error that says
            where such F tests exist).

        Returns
        -------
        pandas.DataFrame
            One row per term; columns ``Chisq``, ``Df``, ``Pr(>Chisq)``.
        """
        from ..term_methods import glmmtmb_anova_table

        return glmmtmb_anova_table(self, type, test, component, ddf)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the conditional fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="se")

    # -- components as lme4-style views ----------------------------------------------------
    def component(self, name: str = "cond") -> ComponentView:
        """One linear-predictor component as an lme4-style result.

        Parameters
        ----------
        name : {"cond", "zi", "disp"}

        Returns
        -------
        ComponentView
            With ``fixef``, ``vcov``, ``varcorr``, ``ranef``, ``coef``, ``is_singular``
            for that component (:class:`~mixedmodels.results.components.ComponentView`).
        """
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
            views[name] = ComponentView(self.design.component_design(name),
                                        ComponentSolution(theta, self._beta(name), b),
                                        self._vcov_block(name),
                                        partial(self._cond_var_of, name, terms),
                                        self.objective, self.df,
                                        self.messages, self._varcorr_sigma())
        return views

    def _cond_var_of(self, name: str, terms: list) -> list:
        r"""Conditional covariance blocks of one component's random effects ``b``, as
        glmmTMB's ``ranef(condVar = TRUE)`` (TMB's ``sdreport``): per level,

        .. math:: Var(\hat b - b) = \Lambda H^{-1} \Lambda'
                  + \frac{d\hat b}{dx} V \frac{d\hat b}{dx}', \qquad
                  \frac{d\hat b}{dx} = \Lambda \frac{d\hat u}{dx}
                  + \frac{d\Lambda}{dx}\hat u,

        the conditional covariance at the estimates plus the parameters' uncertainty
        (``V``: the optimizer-scale :attr:`vcov_optimizer`) carried through the modes
        (:func:`~mixedmodels.objective.laplace.sensitivity.mode_jacobian`). Without a
        usable ``V`` only the first term.
        """
        obj = self.objective_function
        S = obj.structure
        V = self.fit.vcov if S.q else None
        if V is not None:
            from ..objective.laplace.sensitivity import mode_jacobian, theta_slot_derivatives

            dU = mode_jacobian(obj, self.x)       # leaves H factored at the optimum
            dlams = theta_slot_derivatives(obj, self.x)
            free = np.asarray(self.layout.free_index)
        else:
            obj.solve(self.x)
        u = self.solution.u
        theta = self.layout.get(self.x, f"theta.{name}", default=np.zeros(0))
        out = []
        for k in terms:
            ts = S.terms[k]
            t = ts.term
            lam = t.structure.lambda_(theta[obj._local_theta(ts)])
            block = np.matmul(np.matmul(lam, obj.hessian.term_inverse(ts)), lam.T)
            if V is not None:
                idx = ts.u_offset + np.arange(t.q).reshape(t.nlevels, t.p)
                Db = np.einsum("ij,ljk->lik", lam, dU[idx])
                for j, ts2, dlam in dlams:
                    if ts2 is ts:
                        Db[:, :, j] += u[idx] @ dlam.T
                Df = np.nan_to_num(Db[:, :, free])
                block = block + np.einsum("lik,kq,ljq->lij", Df, np.nan_to_num(V), Df)
            out.append(block)
        return out

    def _varcorr_sigma(self) -> float | None:
        """The residual sd of VarCorr's Residual line, as glmmTMB 1.1.5's ``VarCorr``:
        shown for the Gaussian family (in every component's table) unless the dispersion
        is fixed (``dispformula = ~0``); NaN (printed ``NA``) when the dispersion has
        covariates, where ``sigma()`` has no single value."""
        if self.family_name != "gaussian":
            return None
        disp = "beta.disp"
        if disp in self.layout and bool(np.all(self.layout.block(disp).fixed)):
            return None
        sigma = self.sigma
        return float("nan") if sigma is None else float(sigma)

    @property
    def varcorr(self):
        """Variance components of the conditional model (see :meth:`varcorr_of`)."""
        return self.component("cond").varcorr

    def varcorr_of(self, component: str = "cond"):
        """Variance components of one component.

        Parameters
        ----------
        component : {"cond", "zi"}

        Returns
        -------
        VarCorr
            Standard deviations and correlations of its random effects (absolute: glmmTMB
            has no residual-variance scaling).
        """
        return self.component(component).varcorr

    def cov_params(self, component: str = "cond") -> pd.DataFrame:
        """Covariance parameters of a component's terms on their natural scale.

        Parameters
        ----------
        component : {"cond", "zi"}

        Returns
        -------
        pandas.DataFrame
            Index ``(group, structure, parameter)``, column ``estimate``: standard
            deviations, correlations and each structure's own parameters (``phi`` of
            ``ar1``, ``range`` of ``exp``; see
            :meth:`~mixedmodels.results.base.MixedModelResultBase.cov_params`).
        """
        return self.component(component).cov_params()

    def ranef(self, component: str = "cond", cond_var: bool = False) -> dict:
        """Conditional modes of a component's random effects.

        Parameters
        ----------
        component : {"cond", "zi"}
        cond_var : bool
            Add the conditional standard deviations (``<effect>_condsd`` columns), as
            glmmTMB's ``ranef(condVar = TRUE)`` (TMB's ``sdreport``): the Laplace Hessian's
            ``Lambda H^{-1} Lambda'`` plus the parameters' uncertainty carried through the
            modes (see ``_cond_var_of``; lme4's ``postVar`` has the first term only).

        Returns
        -------
        dict of str -> DataFrame
            One frame per grouping factor, levels as index.
        """
        return self.component(component).ranef(cond_var=cond_var)

    def coef(self, component: str = "cond") -> dict:
        """Per-group coefficients of a component: fixed plus random effects.

        Parameters
        ----------
        component : {"cond", "zi"}

        Returns
        -------
        dict of str -> DataFrame
            One frame per grouping factor.
        """
        return self.component(component).coef()

    def is_singular(self) -> bool:
        """Whether a variance is (nearly) zero or a correlation +-1 in any component.

        This is lme4's ``isSingular`` rule (a zero diagonal element of a term's relative
        Cholesky factor). performance's ``check_singularity`` of a glmmTMB fit looks at the
        variances only (below 1e-5), so a fit with a correlation of +-1 and non-zero
        variances is singular here and not there (the Owls NB2 model
        ``(FoodTreatment | Nest)``); :func:`~mixedmodels.inference.r2.r2_nakagawa` and
        ``icc`` use performance's rule, as performance does.

        Returns
        -------
        bool
        """
        return any(v.is_singular() for v in self._views.values())

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor (all components)."""
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
        """Log-likelihood, ``-objective / 2`` (Laplace; restricted for REML)."""
        return -0.5 * self.objective

    @property
    def df(self) -> int:
        """Estimated parameters (glmmTMB's logLik df): the free entries of the layout, plus
        the integrated fixed effects of a REML fit."""
        extra = self.design.p if self.reml else 0
        return int(self.layout.n_free + extra)

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom, ``nobs - df``."""
        return self.nobs - self.df

    @property
    def aic(self) -> float:
        """Akaike's criterion, ``-2 log L + 2 df``."""
        return self.objective + 2.0 * self.df

    @property
    def bic(self) -> float:
        """Schwarz's criterion, ``-2 log L + log(nobs) df``."""
        return self.objective + np.log(self.nobs) * self.df

    @property
    def converged(self) -> bool:
        """Whether the optimizer converged: a Newton step from the estimate would lower
        the objective by less than 1e-3 (see ``fit.message`` otherwise)."""
        return bool(self.fit.converged)

    # -- family quantities ---------------------------------------------------------------
    @property
    def family(self):
        """The response family (with its zero-inflation wrapper when there is one)."""
        return self.density.family

    @property
    def family_params(self) -> dict[str, float]:
        """The family's own parameters on their natural scale (Tweedie ``power``, Student-t
        ``df``, nbinom12's ``psi``); empty for families without any."""
        out = {}
        for c in self.density.channels:
            block = f"family.{c}"
            if block in self.layout:
                eta = self.layout.get(self.x, block)
                out[c] = float(self.density.links[c].linkinv(eta)[0])
        return out

    @property
    def sigma(self) -> float | None:
        """glmmTMB's ``sigma()``: the family's dispersion as glmmTMB reports it (residual
        sd for the gaussian, the size for nbinom2, ...); 1 for families without one; None
        when the dispersion depends on covariates (see ``predict(type="disp")``)."""
        if "phi" not in self.density.channels:
            return 1.0
        disp = self.design.components.get("disp")
        if disp is None or disp.p != 1 or disp.terms:
            return None
        phi = float(self.density.links["phi"].linkinv(self._beta("disp"))[0])
        return float(self.family.sigma(phi))

    def _size(self) -> np.ndarray | None:
        obj = self.objective_function
        return None if obj.size is None else np.asarray(obj.size)

    def _natural(self, etas: dict) -> dict:
        return self.density.natural_parameters(etas)

    def _fit_etas(self) -> dict:
        eta = self.solution.eta
        return {c: eta[:, j] for j, c in enumerate(self.density.channels)}

    # -- prediction ----------------------------------------------------------------------
    def _component_rows(self, newdata, re_form, allow_new_levels, offset) -> dict:
        """Per component, its matrices on the rows to predict
        (:class:`~mixedmodels.results.predict.NewRows`): ``re_form``'s terms where the
        component has them, none where it has not."""
        from .predict import new_rows

        out = {}
        failures = []
        for name, view in self._views.items():
            form = re_form
            if isinstance(re_form, str) and not view.design.terms:
                form = "~0"
            off = offset if name == "cond" else None
            try:
                out[name] = new_rows(view.design, newdata, form, allow_new_levels, off,
                                     view.theta)
            except Exception as exc:     # a re_form term this component does not have
                if not isinstance(re_form, str):
                    raise
                failures.append(exc)
                out[name] = new_rows(view.design, newdata, "~0", allow_new_levels, off)
        if failures and len(failures) == len(self._views):
            raise failures[0]
        return out

    def _etas(self, newdata, re_form, allow_new_levels, offset) -> dict:
        """Linear predictor of every channel, on the fitting data or ``newdata``."""
        if newdata is None and re_form is None:
            return self._fit_etas()
        from ..objective.laplace import CHANNEL_OF_COMPONENT

        rows = self._component_rows(newdata, re_form, allow_new_levels, offset)
        out = {CHANNEL_OF_COMPONENT[name]: r.eta(self._views[name].beta,
                                                 self._views[name].random_effects)
               for name, r in rows.items()}
        n = len(next(iter(out.values())))
        for c in self.density.channels:
            if c not in out:
                out[c] = np.full(n, self.layout.get(self.x, f"family.{c}")[0])
        return out

    def _values(self, etas: dict, type: str) -> np.ndarray:
        """The prediction of ``type`` from every channel's linear predictor."""
        nat = self._natural(etas)
        n = len(etas["mu"])
        if type == "link":
            out = etas["mu"]
        elif type == "conditional":
            # the mean without zero-inflation: for a hurdle, the truncated family's mean
            fam = self.family
            out = (fam.base if "zi" in nat else fam).mean(nat)
        elif type == "zlink":
            out = etas["zi"] if "zi" in etas else np.full(n, -np.inf)
        elif type == "zprob":
            out = nat["zi"] if "zi" in nat else np.zeros(n)
        elif type == "disp":
            out = np.asarray(self.family.sigma(nat["phi"])) * np.ones(n) \
                if "phi" in nat else np.ones(n)
        else:
            out = self.family.mean(nat)
        return np.asarray(out, dtype=float)

    def predict(self, newdata=None, type: str = "link", re_form=None,
                allow_new_levels: bool = False, offset=None, *, se_fit: bool = False,
                interval: str | None = None, level: float = 0.95, method: str = "wald",
                nsim: int = 500, seed=None, n_jobs: int = 1, progress=None):
        """Predictions, glmmTMB's ``predict``, optionally with standard errors and
        confidence intervals (:mod:`mixedmodels.prediction.delta` has the maths).

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (the fitting rows by default).
        type : {"link", "response", "conditional", "zprob", "zlink", "disp"}
            ``link``: the conditional model's linear predictor; ``conditional``: the mean
            without zero-inflation (``mu``; the truncated mean in hurdle models);
            ``response``: the mean of the response, ``E[y]`` (``(1 - pi) mu`` with
            zero-inflation; the truncated mean in hurdle models); ``zprob`` / ``zlink``:
            the zero-inflation probability and its logit; ``disp``: the dispersion as
            ``sigma()`` reports it.
        re_form : None, "~0" or a formula of random-effects terms
            Random effects to condition on (every component), as lme4's ``re.form``.
        allow_new_levels : bool
        offset : str or array-like, optional
            Offset of the conditional model for ``newdata``.
        se_fit : bool
            Add standard errors by TMB's delta method (glmmTMB's ``se.fit``): the
            uncertainty of every parameter and, for conditional predictions, of the random
            effects given the parameters.
        interval : {None, "confidence", "prediction"}
            Add ``lower`` and ``upper``. For a type that is a monotone function of one
            linear predictor (``link``, ``zprob``, ``response`` of a model without
            zero-inflation or truncation, ...) the interval's ends on that linear
            predictor's scale are transformed (the FAQ's rule); otherwise ``fit -+ z se``.
            Prediction intervals: Gaussian responses only (``sigma^2`` added).
        level : float
            Coverage.
        method : {"wald", "boot"}
            Delta method, or the parametric bootstrap (``nsim`` refits).
        nsim, seed, n_jobs, progress
            Bootstrap settings (``method="boot"``).

        Returns
        -------
        Series or DataFrame
            One prediction per row, indexed like ``newdata`` (or the fitting rows); with
            ``se_fit`` or ``interval`` a DataFrame with ``fit``, ``se_fit`` and/or
            ``lower``, ``upper``.
        """
        if type not in PREDICT_TYPES:
            raise ValueError(f"type must be one of {', '.join(PREDICT_TYPES)}, got {type!r}")
        index = self.design.frame.index if newdata is None else pd.DataFrame(newdata).index
        if se_fit or interval is not None:
            from ..prediction.delta import predict_glmmtmb

            return predict_glmmtmb(self, newdata, re_form, type, se_fit=se_fit,
                                   interval=interval, level=level,
                                   allow_new_levels=allow_new_levels, offset=offset,
                                   method=method, nsim=nsim, seed=seed, n_jobs=n_jobs,
                                   progress=progress)
        etas = self._etas(newdata, re_form, allow_new_levels, offset)
        return pd.Series(self._values(etas, type), index=index, name="prediction")

    def fitted(self) -> pd.Series:
        """Fitted means of the response, ``predict(type="response")``.

        Returns
        -------
        Series
            ``E[y]`` per fitting row (proportions for binomial responses).
        """
        return self.predict(type="response").rename("fitted")

    def _observed(self) -> np.ndarray:
        """The response on the scale of the fitted means (proportions for binomials)."""
        size = self._size()
        y = self.objective_function.y
        return y / size if size is not None else y

    def residuals(self, type: str = "response") -> pd.Series:
        """Residuals of the fit, glmmTMB's ``residuals``.

        Parameters
        ----------
        type : {"response", "pearson", "working"}
            ``response``: ``y - E[y]``; ``pearson``: divided by ``sd(y) / sqrt(w)``, the
            family's full variance (dispersion and zero-inflation included) and the prior
            weights ``w`` (lme4's and glm's definition). glmmTMB 1.1.5's own Pearson
            residuals are ``(y - mu) / sqrt(V(mu))`` with the family's variance function
            only: without the dispersion for Gaussian and Gamma families (a factor
            ``sigma`` there) and without the prior weights (a factor ``sqrt(w)``), so
            ``overdispersion()`` of a weighted binomial fit is glmer's number, not
            performance's ``check_overdispersion`` of the glmmTMB fit;
            ``working``:
            ``(y - mu) / (d mu / d eta)`` on the conditional model's link scale.

        Returns
        -------
        Series
            One residual per fitting row.
        """
        nat = self._natural(self._fit_etas())
        mean = np.asarray(self.family.mean(nat), dtype=float)
        y = self._observed()
        if type == "response":
            r = y - mean
        elif type == "pearson":
            size = self._size()
            var = np.asarray(self.family.variance_of(nat, size=size), dtype=float)
            if size is not None:
                var = var / (size * size)
            w = self.objective_function.weights
            if w is not None:
                var = var / np.asarray(w, dtype=float)   # weights act as precisions
            r = (y - mean) / np.sqrt(var)
        elif type == "working":
            link = self.density.links["mu"]
            eta = self.solution.eta[:, 0]
            r = (y - nat["mu"]) / link.mu_eta(eta)
        else:
            raise ValueError(f"residual type must be 'response', 'pearson' or 'working', "
                             f"got {type!r}")
        return pd.Series(r, index=self.design.frame.index, name="residuals")

    # -- simulation -----------------------------------------------------------------------
    def simulate(self, nsim: int = 1, seed=None, re_form="~0") -> pd.DataFrame:
        """Responses simulated from the fitted model.

        Parameters
        ----------
        nsim : int
            Number of simulated responses.
        seed : int or numpy Generator, optional
        re_form : "~0" or None
            ``"~0"`` (default, glmmTMB's) draws new random effects from their fitted
            distribution; None conditions on the estimated random effects.

        Returns
        -------
        DataFrame
            One column per simulation (``sim_1``, ...), rows as the fitting data
            (proportions for binomial responses).
        """
        if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
            raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
        rng = np.random.default_rng(seed)
        obj = self.objective_function
        S = obj.structure
        base = obj.fixed_eta(self.x)
        theta = obj.theta(self.x)
        lams = S.lambdas(theta) if S.terms else []
        a = S.slot_values(lams) if S.terms else None
        cols = {}
        size = self._size()
        for k in range(int(nsim)):
            eta = base.copy()
            if S.terms:
                if re_form is None:
                    u = self.solution.u
                else:
                    # (the inner vector's beta~, paired with the slots' X~)
                    u = np.r_[rng.standard_normal(S.q_u), self.solution.u[S.q_u:]]
                eta[:, obj.re] += S.eta(a, u)
            nat = self._natural({c: eta[:, j] for j, c in enumerate(self.density.channels)})
            try:
                y = self.family.sample(rng, nat, size=size)
            except ValueError as err:
                # numpy's samplers refuse a negative mean or scale: under an identity,
                # sqrt or inverse link, newly drawn random effects can push the linear
                # predictor out of the family's range
                mu = np.asarray(nat["mu"], dtype=float)
                raise ValueError(
                    f"simulate(): draw {k + 1} gives {int(np.sum(~(mu > 0)))} of {mu.size} "
                    f"means outside the {self.family.name} family's range under its "
                    f"{self.density.links['mu'].name} link ({err}); use re_form=None to "
                    "simulate given the fitted random effects, or a link that keeps the "
                    "mean in range (log)") from None
            cols[f"sim_{k + 1}"] = y / size if size is not None else y
        return pd.DataFrame(cols, index=self.design.frame.index)

    # -- inference ------------------------------------------------------------------------
    def confint(self, level: float = 0.95, method: str = "wald", parm=None
                ) -> pd.DataFrame:
        """Confidence intervals: Wald (``estimate +- z SE``) or profile likelihood.

        Parameters
        ----------
        level : float
            Coverage.
        method : {"wald", "profile"}
            ``profile`` inverts the likelihood-ratio test for each fixed effect, family
            parameter and covariance parameter (sds, correlations, a structure's
            parameters, on their natural scale;
            :func:`mixedmodels.inference.profile_laplace.profile_confint`).
        parm : sequence of str, optional
            Profile only these parameters (labels as in the returned table).

        Returns
        -------
        DataFrame
            Lower and upper bounds and the estimate, one row per parameter: Wald intervals
            for every free parameter named and scaled as :attr:`vcov_full` (covariance
            parameters on glmmTMB's scale); profile intervals as described there.
        """
        if method == "profile":
            from ..methods import profile_laplace_confint

            return profile_laplace_confint(self, level, parm)
        if method != "wald":
            raise ValueError(f"method must be 'wald' or 'profile', got {method!r}")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        from .tmb_scale import glmmtmb_point_and_jacobian

        zq = stats.norm.ppf(0.5 + level / 2)
        est = self.layout.free(glmmtmb_point_and_jacobian(self)[0])
        se = np.sqrt(np.diag(self.vcov_full.to_numpy()))
        lo, hi = f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"
        return pd.DataFrame({lo: est - zq * se, hi: est + zq * se, "Estimate": est},
                            index=list(self.layout.free_labels()))

    def overdispersion(self) -> dict:
        """The GLMM FAQ's overdispersion check on the Pearson residuals (ours, with the
        prior weights and the dispersion: see :meth:`residuals`).

        Returns
        -------
        dict
            ``chisq`` (sum of squared Pearson residuals), ``ratio`` (to the residual df),
            ``rdf`` and ``p`` (upper tail of the chi-square distribution).
        """
        r = self.residuals("pearson").to_numpy()
        chisq = float(np.sum(r * r))
        rdf = self.df_resid
        return {"chisq": chisq, "ratio": chisq / rdf, "rdf": rdf,
                "p": float(stats.chi2.sf(chisq, rdf))}

    def summary(self):
        """glmmTMB-style summary.

        Returns
        -------
        GlmmTMBSummary
            Printable; its ``coefficients`` and ``varcorr`` hold the tables by component.
        """
        from .glmmtmb_summary import GlmmTMBSummary

        return GlmmTMBSummary.from_result(self)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return (f"<GlmmTMBResult {self.design.spec.formula!r} ({self.family_name}), "
                f"nobs={self.nobs}, objective={self.objective:.4f}>")
