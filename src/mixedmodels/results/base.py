"""Accessors shared by every mixed-model result (LMM, GLMM): lme4's verbs on a fit.

A subclass provides the fitted quantities through a small interface:

* ``design`` (:class:`~mixedmodels.design.Design`) and ``solution`` (with ``theta``,
  ``beta`` and ``b``, the random effects per term as (levels, p) arrays, ``b = Lambda u``),
* ``_vcov_matrix()`` -- covariance of the fixed effects,
* ``_cond_var_blocks()`` -- conditional covariance blocks of ``b`` per term,
* ``_re_scale()`` -- the factor multiplying ``Lambda Lambda'`` in the random-effects
  covariance (``sigma^2`` for an LMM, 1 for binomial/Poisson GLMMs),
* ``residual_sd`` -- residual standard deviation shown in VarCorr (None when the family
  has none),
* ``objective``, ``df``, ``messages``.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import pandas as pd

from .._options import get_options
from ..diagnostics import SINGULAR_TOL, singular_groups
from .fit_stats import FitStatsMixin
from .levels import level_index
from .predict import linear_predictor
from .recipe import RecipeMixin
from .varcorr import VarCorr, VarCorrTerm, formula_positions, term_group_labels

__all__ = ["MixedModelResultBase"]

#: Field holding the objective: a mutable workspace (factor scratch space, warm starts,
#: cached closures), so it is not pickled but rebuilt from the design on unpickling.
_WORKSPACE = "objective_function"


class MixedModelResultBase(FitStatsMixin, RecipeMixin):
    """Mixin with the accessors common to all mixed-model results (see module docstring).

    Pickling keeps the dataclass fields (the design, the solution, the recipe ...) and
    drops the objective (a workspace) and the cached derived quantities; the objective is
    rebuilt from the design when the result is loaded, so a loaded result predicts,
    summarizes and refits exactly as the original.
    """

    # -- pickling ---------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = {f.name: self.__dict__[f.name] for f in dataclasses.fields(self)
                 if f.name != _WORKSPACE}
        state["_objective_method"] = getattr(self.__dict__.get(_WORKSPACE), "method", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        method = state.pop("_objective_method", None)
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, _WORKSPACE, self._rebuild_objective(method))

    # -- estimates held by the solution at the optimum ------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """Relative covariance parameters (lme4's ``getME(m, "theta")``, lme4's order)."""
        return self.solution.theta

    @property
    def beta(self) -> np.ndarray:
        """Fixed effects as an array (see :attr:`fixef` for the named version)."""
        return self.solution.beta

    @property
    def random_effects(self) -> list:
        """Conditional modes per term, arrays (levels, p) in lme4's term order."""
        return self.solution.b

    # -- sizes and information criteria --------------------------------------------------
    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor (lme4's ``ngrps``)."""
        out: dict[str, int] = {}
        for t in self.design.terms:
            out.setdefault(t.group, t.nlevels)
        return out

    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted log-likelihood for REML fits, as lme4's logLik)."""
        return -0.5 * self.objective


    # -- random effects -----------------------------------------------------------------
    def _term_labels(self) -> list[str]:
        terms = self.design.terms
        spec = getattr(self.design, "spec", None)
        positions = None if spec is None else formula_positions(terms, spec.random)
        return term_group_labels([t.group for t in terms], positions)

    @property
    def varcorr(self) -> VarCorr:
        """Estimated variance components: sd and correlations per term, residual sd.

        The random effects are named as :attr:`fixef` names the fixed effects: formulaic's
        names, or R's under ``mm.options(coef_names="r")`` (``(Intercept)``,
        ``factor(time)0``)."""
        key = get_options()["coef_names"]
        cache = self.__dict__.setdefault("_varcorr_by_names", {})
        if key not in cache:
            cache[key] = self._build_varcorr()
        return cache[key]

    def _build_varcorr(self) -> VarCorr:
        scale = self._re_scale()
        terms = []
        for t, sl, lab in zip(self.design.terms, self.design.theta_slices(),
                              self._term_labels(), strict=True):
            s = t.structure
            th = self.theta[sl]
            pars = tuple((k, v) for k, v, sd in zip(s.parameter_names(), s.parameters(th),
                                                    s.parameter_scales(), strict=True)
                         if not sd)
            terms.append(VarCorrTerm(lab, t.group, t.labels(), scale * s.covariance(th),
                                     s.keyword, pars))
        return VarCorr(tuple(terms), self.residual_sd)

    def cov_params(self) -> pd.DataFrame:
        """The covariance parameters of every term on their natural scale.

        Standard deviations (multiplied by sigma in an LMM, whose covariances are
        relative to the residual variance), correlations, and each structure's own
        parameters: ``phi`` of ``ar1``, ``rho`` of ``cs``, ``range`` of ``exp``, the
        loadings of ``rr``, the ``scale`` of ``propto`` (see
        :mod:`mixedmodels.covariance`).

        Returns
        -------
        pandas.DataFrame
            Index ``(group, structure, parameter)`` (lme4's term labels: ``Subject``,
            ``Subject.1``), column ``estimate``.
        """
        sigma = float(np.sqrt(self._re_scale()))
        rows, index = [], []
        for t, sl, lab in zip(self.design.terms, self.design.theta_slices(),
                              self._term_labels(), strict=True):
            s = t.structure
            for name, value in s.parameter_dict(self.theta[sl], sigma).items():
                index.append((lab, s.keyword, name))
                rows.append(value)
        idx = pd.MultiIndex.from_tuples(index, names=["group", "structure", "parameter"])
        return pd.DataFrame({"estimate": rows}, index=idx)

    @cached_property
    def _cond_var(self) -> list:
        return self._cond_var_blocks()

    def ranef_cond_var(self) -> dict[str, np.ndarray]:
        """Conditional covariance matrices of the random effects (lme4's ``postVar``).

        For term ``k`` and level ``j`` the covariance of ``b_kj`` given the data at the
        estimates and the fixed effects: ``sigma^2 Lambda (L L')^{-1} Lambda'`` restricted to
        that level's block, with ``L L' = Lambda' Z' Z Lambda + I`` for an LMM (lme4's
        ``condVar``) and the PIRLS-weighted factor for a GLMM.

        Returns
        -------
        dict of str -> ndarray (levels, p, p)
            Keyed by the term labels of :attr:`varcorr` (``Subject``, ``Subject.1``).
        """
        return dict(zip(self._term_labels(), self._cond_var, strict=True))

    def _level_index(self, k: int, term) -> pd.Index:
        """The index of term ``k``'s levels in :meth:`ranef`
        (:func:`~mixedmodels.results.levels.level_index`)."""
        del k
        return level_index(self.design, term)

    def ranef(self, cond_var: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor.

        Parameters
        ----------
        cond_var : bool
            Also return conditional standard deviations, in columns named
            ``"<effect>_condsd"`` (lme4's ``condVar``).

        Returns
        -------
        dict of str -> DataFrame
            Index: the grouping factor's levels -- the original values when the factor is
            one numeric column (``.loc[308]``), else their labels; columns: the random
            effects (terms with the same grouping factor are joined, as in lme4).
        """
        out: dict[str, pd.DataFrame] = {}
        cv = self._cond_var if cond_var else None
        for k, t in enumerate(self.design.terms):
            labels = list(t.labels())
            frame = pd.DataFrame(self.random_effects[k], index=self._level_index(k, t),
                                 columns=labels)
            if cv is not None:
                sd = np.sqrt(np.maximum(np.diagonal(cv[k], axis1=1, axis2=2), 0.0))
                for j, n in enumerate(labels):
                    frame[f"{n}_condsd"] = sd[:, j]
            frame.index.name = t.group
            out[t.group] = frame if t.group not in out else out[t.group].join(frame,
                                                                                how="outer")
        if cond_var:
            for g, frame in out.items():
                modes = [c for c in frame.columns if not c.endswith("_condsd")]
                out[g] = frame[modes + [c for c in frame.columns if c.endswith("_condsd")]]
        return out

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients: fixed effects plus the group's random effects (lme4's
        ``coef``).

        Returns
        -------
        dict of str -> DataFrame
            One frame per grouping factor, a row per level; every fixed effect is a column,
            with the level's random effect added where the factor has one of that name.
        """
        fe = self.fixef
        out = {}
        for g, re in self.ranef().items():
            frame = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index,
                                 columns=fe.index)
            for c in re.columns:
                if c in frame.columns:
                    frame[c] = frame[c] + re[c].to_numpy()
                else:
                    frame[c] = re[c].to_numpy()
            out[g] = frame
        return out

    # -- linear predictor ----------------------------------------------------------------
    def _eta(self, newdata=None, re_form=None, allow_new_levels=False, offset=None):
        return linear_predictor(self.design, self.beta, self.random_effects, newdata,
                                re_form, allow_new_levels, offset, self.theta)

    def _index(self, newdata=None) -> pd.Index:
        return self.design.frame.index if newdata is None else pd.DataFrame(newdata).index

    @cached_property
    def _joint_covariance(self):
        from ..prediction.joint import joint_covariance

        return joint_covariance(self)

    def model_matrix(self, newdata=None) -> pd.DataFrame:
        """The fixed-effects model matrix ``X`` of ``newdata`` (default: the fitting rows),
        with the fit's columns (the FAQ's ``model.matrix(formula(fm1)[-2], newdat)``).

        Stateful transforms and categorical codings are those of the fit; the response is
        not needed.

        Parameters
        ----------
        newdata : DataFrame or dict, optional

        Returns
        -------
        pandas.DataFrame
            Columns named as :attr:`fixef`, rows indexed like ``newdata`` (NaN where a
            predictor is missing).
        """
        from ..prediction.matrices import model_matrix

        return model_matrix(self.design, newdata)

    def random_matrix(self, newdata=None, re_form=None, allow_new_levels: bool = False):
        """The random-effects model matrix ``Z`` of ``newdata`` (default: the fitting rows),
        sparse, in the fit's column layout (that of ``get_matrix("Z")``: term by term,
        level by level).

        Parameters
        ----------
        newdata : DataFrame or dict, optional
        re_form : None or str
            Terms to include (the others' columns are zero), as in :meth:`predict`.
        allow_new_levels : bool
            Rows of levels the fit did not see get zero rows instead of an error.

        Returns
        -------
        scipy.sparse.csr_matrix (rows, q)
            Rows with a missing predictor are zero.
        """
        from ..prediction.matrices import random_matrix

        return random_matrix(self.design, newdata, re_form, allow_new_levels)

    # -- diagnostics ----------------------------------------------------------------------
    def is_singular(self, tol: float = SINGULAR_TOL) -> bool:
        """True when a variance is (nearly) zero or a correlation is +-1 (lme4's rule).

        lme4's ``isSingular``: some element of ``theta`` whose lower bound is 0 (a
        diagonal element of a relative covariance factor) is below ``tol``.

        Parameters
        ----------
        tol : float
            Threshold on those elements of ``theta``.

        Returns
        -------
        bool
        """
        return bool(singular_groups(self.design.terms, self.design.theta_slices(),
                                    self.theta, tol))

    # -- data out -------------------------------------------------------------------------
    def get_matrix(self, name: str):
        """A matrix or vector of the fit by name, as lme4's ``getME``: ``"X"``, ``"Z"``,
        ``"Zt"``, ``"Lambda"``, ``"Lambdat"`` (sparse), ``"theta"``, ``"beta"``, ``"u"``,
        ``"b"``, ``"y"``, ``"mu"``, ``"eta"``, ``"offset"``, ``"weights"``, ``"sigma"``,
        ``"lower"``, ``"Gp"``, ``"cnms"``, ``"n"``, ``"p"``, ``"q"``
        (:mod:`mixedmodels.results.matrices`).

        Parameters
        ----------
        name : str
            One of the names above.

        Returns
        -------
        ndarray, scipy.sparse matrix, number or dict
        """
        from .matrices import get_matrix

        return get_matrix(self, name)

    def tidy(self, effects=("fixed", "ran_pars"), conf_int: bool = False,
             conf_level: float = 0.95, conf_method: str = "wald",
             ddf: str | None = "satterthwaite", scales: str = "sdcor",
             names: str = "r") -> pd.DataFrame:
        """One row per parameter, as broom.mixed's ``tidy``
        (:func:`mixedmodels.results.tidy.tidy` has the details).

        Columns ``effect, component, group, [level,] term, estimate, std_error, statistic,
        [df,] p_value`` and, with ``conf_int=True``, ``conf_low, conf_high``.
        ``effects``: ``"fixed"``, ``"ran_pars"`` (``sd__(Intercept)``,
        ``cor__(Intercept).Days``, ``sd__Observation``), ``"ran_vals"`` (conditional modes)
        or ``"ran_coefs"``, or several. ``conf_method``: ``"wald"``, ``"profile"`` or
        ``"boot"``. ``ddf``: the LMM's denominator df (``"lme4"``: none).

        Parameters
        ----------
        effects : str or sequence of str
            ``"fixed"``, ``"ran_pars"``, ``"ran_vals"``, ``"ran_coefs"``.
        conf_int : bool
            Add confidence intervals.
        conf_level : float
        conf_method : {"wald", "profile", "boot"}
        ddf : {"satterthwaite", "kenward-roger", "containment", "lme4"}
        scales : {"sdcor", "vcov"}
            Random-effects parameters as sd/correlations or variances/covariances.
        names : {"r", "python"}
            R's coefficient names (broom.mixed's) or this package's.

        Returns
        -------
        pandas.DataFrame
        """
        from .tidy import tidy

        return tidy(self, effects, conf_int, conf_level, conf_method, ddf, scales, names)

    def glance(self) -> pd.DataFrame:
        """One row of fit statistics, as broom.mixed's ``glance``: ``nobs, sigma, logLik,
        AIC, BIC, REMLcrit`` (REML fits) or ``deviance``, ``df_residual``.

        Returns
        -------
        pandas.DataFrame
        """
        from .tidy import glance

        return glance(self)

    def to_dict(self, names: str = "python", ranef: bool = False) -> dict:
        """The fit as JSON-serializable Python objects (``json.dumps(m.to_dict())``):
        formula, family, estimates, standard errors, variance components, fit statistics,
        convergence, messages (:func:`mixedmodels.results.tidy.to_dict`).

        Parameters
        ----------
        names : {"python", "r"}
            Coefficient names: those of :attr:`fixef` or R's.
        ranef : bool
            Also the conditional modes and their sds per grouping factor.

        Returns
        -------
        dict
        """
        from .tidy import to_dict

        return to_dict(self, names, ranef)

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        flags = []
        if not self.converged:
            flags.append("not converged")
        if self.is_singular():
            flags.append("singular")
        groups = ", ".join(f"{g}: {n}" for g, n in self.ngroups.items())
        extra = f" [{', '.join(flags)}]" if flags else ""
        return (f"<{type(self).__name__} {self.design.spec.formula!r} ({self._kind()}), "
                f"nobs={self.nobs}, groups=({groups}), objective={self.objective:.4f}"
                f"{extra}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def to_markdown(self) -> str:
        """The summary as Markdown (needs no extra package).

        Returns
        -------
        str
        """
        return self.summary().to_markdown()

    def to_latex(self) -> str:
        """The summary's tables as LaTeX ``tabular`` environments (needs no extra
        package).

        Returns
        -------
        str
        """
        return self.summary().to_latex()
