r"""Parametric-bootstrap likelihood-ratio test of nested models (pbkrtest's ``PBmodcomp``).

Both models are fitted by maximum likelihood (REML fits are refitted). The observed
statistic is ``LRT = 2 (l_large - l_small)``. Responses are simulated from the *small*
(null) model; both models are refitted to each and the replicate statistics form the
reference distribution. As ``PBmodcomp``, only positive replicate statistics are used
(a non-positive one is a replicate where the larger model did not improve the fit at all;
values below ``LRT_ZERO_TOL`` are rounding noise of two fits that reached the same optimum
and count as zero), and

.. math:: p_{PB} = \frac{1 + \#\{LRT^* > LRT\}}{1 + \#\{LRT^* > 0\}}.

The summary adds pbkrtest's approximations built on the reference distribution's mean
``E`` and variance ``V`` (over positive replicates): Bartlett-corrected
``LRT df / E ~ chi2(df)``, a gamma with the same mean and variance, and
``F = LRT / df ~ F(df, 2E / (E - 1))``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._messages import user_stacklevel
from ..display.tables import Report, ReportDisplay
from .anova import RefitNote
from .nesting import check_comparable, check_nested
from .replicates import run_replicates, stack_values
from .simulate import SIMULATE_NONE, refit_ml, refitter

__all__ = ["LRT_ZERO_TOL", "PBTestResult", "pb_test"]

#: Replicate statistics at or below this (deviance units) count as zero: when the larger
#: model's extra variance is estimated at 0 both fits reach the same likelihood, and their
#: difference is rounding (|LRT*| ~ 1e-12) or optimizer tolerance (~1e-6), not evidence.
LRT_ZERO_TOL = 1e-6


@dataclass(frozen=True, repr=False)
class PBTestResult(ReportDisplay):
    """Outcome of :func:`pb_test`.

    Attributes
    ----------
    lrt : float
        Observed likelihood-ratio statistic.
    df : int
        Difference in number of parameters.
    reference : ndarray
        LRT of each successful replicate (replicate order).
    nsim : int
    failures : tuple of (int, str)
        Replicates that failed (left out), with the error.
    warnings : dict of str -> int
    seconds : float
    """

    lrt: float
    df: int
    reference: np.ndarray
    nsim: int
    failures: tuple
    warnings: dict
    seconds: float

    @property
    def _positive(self) -> np.ndarray:
        return self.reference[self.reference > LRT_ZERO_TOL]

    @property
    def n_extreme(self) -> int:
        """Number of positive simulated statistics larger than the observed LRT."""
        return int(np.sum(self._positive > self.lrt))

    @property
    def p_value(self) -> float:
        """Parametric-bootstrap p-value (PBmodcomp's ``PBtest``)."""
        return (1.0 + self.n_extreme) / (1.0 + self._positive.size)

    @property
    def table(self) -> pd.DataFrame:
        """PBmodcomp's table: ``LRT`` (chi-square reference) and ``PBtest`` rows."""
        return pd.DataFrame({"stat": [self.lrt, self.lrt], "df": [self.df, np.nan],
                             "p.value": [stats.chi2.sf(self.lrt, self.df), self.p_value]},
                            index=["LRT", "PBtest"])

    def summary(self) -> pd.DataFrame:
        """PBmodcomp's summary table: LRT, PBtest, Gamma, Bartlett and F rows.

        With ``E`` and ``V`` the mean and variance of the positive simulated statistics:
        ``Gamma`` matches a Gamma distribution to ``E`` and ``V``; ``Bartlett`` rescales the
        LRT to ``df * LRT / E`` (chi-square on ``df``); ``F`` refers ``LRT / df`` to an F
        distribution with ``df`` and ``2 E / (E - 1)`` degrees of freedom.

        Returns
        -------
        pandas.DataFrame
            Rows ``LRT, PBtest, Gamma, Bartlett, F``; columns ``stat, df, ddf, p.value``.
        """
        pos = self._positive
        E, V = float(np.mean(pos)), float(np.var(pos, ddof=1))
        bartlett = self.df * self.lrt / E
        ddf = 2.0 * E / (E - 1.0)
        F = self.lrt / self.df
        p_f = float(stats.f.sf(F, self.df, ddf)) if ddf > 0 else np.nan
        rows = {
            "LRT": (self.lrt, self.df, np.nan, stats.chi2.sf(self.lrt, self.df)),
            "PBtest": (self.lrt, np.nan, np.nan, self.p_value),
            "Gamma": (self.lrt, np.nan, np.nan,
                      stats.gamma.sf(self.lrt, E * E / V, scale=V / E)),
            "Bartlett": (bartlett, self.df, np.nan, stats.chi2.sf(bartlett, self.df)),
            "F": (F, self.df, ddf, p_f),
        }
        return pd.DataFrame.from_dict(rows, orient="index",
                                      columns=["stat", "df", "ddf", "p.value"])

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        from .format import frame_cells

        head = (f"Parametric bootstrap test; time: {self.seconds:.2f} sec; samples: "
                f"{self.nsim}; extremes: {self.n_extreme};")
        if self.failures:
            head += f" failed replicates: {len(self.failures)}"
        blocks: list = [head, frame_cells(self.table, digits=5, stars=False,
                                          title="Parametric bootstrap LRT")]
        if self.warnings:
            blocks.append("warnings in replicates: " + ", ".join(
                f"{k} ({v})" for k, v in sorted(self.warnings.items())))
        return Report(tuple(blocks))


def pb_test(large, small, nsim: int = 1000, seed=None, n_jobs: int = 1,
            progress=None) -> PBTestResult:
    """Parametric-bootstrap LRT of ``small`` nested in ``large`` (PBmodcomp).

    Parameters
    ----------
    large, small : fitted models
        LMMs, GLMMs, linear models (:func:`~mixedmodels.lm`) or GLMs
        (:func:`~mixedmodels.glm`) of the same response on the same rows; REML fits are
        refitted by maximum likelihood.
    nsim : int
        Bootstrap replicates.
    seed : int, optional
        Seed; results do not depend on ``n_jobs``.
    n_jobs : int
        Worker processes.
    progress : bool or None
        Progress bar (tqdm when installed; None: for long runs someone watches).

    Returns
    -------
    PBTestResult
        ``.table`` (LRT and PBtest rows), ``.p_value``, ``.summary()``, ``.reference``.
    """
    from .bootstrap import replicate_task

    check_comparable([large, small], ["large", "small"])
    if any(getattr(m, "reml", False) for m in (large, small)):
        warnings.warn("refitting model(s) with ML (instead of REML)", RefitNote,
                      stacklevel=user_stacklevel())
    large, small = refit_ml(large), refit_ml(small)
    if small.df >= large.df:
        raise ValueError(f"the small model has {small.df} parameters and the large one "
                         f"{large.df}: pass the larger model first")
    check_nested(small, large, "small", "large")
    lrt = 2.0 * (large.loglik - small.loglik)
    refit_large = refitter(large, light=True)

    def work(small_fit, y):
        return 2.0 * (refit_large(y).loglik - small_fit.loglik)

    task = replicate_task(small, seed, SIMULATE_NONE, work, light=True)
    run = run_replicates(task, nsim, n_jobs, progress, label="PB test")
    mat, _ = stack_values(run.values)
    ref = mat[:, 0] if mat.size else np.zeros(0)
    return PBTestResult(float(lrt), int(large.df - small.df), ref, nsim, run.failures,
                        run.warnings, run.seconds)
