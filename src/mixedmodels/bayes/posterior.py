"""Posterior draws of a fit's parameters (what ``m.sample()`` returns)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .convergence import ess_bulk, ess_tail, mcse_mean, r_hat

__all__ = ["PosteriorSamples"]

#: Default relative size below which a random-effect sd counts as "near zero" (the sd
#: relative to sigma for LMMs, the sd on the link scale for GLMMs).
BOUNDARY_REL = 0.05


@dataclass(frozen=True, eq=False)
class PosteriorSamples:
    """Draws from the posterior of ``(theta, beta, sigma)`` of a fitted model.

    Attributes
    ----------
    draws : DataFrame
        Columns ``chain``, ``draw`` and one per parameter, named as ``confint``'s rows
        (``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ``sigma``, the fixed
        effects).
    unconstrained : DataFrame
        ``chain``, ``draw`` and the sampler's coordinates (``theta[j]`` on the whole real
        line, the fixed effects, ``log_sigma``).
    sampler_stats : DataFrame
        Per draw: ``accept`` (mean acceptance statistic of the trajectory),
        ``n_leapfrog``, ``depth``, ``diverging``, ``energy``, ``logp``.
    ranef_draws : DataFrame or None
        With ``ranef=True`` (LMMs): one draw of the random effects ``b`` given each
        parameter draw, columns ``chain``, ``draw`` and ``<effect>|<group>[<level>]``.
    sd_relative : DataFrame
        The random-effect sds relative to sigma (LMM) or on the link scale (GLMM), per
        draw: what :meth:`boundary_mass` reads.
    approximation : str
        ``"exact"`` (LMM: random effects integrated out exactly) or ``"laplace"``.
    priors : tuple of str
        blme's lines describing the priors (empty: flat).
    step_size : tuple of float
        The adapted step size of each chain.
    seconds : float
        Wall time of the sampling (warmup included).
    n_evals : int
        Log-density evaluations (each with its gradient).
    backend : str
        The sampler that drew them: ``"nutpie"`` or ``"builtin"``.
    """

    draws: pd.DataFrame
    unconstrained: pd.DataFrame
    sampler_stats: pd.DataFrame
    ranef_draws: pd.DataFrame | None
    sd_relative: pd.DataFrame
    approximation: str
    priors: tuple = ()
    step_size: tuple = ()
    seconds: float = float("nan")
    n_evals: int = 0
    backend: str = "nutpie"
    _names: tuple = field(default=(), repr=False)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Parameter names (the columns of :attr:`draws` after ``chain``, ``draw``)."""
        return self._names

    @property
    def nchains(self) -> int:
        """Number of chains."""
        return int(self.draws["chain"].nunique())

    @property
    def ndraws(self) -> int:
        """Draws per chain."""
        return int(len(self.draws) // max(self.nchains, 1))

    def array(self, name: str) -> np.ndarray:
        """Draws of one parameter as an array ``(chains, draws)``.

        Parameters
        ----------
        name : str
            A parameter name (:attr:`parameters`).

        Returns
        -------
        ndarray
        """
        if name not in self.draws.columns or name in ("chain", "draw"):
            raise KeyError(f"no parameter {name!r}; the parameters are {list(self._names)}")
        return self.draws[name].to_numpy().reshape(self.nchains, self.ndraws)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Posterior mean, sd, equal-tailed interval, R-hat and effective sample sizes.

        Parameters
        ----------
        level : float
            Probability of the central interval (0.95: the 2.5% and 97.5% quantiles).

        Returns
        -------
        DataFrame
            One row per parameter: ``mean``, ``sd``, the two quantiles (``2.5%``,
            ``97.5%``), ``mcse_mean``, ``r_hat`` (rank-normalized split R-hat),
            ``ess_bulk`` and ``ess_tail`` (:mod:`mixedmodels.bayes.convergence`).
        """
        lo, hi = _tails(level)
        rows = []
        for name in self._names:
            a = self.array(name)
            rows.append({"mean": a.mean(), "sd": a.std(ddof=1),
                         _pct(lo): np.quantile(a, lo), _pct(hi): np.quantile(a, hi),
                         "mcse_mean": mcse_mean(a) if np.ptp(a) > 0 else 0.0,
                         "r_hat": r_hat(a), "ess_bulk": ess_bulk(a), "ess_tail": ess_tail(a)})
        return pd.DataFrame(rows, index=list(self._names))

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Equal-tailed posterior (credible) intervals, laid out as ``m.confint()``.

        Parameters
        ----------
        level : float
            Posterior probability of each interval.

        Returns
        -------
        DataFrame
            ``lower`` and ``upper`` per parameter.
        """
        lo, hi = _tails(level)
        v = self.draws[list(self._names)]
        return pd.DataFrame({"lower": v.quantile(lo), "upper": v.quantile(hi)})

    def boundary_mass(self, rel: float = BOUNDARY_REL) -> pd.Series:
        """Posterior probability that each random-effect sd is near zero.

        Parameters
        ----------
        rel : float
            "Near zero": below ``rel`` times sigma for an LMM (``|theta| < rel``, the scale
            of lme4's singularity check), below ``rel`` on the link scale for a GLMM.

        Returns
        -------
        Series
            Indexed by the sd parameters.
        """
        if not rel > 0:
            raise ValueError(f"rel must be positive; got {rel}")
        return (self.sd_relative < rel).mean().rename(f"P(sd < {rel:g})")

    @property
    def divergences(self) -> int:
        """Trajectories that ended in a divergence (0 for a healthy run)."""
        return int(self.sampler_stats["diverging"].sum())

    def to_arviz(self):
        """The draws as ArviZ data (arviz must be installed: ``pip install
        'mixedmodels[bayes]'``).

        Returns
        -------
        arviz.InferenceData
            ``posterior`` (one variable per parameter, dims chain x draw) and
            ``sample_stats`` (acceptance_rate, n_leapfrog, tree_depth, diverging, energy).
        """
        try:
            import arviz as az
        except ImportError as exc:
            raise ImportError("to_arviz() needs arviz: pip install 'mixedmodels[bayes]' "
                              "(or pip install arviz)") from exc
        post = {n: self.array(n) for n in self._names}
        stats = {c: self.sampler_stats[c].to_numpy().reshape(self.nchains, self.ndraws)
                 for c in ("accept", "n_leapfrog", "depth", "diverging", "energy")}
        stats["acceptance_rate"] = stats.pop("accept")
        stats["tree_depth"] = stats.pop("depth")
        return az.from_dict(posterior=post, sample_stats=stats)

    def __repr__(self) -> str:
        return (f"<PosteriorSamples: {self.nchains} chains x {self.ndraws} draws of "
                f"{len(self._names)} parameters ({self.approximation}), "
                f"{self.divergences} divergences, {self.seconds:.1f}s, {self.backend}>")


def _tails(level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1); got {level}")
    a = (1.0 - level) / 2.0
    return a, 1.0 - a


def _pct(q: float) -> str:
    return f"{100 * q:.3g}%"
