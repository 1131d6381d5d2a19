"""Term tests and model summaries of a fitted model: ``drop1``, ``r2``, ``icc``,
``re_pca``.

A mixin shared by every mixed-model result (``lmer``, ``glmer``, ``glmer_nb``,
``glmmtmb``). Like :mod:`mixedmodels.methods` it is a facade above results/ and
inference/ (results/ imports no inference/): each method delegates to
:mod:`mixedmodels.inference` or :mod:`mixedmodels.diagnostics`, imported when called.
"""

from __future__ import annotations

import pandas as pd

from ._errors import MixedModelsError

__all__ = ["TermsMixin", "glmmtmb_anova_table"]


class TermsMixin:
    """Single-term deletions, R² and ICC, principal components of the random effects."""

    def _component_view(self, component: str):
        """The lme4-style result of one linear predictor (the fit itself for lme4's
        class, whose only component is ``cond``)."""
        view = getattr(self, "component", None)
        if callable(view):
            return view(component)
        if component != "cond":
            raise MixedModelsError(f"component={component!r}: this model has only the "
                                   "conditional ('cond') component")
        return self

    def drop1(self, scope=None, test: str = "none", k: float = 2.0, ddf=None
              ) -> pd.DataFrame:
        """Refit without each fixed-effect term that marginality allows to drop (lme4's
        ``drop1``; :mod:`mixedmodels.inference.drop1`).

        Parameters
        ----------
        scope : str or list of str, optional
            Terms to drop one at a time (default: every term no other term contains).
        test : {"none", "Chisq", "F"}
            ``"Chisq"`` adds the likelihood-ratio statistic ``LRT`` and ``Pr(Chi)``.
            ``"F"``: lmerTest's ``drop1`` (F tests of each term, no refits).
        k : float
            Penalty per parameter of the ``AIC`` column.
        ddf : {None, "satterthwaite", "kenward-roger", "containment"}
            Denominator df of ``test="F"`` (None: Satterthwaite's for ``lmer`` fits,
            Kenward-Roger's on the working model for ``glmer`` fits).

        Returns
        -------
        pandas.DataFrame
            Index ``<none>`` then the terms; columns ``npar``, ``AIC`` (and ``LRT``,
            ``Pr(Chi)``). Maximum-likelihood fits throughout (REML fits are refitted by
            ML, as lme4 does). With ``test="F"``: a row per term, lmerTest's columns.
        """
        from .inference.drop1 import drop1

        return drop1(self, scope=scope, test=test, k=k, ddf=ddf)

    def r2(self):
        """Nakagawa & Schielzeth's marginal and conditional R², as
        ``performance::r2_nakagawa`` (:mod:`mixedmodels.inference.r2`).

        Returns
        -------
        R2Result
            ``marginal``, ``conditional`` and the ``variances`` behind them.
        """
        from .inference.r2 import r2_nakagawa

        return r2_nakagawa(self)

    def icc(self, by_group: bool = False):
        """Adjusted and unadjusted intraclass correlation, as ``performance::icc``
        (:mod:`mixedmodels.inference.r2`).

        Parameters
        ----------
        by_group : bool
            The ICC of each grouping factor instead (performance's ``by_group = TRUE``;
            :func:`mixedmodels.inference.r2.icc_by_group`).

        Returns
        -------
        ICCResult or pandas.DataFrame
            ``adjusted``, ``unadjusted`` and the ``variances`` behind them; with
            ``by_group=True`` a DataFrame indexed by ``group`` with a column ``ICC``.
        """
        from .inference.r2 import icc, icc_by_group

        return icc_by_group(self) if by_group else icc(self)

    def re_pca(self, component: str = "cond"):
        """Principal components of the random-effects covariance per grouping factor
        (lme4's ``rePCA``; :mod:`mixedmodels.diagnostics.re_pca`).

        Parameters
        ----------
        component : {"cond", "zi"}
            For ``glmmtmb`` fits, the linear predictor whose random effects are analysed.

        Returns
        -------
        RePCA
            ``components[group]``: ``sd`` of each component (relative to sigma for an
            LMM), ``proportion`` of the variance, ``cumulative``; ``rotation[group]``.
            A near-zero ``sd`` marks a singular covariance.
        """
        from .diagnostics.re_pca import re_pca

        view = self._component_view(component)
        return re_pca(view.design, view.theta)


def glmmtmb_anova_table(fit, type, test: str, component: str, ddf=None) -> pd.DataFrame:
    """Wald chi-square tests of one component of a fit of glmmTMB's class (the facade's
    door to :func:`mixedmodels.inference.wald_anova.wald_anova` for
    :meth:`GlmmTMBResult.anova_table <mixedmodels.results.glmmtmb.GlmmTMBResult.anova_table>`)."""
    from .inference.wald_anova import normalize_test, wald_anova

    if ddf is not None:
        raise MixedModelsError(
            f"ddf={ddf!r}: glmmtmb fits have Wald chi-square tests only (glmmTMB's Anova). "
            "F tests with Satterthwaite or Kenward-Roger df are for mm.lmer fits, and "
            "Kenward-Roger F tests on the working model for mm.glmer fits "
            "(gm.anova_table(ddf='kenward-roger'))")
    if normalize_test(test) != "wald":
        raise ValueError("glmmtmb fits have Wald chi-square tests only (test='wald'), as "
                         "glmmTMB's Anova; for likelihood-ratio tests use drop1 or mm.anova")
    return wald_anova(fit, type=type, component=component)
