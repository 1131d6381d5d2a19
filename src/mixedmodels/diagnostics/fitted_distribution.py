r"""The fitted response distribution of every observation, conditional on the conditional
modes of the random effects -- one view of lmer, glmer and glmmtmb fits for the residual
diagnostics.

For observation ``i`` the model's density at the fitted linear predictors (random effects
at their modes): the family as a density (:mod:`mixedmodels.families`, glmmTMB's
parameterization), its natural parameters per row and the binomial trials. glmer's
families map to the densities with the same distribution: binomial (trials from the prior
weights), Poisson, negative binomial (``nbinom2`` with size ``theta``), Gamma (shape
``1 / phi``), Gaussian (variance ``phi``); an LMM is Gaussian with variance
``sigma^2 / w_i``.

Responses are on the *count scale* (successes, not proportions), as DHARMa's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..families.registry import make_response_family

__all__ = ["FittedDistribution", "fitted_distribution"]


@dataclass(frozen=True, eq=False)
class FittedDistribution:
    """Per-observation fitted distribution of a model (module docstring).

    Attributes
    ----------
    family : ResponseFamily
        The density (with its zero-inflation wrapper for zero-inflated fits).
    params : dict of str -> ndarray (n,)
        Natural parameters per observation.
    size : ndarray (n,) or None
        Binomial trials.
    observed : ndarray (n,)
        The response on the count scale.
    fitted : ndarray (n,)
        The fitted mean ``E[y_i]`` on the same scale.
    weights : ndarray (n,) or None
        Prior weights multiplying the log-density (glmmtmb), None for none.
    """

    family: object
    params: dict
    size: np.ndarray | None
    observed: np.ndarray
    fitted: np.ndarray
    weights: np.ndarray | None = None

    @property
    def discrete(self) -> bool:
        """The response takes integer values (counts, successes)."""
        return bool(getattr(self.family, "discrete", False))

    def prob_zero(self) -> np.ndarray:
        """``P(y_i = 0)`` per observation: ``cdf(0) - cdf_lower(0)`` (zero for continuous
        families without a point mass at zero)."""
        with np.errstate(all="ignore"):
            p = (self.family.cdf(np.zeros(len(self.observed)), self.params, self.size)
                 - self.family.cdf_lower(np.zeros(len(self.observed)), self.params,
                                         self.size))
        return np.clip(np.asarray(p, dtype=float), 0.0, 1.0)

    def sample(self, rng: np.random.Generator, nsim: int) -> np.ndarray:
        """``nsim`` draws per observation at the fitted parameters: (n, nsim)."""
        params = {k: np.broadcast_to(v, (nsim, len(v))) for k, v in self.params.items()}
        size = None if self.size is None else np.broadcast_to(self.size, (nsim, len(self.size)))
        return np.asarray(self.family.sample(rng, params, size=size), dtype=float).T


def _lme4_family(m):
    """The density and its natural parameters for a glmer fit's family."""
    fam = m.family
    mu = np.asarray(m.solution.mu, dtype=float)
    w = np.asarray(m._prior(), dtype=float)        # prior weights (binomial: trials)
    name = fam.name
    if name == "binomial":
        return make_response_family("binomial"), {"mu": mu}
    if name == "poisson":
        return make_response_family("poisson"), {"mu": mu}
    if name == "negative_binomial":
        return make_response_family("nbinom2"), {"mu": mu, "phi": np.full_like(mu, fam.theta)}
    if name == "Gamma":
        return make_response_family("gamma"), {"mu": mu, "phi": w / m.phi}
    if name == "gaussian":
        return make_response_family("gaussian"), {"mu": mu, "phi": m.phi / w}
    raise NotImplementedError(f"no density for glmer's {name} family in the diagnostics")


def fitted_distribution(m) -> FittedDistribution:
    """The :class:`FittedDistribution` of an lmer, glmer or glmmtmb fit.

    Parameters
    ----------
    m : LinearMixedModelResult, GeneralizedLinearMixedModelResult or GlmmTMBResult

    Returns
    -------
    FittedDistribution
    """
    from ..results.glmmtmb import GlmmTMBResult

    if isinstance(m, GlmmTMBResult):
        nat = m._natural(m._fit_etas())
        obj = m.objective_function
        size = m._size()
        mean = np.asarray(m.family.mean(nat, size=size), dtype=float)
        w = None if obj.weights is None else np.asarray(obj.weights, dtype=float)
        return FittedDistribution(m.family, {k: np.asarray(v, float) for k, v in nat.items()},
                                  size, np.asarray(obj.y, dtype=float), mean, w)
    d = m.design
    if getattr(m, "family", None) is None:            # LMM: Gaussian, variance sigma^2 / w
        mu = m.fitted().to_numpy()
        w = np.ones(d.nobs) if d.weights is None else np.asarray(d.weights, dtype=float)
        return FittedDistribution(make_response_family("gaussian"),
                                  {"mu": mu, "phi": m.sigma ** 2 / w}, None,
                                  np.asarray(d.y, dtype=float), mu)
    family, params = _lme4_family(m)
    if m.family.name == "binomial":
        trials = np.rint(m._prior()).astype(float)
        return FittedDistribution(family, params, trials, np.rint(d.y * trials),
                                  params["mu"] * trials)
    return FittedDistribution(family, params, None, np.asarray(d.y, dtype=float),
                              params["mu"].copy())
