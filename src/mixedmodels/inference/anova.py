r"""Likelihood-ratio tests between nested fitted models: lme4's ``anova(m1, m2, ...)``.

Models are sorted by their number of parameters (``npar``, lme4's ``df``); each row after the
first is tested against the row before it with

.. math:: \chi^2 = 2\,(\ell_{\text{larger}} - \ell_{\text{smaller}}), \qquad
          \text{df} = \text{npar}_{\text{larger}} - \text{npar}_{\text{smaller}},

referred to a chi-square distribution. REML criteria of models with different fixed effects
are not comparable, so REML fits are refitted by maximum likelihood first (with a note), as
lme4 does, unless ``refit=False``.

Testing whether a variance is zero puts the null value on the boundary of the parameter
space, where the statistic is not chi-square with ``df`` degrees of freedom. With
``boundary=True`` the p-value uses the 50:50 mixture of chi-squares with ``df - 1`` and
``df`` degrees of freedom (Self & Liang 1987; Stram & Lee 1994); for one variance (``df`` =
1) that is half the chi-square(1) tail -- the mixture of a point mass at 0 and chi-square(1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import MixedModelsError, MixedModelsWarning
from .._messages import user_stacklevel
from ..display.tables import Report, ReportDisplay
from .nesting import check_comparable, check_nested, fixed_effects_differ
from .simulate import refit_ml

__all__ = ["AnovaResult", "RefitNote", "anova", "boundary_pvalue"]


class RefitNote(MixedModelsWarning):
    """Information about a refit done for a test (lme4 prints these as messages)."""


def boundary_pvalue(chisq: float, df: int) -> float:
    """p-value from the 50:50 mixture of chi-square(df - 1) and chi-square(df)."""
    upper = stats.chi2.sf(chisq, df)
    lower = stats.chi2.sf(chisq, df - 1) if df > 1 else float(chisq <= 0)
    return float(0.5 * (upper + lower))


@dataclass(frozen=True, repr=False)
class AnovaResult(ReportDisplay):
    """Table of a likelihood-ratio comparison (lme4's ``anova`` output).

    Attributes
    ----------
    table : pandas.DataFrame
        Index: model names, sorted by ``npar``; columns ``npar, AIC, BIC, logLik, deviance,
        Chisq, Df, Pr(>Chisq)``.
    models : tuple
        The fits compared, in the table's order (ML refits where a refit was done).
    formulas : tuple of str
    refitted : bool
        REML fits were refitted by maximum likelihood.
    boundary : bool
        p-values use the boundary (50:50 mixture) correction.
    notes : tuple of str
        What the table's numbers mean for these fits (fits with priors: the log-likelihood
        at the posterior mode, without the prior).
    """

    table: pd.DataFrame
    models: tuple
    formulas: tuple
    refitted: bool
    boundary: bool
    notes: tuple = ()

    def __getitem__(self, key):
        return self.table[key]

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        from .format import SIGNIF_LEGEND, frame_cells, has_stars

        blocks: list = ["Data: same rows for all models", "Models:"]
        blocks += [f"{name}: {f}" for name, f in zip(self.table.index, self.formulas,
                                                       strict=True)]
        blocks.append(frame_cells(self.table, digits=5, title="Likelihood-ratio tests"))
        if has_stars(self.table):
            blocks += ["---", SIGNIF_LEGEND]
        if self.boundary:
            blocks.append("p-values: 50:50 mixture of chi-square(Df - 1) and chi-square(Df) "
                          "(test of a variance on the boundary)")
        if self.refitted:
            blocks.append("(REML fits refitted by maximum likelihood)")
        blocks += list(self.notes)
        return Report(tuple(blocks))


def _labels(models, names) -> list[str]:
    if names is None:
        return [f"model{i + 1}" for i in range(len(models))]
    names = list(names)
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError(f"names must give {len(models)} distinct labels, got {names!r}")
    return [str(n) for n in names]


def anova(*models, refit: bool = True, boundary: bool = False,
          names=None) -> AnovaResult:
    """Likelihood-ratio tests of nested models (lme4's ``anova`` for several models).

    Parameters
    ----------
    *models
        Two or more fits of the same response on the same rows: linear mixed models
        (:func:`~mixedmodels.lmer`), GLMMs, linear models (:func:`~mixedmodels.lm`), in any
        order; they are sorted by number of parameters.
    refit : bool
        Refit REML fits by maximum likelihood first (default, as lme4). With False the
        REML log-likelihoods are compared, which is only valid when the fixed effects are
        the same.
    boundary : bool
        Use the boundary-corrected p-value for tests of a variance component.
    names : sequence of str, optional
        Row labels (default ``model1``, ``model2``, ... in the order given).

    Returns
    -------
    AnovaResult
        ``.table`` is the DataFrame; printing shows lme4's layout.

    Raises
    ------
    NotNestedError
        Models fitted to different data (different number of observations or response),
        of different families, or not nested.
    """
    if len(models) < 2:
        raise ValueError("anova needs at least two models to compare; for F tests of the "
                         "fixed effects of one model use m.anova_table()")
    for i, m in enumerate(models):
        if not all(hasattr(m, a) for a in ("loglik", "nobs", "design")):
            raise TypeError(f"anova: argument {i + 1} is a {type(m).__name__}, not a fitted "
                            "model (lmer, glmer, glmer_nb, glmmtmb, lm or glm fits)")
    labels = _labels(models, names)
    check_comparable(models, labels)
    reml = [bool(getattr(m, "reml", False)) for m in models]
    fits = list(models)
    if any(reml) and refit:
        warnings.warn("refitting model(s) with ML (instead of REML)", RefitNote,
                      stacklevel=user_stacklevel())
        fits = [refit_ml(m) for m in models]
    elif any(reml) and not all(reml):
        raise MixedModelsError("cannot compare REML and ML fits with refit=False; refit the "
                               "REML fits with REML=False or use refit=True")
    order = sorted(range(len(fits)), key=lambda i: (fits[i].df, i))
    fits = [fits[i] for i in order]
    labels = [labels[i] for i in order]
    for i in range(1, len(fits)):
        check_nested(fits[i - 1], fits[i], labels[i - 1], labels[i])
        if not refit and any(reml) and fixed_effects_differ(fits[i - 1], fits[i]):
            warnings.warn(
                f"{labels[i - 1]} and {labels[i]} differ in their fixed effects: their REML "
                "criteria are not comparable; use refit=True", RefitNote,
                stacklevel=user_stacklevel())
    table = _lrt_table(fits, labels, boundary)
    formulas = tuple(m.design.spec.formula for m in fits)
    with_priors = [lab for lab, m in zip(labels, fits, strict=True)
                   if getattr(m, "prior_note", None)]
    notes = ()
    if with_priors:
        note = next(m.prior_note for m in fits if getattr(m, "prior_note", None))
        notes = (f"{', '.join(with_priors)}: {note}",)
    return AnovaResult(table, tuple(fits), formulas, bool(any(reml) and refit), boundary,
                       notes)


def _lrt_table(fits, labels, boundary: bool) -> pd.DataFrame:
    npar = np.array([m.df for m in fits], dtype=float)
    loglik = np.array([m.loglik for m in fits])
    nobs = fits[0].nobs
    dev = -2.0 * loglik
    chisq = np.full(len(fits), np.nan)
    ddf = np.full(len(fits), np.nan)
    p = np.full(len(fits), np.nan)
    chisq[1:] = dev[:-1] - dev[1:]
    ddf[1:] = np.diff(npar)
    for i in range(1, len(fits)):
        if ddf[i] <= 0:
            continue  # equal npar: no test (lme4 prints NA)
        c = max(chisq[i], 0.0)
        p[i] = boundary_pvalue(c, int(ddf[i])) if boundary else stats.chi2.sf(c, ddf[i])
    return pd.DataFrame({
        "npar": npar.astype(int),
        "AIC": dev + 2.0 * npar,
        "BIC": dev + np.log(nobs) * npar,
        "logLik": loglik,
        "deviance": dev,
        "Chisq": chisq,
        "Df": ddf,
        "Pr(>Chisq)": p,
    }, index=pd.Index(labels, name="model"))
