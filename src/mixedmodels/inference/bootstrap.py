r"""Parametric bootstrap of a fitted model (lme4's ``bootMer``).

Each replicate simulates a response from the fitted model (new random effects and residuals
by default: lme4's ``use.u = FALSE``), refits the model to it with the same design and
settings, and evaluates a statistic on the refit. The replicates estimate the sampling
distribution of the statistic; percentile intervals of the parameters are
``confint(method="boot")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..display.tables import Report, ReportDisplay
from .replicates import run_replicates, stack_values
from .simulate import SIMULATE_NONE, refitter, replicate_rng, replicate_seed_root, simulator
from .varpar import SdCorMap

__all__ = ["BootstrapResult", "bootstrap", "parameter_vector", "replicate_task"]


def parameter_vector(m) -> pd.Series:
    """All parameters on lme4's profile scale: sd/cor per term, sigma, fixed effects."""
    has_sigma = getattr(m, "residual_sd", None) is not None
    smap = SdCorMap(m.design, has_sigma=has_sigma)
    var = smap.from_theta(np.asarray(m.theta, float), float(m.sigma) if has_sigma else 1.0)
    return pd.Series(np.concatenate([var, np.asarray(m.beta, float)]),
                     index=list(smap.names) + list(m.fixef.index))


def replicate_task(m, seed, re_form, work, light: bool = False):
    """``i -> work(refit of m to simulated response i, response)``, a closure for
    :func:`run_replicates` (forked workers inherit it; nothing is pickled)."""
    one, refit = simulator(m, re_form), refitter(m, light=light)
    root = replicate_seed_root(seed)

    def task(i: int):
        y = one(replicate_rng(root, i))
        return work(refit(y), y)

    return task


@dataclass(frozen=True, repr=False)
class BootstrapResult(ReportDisplay):
    """Replicates of a statistic under the parametric bootstrap.

    Attributes
    ----------
    t0 : pandas.Series
        The statistic on the original fit.
    replicates : pandas.DataFrame
        One row per successful replicate (index: replicate number), one column per
        component of the statistic.
    nsim : int
        Replicates requested.
    failures : tuple of (int, str)
        Replicates whose refit or statistic failed, with the error; they are left out.
    warnings : dict of str -> int
        Replicates that raised each warning category (e.g. ``SingularFitWarning``).
    seconds : float
    """

    t0: pd.Series
    replicates: pd.DataFrame
    nsim: int
    failures: tuple
    warnings: dict
    seconds: float

    @property
    def n_failed(self) -> int:
        """Number of replicates whose refit or statistic failed (left out)."""
        return len(self.failures)

    def summary(self) -> pd.DataFrame:
        """boot's print: the statistic, its bootstrap bias and standard error.

        Returns
        -------
        pandas.DataFrame
            One row per component of the statistic; columns ``original`` (on the data),
            ``bias`` (mean of the replicates minus original) and ``std. error`` (standard
            deviation of the replicates).
        """
        r = self.replicates
        return pd.DataFrame({"original": self.t0, "bias": r.mean() - self.t0,
                             "std. error": r.std(ddof=1)})

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
        """Bootstrap intervals (boot's ``boot.ci`` types).

        With replicates ``t*``, original ``t0`` and ``a = (1 - level) / 2``: ``"perc"``
        (lme4's default) is ``[q_a(t*), q_{1-a}(t*)]``; ``"basic"`` is
        ``[2 t0 - q_{1-a}(t*), 2 t0 - q_a(t*)]``; ``"norm"`` is
        ``2 t0 - mean(t*) +- z_{1-a} sd(t*)``.

        Parameters
        ----------
        level : float
            Coverage probability.
        type : {"perc", "basic", "norm"}
            Interval type.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, one row per component of the statistic.
        """
        a = (1.0 - level) / 2.0
        r = self.replicates
        if type == "perc":
            lo, hi = r.quantile(a), r.quantile(1.0 - a)
        elif type == "basic":
            lo, hi = 2 * self.t0 - r.quantile(1.0 - a), 2 * self.t0 - r.quantile(a)
        elif type == "norm":
            z = stats.norm.ppf(1.0 - a)
            centre = 2 * self.t0 - r.mean()
            lo, hi = centre - z * r.std(ddof=1), centre + z * r.std(ddof=1)
        else:
            raise ValueError(f"type must be 'perc', 'basic' or 'norm', got {type!r}")
        return pd.DataFrame({"lower": lo, "upper": hi})

    def report(self) -> Report:
        """The printed layout as text lines and tables (see ``ReportDisplay``)."""
        from .format import frame_cells

        blocks: list = [f"Parametric bootstrap: {self.nsim} replicates, {self.n_failed} "
                        f"failed, {self.seconds:.1f} s"]
        if self.warnings:
            blocks.append("warnings in replicates: " + ", ".join(
                f"{k} ({v})" for k, v in sorted(self.warnings.items())))
        blocks.append(frame_cells(self.summary(), digits=5, stars=False,
                                  title="Bootstrap statistics"))
        return Report(tuple(blocks))


def _as_series(value, names=None) -> pd.Series:
    try:
        if isinstance(value, pd.Series):
            return value.astype(float)
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"bootstrap: func must return numbers (a number, an array or a "
                         f"Series of them, as lme4's bootMer FUN), got {value!r}") from None
    if names is None:
        names = [f"t{i + 1}" for i in range(arr.size)] if arr.size > 1 else ["t1"]
    return pd.Series(arr, index=names)


def bootstrap(m, func=None, nsim: int = 1000, seed=None, n_jobs: int = 1,
              re_form=SIMULATE_NONE, progress=None) -> BootstrapResult:
    """Parametric bootstrap of ``func(fit)`` (see :meth:`InferenceMixin.bootstrap`)."""
    func = parameter_vector if func is None else func
    t0 = _as_series(func(m))
    names = list(t0.index)

    def work(fit, y):
        return _as_series(func(fit), names).to_numpy()

    run = run_replicates(replicate_task(m, seed, re_form, work), nsim, n_jobs, progress,
                         label="bootstrap")
    mat, idx = stack_values(run.values)
    if mat.shape[0] and mat.shape[1] != len(names):
        raise ValueError(f"func returned {mat.shape[1]} values on replicates but "
                         f"{len(names)} on the fit")
    reps = pd.DataFrame(mat if mat.size else np.zeros((0, len(names))), columns=names,
                        index=pd.Index(idx, name="replicate"))
    return BootstrapResult(t0, reps, nsim, run.failures, run.warnings, run.seconds)
