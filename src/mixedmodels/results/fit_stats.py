"""Accessors every fitted model shares, with or without random effects.

A class using :class:`FitStatsMixin` provides ``design``, ``beta``, ``loglik``, ``df``
(number of parameters) and ``_vcov_matrix()``; the mixin derives the named fixed effects,
their covariance and standard errors, and the information criteria the same way for
``lm``, ``glm``, ``lmer`` and ``glmer`` fits, so ``anova`` compares like with like.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

__all__ = ["FitStatsMixin"]


class FitStatsMixin:
    """Fixed effects, their covariance, sizes and AIC/BIC (see module docstring)."""

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, named as formulaic names the columns (R's names under
        ``mm.options(coef_names="r")``)."""
        return pd.Series(self.beta, index=list(self.design.fixed.labels()), name="fixef")

    @cached_property
    def _vcov_values(self) -> np.ndarray:
        return self._vcov_matrix()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates (same order as ``fixef``)."""
        names = list(self.design.fixed.labels())
        return pd.DataFrame(self._vcov_values, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="se")

    @property
    def nobs(self) -> int:
        """Number of observations the fit used (rows left after dropping missing values)."""
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom: observations minus estimated parameters
        (``nobs - df``, as lme4's ``df.residual``)."""
        return self.nobs - self.df

    @property
    def aic(self) -> float:
        """Akaike's criterion ``-2 loglik + 2 df`` (for a REML fit, of the REML criterion,
        as lme4)."""
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        """Schwarz's criterion ``-2 loglik + log(nobs) df``."""
        return -2.0 * self.loglik + np.log(self.nobs) * self.df
