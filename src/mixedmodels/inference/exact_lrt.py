r"""Exact likelihood-ratio test of one variance component for ML fits (RLRsim's
``exactLRT``; Crainiceanu & Ruppert 2004).

The alternative is a linear mixed model with a single scalar random-effects term,
``y = X beta + Z b + e``, ``b ~ N(0, lambda sigma^2 I)``; the null is a linear model
(:func:`~mixedmodels.lm`) whose fixed effects are nested in ``X`` (``q = p - p_0``
restrictions, possibly none). Both are maximum-likelihood fits, and

.. math:: LRT = 2\,(\ell_{ML}(\text{mixed}) - \ell_{ML}(\text{linear})) \ge 0

has the exact finite-sample null distribution of
:func:`~mixedmodels.inference.rlrt.lr_null_sample` (the spectral representation in
``mu_s``, the eigenvalues of ``Z'(I - P_X)Z``, and ``xi_s``, those of ``Z'Z``), simulated
as RLRsim does. The eigenvalues are scaled as RLRsim scales them: ``mu`` by the largest of
all, then ``xi`` by the largest of the scaled ``mu`` and ``xi`` (the statistic does not depend
on a common scale; the grid for ``lambda`` does).

Unlike :func:`~mixedmodels.rlrt`, the test may also drop fixed effects; unlike the
chi-square LRT of :func:`~mixedmodels.anova`, it needs no boundary correction. REML fits are
refitted by ML (RLRsim instead evaluates the ML likelihood at the REML estimates and says
so).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._errors import MixedModelsError
from .._messages import user_stacklevel
from ..display.tables import Report, ReportDisplay, Table
from .anova import RefitNote
from .lm import LinearModelResult
from .nesting import check_comparable, check_nested
from .rlrt import _label, gram_eigenvalues, lr_null_sample, residual_eigenvalues
from .simulate import refit_ml

__all__ = ["ExactLRTResult", "exact_lrt"]


@dataclass(frozen=True, repr=False)
class ExactLRTResult(ReportDisplay):
    """Outcome of :func:`exact_lrt`.

    Attributes
    ----------
    statistic : float
        Observed LRT (0 when the mixed model does not improve on the linear one).
    p_value : float
        Share of simulated null values above the statistic (1 when it is 0).
    term : str
        The random-effects term tested.
    restrictions : int
        Fixed effects the null model drops (``q``).
    null_sample : ndarray
    """

    statistic: float
    p_value: float
    term: str
    restrictions: int
    null_sample: np.ndarray

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        from .format import format_pvalue

        n = self.null_sample.size
        # a simulated p-value of 0 means below one in n draws, not below 2.2e-16
        shown = f"< {1.0 / n:.1g}" if self.p_value == 0 and n else format_pvalue(self.p_value)
        table = Table(("term", "LRT", "q", "p-value", "null draws"),
                      ((self.term, f"{self.statistic:.4f}", str(self.restrictions),
                        shown, str(n)),),
                      "lrrrr", "Exact likelihood-ratio test")
        return Report((f"simulated finite sample distribution of LRT (p-value based on "
                       f"{self.null_sample.size} simulated values)", table))


def _single_term(m):
    terms = m.design.terms
    if len(terms) != 1 or terms[0].p != 1:
        found = ", ".join(_label(t) for t in terms)
        raise MixedModelsError(
            "exact_lrt needs a model with a single scalar random-effects term (RLRsim's "
            f"exactLRT); m has {found}. For one variance among several use "
            "mm.rlrt(m_full, m_reduced) on REML fits, or mm.pb_test")
    return terms[0]


def _check_inputs(m, m0) -> None:
    if getattr(m, "family", None) is not None or not hasattr(m, "reml"):
        raise MixedModelsError(
            "exact_lrt tests a variance of a linear mixed model (mm.lmer); for GLMMs use "
            "mm.pb_test(m_full, m_reduced)")
    if not isinstance(m0, LinearModelResult):
        raise MixedModelsError(
            "exact_lrt compares a mixed model with a linear model without random effects: "
            "m0 must be an mm.lm(...) fit (RLRsim's m0 is an lm). To test one variance "
            "among several random effects use mm.rlrt(m_full, m_reduced) on REML fits")


def exact_lrt(m, m0, nsim: int = 10000, seed=None) -> ExactLRTResult:
    """Exact likelihood-ratio test that the variance of ``m``'s random effect is zero
    (RLRsim's ``exactLRT``; module docstring).

    Parameters
    ----------
    m : LinearMixedModelResult
        The alternative: one scalar random-effects term. REML fits are refitted by ML
        (with a note).
    m0 : LinearModelResult
        The null, from :func:`~mixedmodels.lm`: the same response and rows, fixed effects
        nested in ``m``'s.
    nsim : int
        Draws from the null distribution.
    seed : int, optional

    Returns
    -------
    ExactLRTResult
        ``statistic``, ``p_value``, ``term``, ``restrictions``, ``null_sample``.
    """
    _check_inputs(m, m0)
    t = _single_term(m)
    check_comparable([m, m0], ["m", "m0"])
    check_nested(m0, m, "m0", "m")
    d = m.design
    n, p = d.nobs, d.p
    q = p - m0.design.p
    if n - p - t.nlevels < 1:
        raise MixedModelsError(
            f"exact_lrt: {t.nlevels} random effects and {p} fixed effects for {n} "
            "observations leave no residual degrees of freedom; reduce the model")
    if q == 0:
        warnings.warn("no restrictions on the fixed effects: the REML-based mm.rlrt(m, m0) "
                      "is preferable (RLRsim's advice)", RefitNote, stacklevel=user_stacklevel())
    if m.reml:
        warnings.warn("refitting the model with ML (exact_lrt compares maximum likelihoods)",
                      RefitNote, stacklevel=user_stacklevel())
    fit = refit_ml(m)
    stat = max(0.0, 2.0 * (fit.loglik - m0.loglik))
    mu = residual_eigenvalues(d, t)
    xi = gram_eigenvalues(d, t)
    scale = max(float(np.max(mu)), float(np.max(xi)))
    mu = mu / scale
    xi = xi / max(float(np.max(mu)), float(np.max(xi)))
    sample = lr_null_sample(mu, n, p, nsim, np.random.default_rng(seed), xi=xi, q=q)
    p_value = float(np.mean(stat < sample)) if stat > 0 else 1.0
    return ExactLRTResult(float(stat), p_value, _label(t), int(q), sample)
