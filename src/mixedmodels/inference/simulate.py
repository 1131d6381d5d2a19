r"""Simulating responses from a fitted linear mixed model, and refitting to new responses.

Replicate ``i`` of a simulation with seed ``s`` draws from its own random stream, the child
``i`` of ``numpy.random.SeedSequence(s)``. The replicates therefore do not depend on how many
are drawn, in what order, or on how many processes share the work -- which makes the
parallel bootstrap reproducible.

For an LMM, ``y* = X beta + offset + sum_k Z_k b*_k + sigma e / sqrt(w)`` with
``e ~ N(0, I)``. Terms listed in ``re_form`` keep their conditional modes (lme4's
``re.form``: condition on them); the others get new draws
``b*_k = sigma Lambda_k z``, ``z ~ N(0, I)``, one per level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results.predict import select_terms

__all__ = ["SIMULATE_NONE", "refit_glmm", "refit_glmmtmb", "refit_lmm", "refit_ml", "refit_reml",
           "refitter", "replicate_rng", "replicate_rngs", "replicate_seed_root",
           "simulate_family", "simulate_frame", "simulate_glmm_one", "simulate_lm_one",
           "simulate_lmm_one", "simulator"]

#: ``re_form`` that conditions on no random effect (all are drawn anew): lme4's default
#: ``re.form = NA`` for ``simulate``.
SIMULATE_NONE = "~0"


def replicate_seed_root(seed) -> np.random.SeedSequence:
    """The root seed sequence: from an int / SeedSequence, or fresh entropy for None."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        raise TypeError("pass an integer seed (or a SeedSequence), not a Generator: each "
                        "replicate needs its own reproducible stream")
    if isinstance(seed, bool | float | str | bytes):
        # numpy's SeedSequence refuses these from deep inside (or, for True, takes it as 1)
        raise TypeError(f"seed must be None, a non-negative integer, a sequence of them or "
                        f"a numpy SeedSequence; got {seed!r} ({type(seed).__name__})")
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be None, a non-negative integer, a sequence of them or "
                         f"a numpy SeedSequence; got {seed!r}") from None


def replicate_rng(root: np.random.SeedSequence, i: int) -> np.random.Generator:
    """Generator of replicate ``i`` (the ``i``-th child of ``root``, as ``root.spawn``)."""
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i),
                                   pool_size=root.pool_size)
    return np.random.default_rng(child)


def replicate_rngs(seed, nsim: int, start: int = 0) -> list[np.random.Generator]:
    """Generators for replicates ``start .. start + nsim - 1``."""
    root = replicate_seed_root(seed)
    return [replicate_rng(root, i) for i in range(start, start + nsim)]


def simulate_lmm_one(m, rng: np.random.Generator, keep: list[int]) -> np.ndarray:
    """One simulated response of the LMM ``m``; terms in ``keep`` use their fitted modes."""
    d = m.design
    y = d.X @ m.beta + d.offset
    sigma = m.sigma
    for k, (t, sl) in enumerate(zip(d.terms, d.theta_slices(), strict=True)):
        if k in keep:
            b = m.random_effects[k]
        else:
            lam = t.structure.lambda_(m.theta[sl])
            b = sigma * (rng.standard_normal((t.nlevels, t.p)) @ lam.T)
        y += np.einsum("ij,ij->i", t.Z, b[t.grouping.codes])
    return y + m._draw_residuals(rng)


def simulate_lm_one(m, rng: np.random.Generator) -> np.ndarray:
    """One simulated response of a linear model: ``X beta + offset + sigma e / sqrt(w)``."""
    d = m.design
    mu = d.X @ m.beta + d.offset
    noise = rng.standard_normal(mu.shape[0])
    if d.weights is not None:
        noise /= np.sqrt(d.weights)
    return mu + m.sigma * noise


def simulate_family(family, mu: np.ndarray, design, phi: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Responses drawn from ``family`` at means ``mu`` (binomial: proportions of the trial
    counts held in the prior weights)."""
    from ..objective.pirls import prior_weights

    try:
        return _draw(family, mu, prior_weights(design), phi, rng)
    except ValueError as err:
        # numpy's samplers refuse a negative mean or scale: under an identity, sqrt or
        # inverse link, newly drawn random effects can push the linear predictor out of
        # the family's range (lme4 returns NaN draws with a warning there)
        bad = int(np.sum(~(np.asarray(mu, dtype=float) > 0)))
        raise ValueError(
            f"simulate(): {bad} of {np.size(mu)} means are outside the {family.name} "
            f"family's range under its {family.link.name} link ({err}); use re_form=None "
            "to simulate given the fitted random effects, or a link that keeps the mean in "
            "range (log)") from None


def _draw(family, mu: np.ndarray, w: np.ndarray, phi: float,
          rng: np.random.Generator) -> np.ndarray:
    """The family's draws at means ``mu`` with prior weights ``w`` (see
    :func:`simulate_family`)."""
    name = family.name
    if name == "binomial":
        trials = np.rint(w).astype(np.int64)
        return rng.binomial(trials, np.clip(mu, 0.0, 1.0)) / np.maximum(trials, 1)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negative_binomial":
        th = family.theta
        return rng.negative_binomial(th, th / (th + mu)).astype(float)
    if name == "Gamma":
        shape = w / phi
        return rng.gamma(shape, mu / shape)
    if name == "gaussian":
        return mu + np.sqrt(phi / w) * rng.standard_normal(mu.shape[0])
    raise NotImplementedError(f"simulation from the {name} family is not available")


def simulate_glmm_one(m, rng: np.random.Generator, keep: list[int]) -> np.ndarray:
    """One response simulated from the GLMM ``m``: new random effects
    ``b* = sqrt(phi) Lambda z`` for the terms not in ``keep``, then the family's draw."""
    d = m.design
    eta = d.X @ m.beta + d.offset
    scale = float(np.sqrt(m.phi))
    for k, (t, sl) in enumerate(zip(d.terms, d.theta_slices(), strict=True)):
        if k in keep:
            b = m.random_effects[k]
        else:
            lam = t.structure.lambda_(m.theta[sl])
            b = scale * (rng.standard_normal((t.nlevels, t.p)) @ lam.T)
        eta = eta + np.einsum("ij,ij->i", t.Z, b[t.grouping.codes])
    mu = m.family.link.linkinv(eta)
    return simulate_family(m.family, mu, d, m.phi, rng)


def _recipe(m):
    recipe = getattr(m, "recipe", None)
    if recipe is None:
        raise TypeError(f"this {type(m).__name__} carries no FitRecipe (it was not made by "
                        "a fitting function), so it cannot be refitted")
    return recipe


def refit_glmm(m, y, light: bool = False):
    """Fit the GLMM ``m`` to the response ``y`` with its design and the exact settings of
    its fit (its :class:`~mixedmodels.results.FitRecipe`), starting from its estimates
    (and, for ``glmer_nb``, its shape). ``light`` skips the Hessian and convergence checks
    (bootstrap replicates that need only the estimates and the likelihood)."""
    design = m.design.with_response(np.asarray(y, dtype=float))
    return _recipe(m).fit_design(design, family=m.family,
                                 start={"theta": m.theta, "beta": m.beta},
                                 calc_derivs=not light, check_conv=not light)


def simulator(m, re_form=SIMULATE_NONE):
    """``rng -> simulated response`` for any supported fit."""
    from ..results.glmmtmb import GlmmTMBResult
    from .glm import GeneralizedLinearModelResult
    from .lm import LinearModelResult

    if isinstance(m, GlmmTMBResult):
        form = None if re_form is None else SIMULATE_NONE
        return lambda rng: m.simulate(1, seed=rng, re_form=form).to_numpy()[:, 0]
    if isinstance(m, LinearModelResult):
        return lambda rng: simulate_lm_one(m, rng)
    if isinstance(m, GeneralizedLinearModelResult):
        return lambda rng: simulate_family(m.family, m.mu, m.design, m.phi, rng)
    keep = select_terms(m.design, re_form)
    if getattr(m, "family", None) is not None:
        return lambda rng: simulate_glmm_one(m, rng, keep)
    return lambda rng: simulate_lmm_one(m, rng, keep)


def refit_glmmtmb(m, y):
    """Fit the glmmtmb model ``m`` to the response ``y`` (the scale of its fitted values:
    proportions for binomial responses) with its recipe, from its covariance parameters."""
    design = m.design.with_response(np.asarray(y, dtype=float))
    start = {b: m.layout.get(m.x, b) for b in m.layout.names_of("theta")}
    return _recipe(m).fit_design(design, start=start)


def refitter(m, light: bool = True):
    """``y -> refit`` for any supported fit (``light``: skip derivative checks)."""
    from ..results.glmmtmb import GlmmTMBResult
    from .glm import GeneralizedLinearModelResult
    from .lm import LinearModelResult

    if isinstance(m, GlmmTMBResult):
        return lambda y: refit_glmmtmb(m, y)
    if isinstance(m, LinearModelResult | GeneralizedLinearModelResult):
        return m.refit
    if getattr(m, "family", None) is not None:
        return lambda y: refit_glmm(m, y, light=light)
    return lambda y: refit_lmm(m, y, check_conv=not light)


def simulate_frame(m, nsim: int, seed, one) -> pd.DataFrame:
    """``nsim`` simulated responses as a DataFrame (rows: observations, columns: sim_i);
    ``one(rng)`` draws one response."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 0:
        raise ValueError(f"nsim must be a whole number of simulations (>= 0), got {nsim!r}")
    cols = {f"sim_{i + 1}": one(rng) for i, rng in enumerate(replicate_rngs(seed, nsim))}
    return pd.DataFrame(cols, index=m.design.frame.index)


def refit_lmm(m, y, check_conv: bool = True):
    """Fit the LMM ``m`` to the response ``y`` with its design and the exact settings of
    its fit (REML, optimizer, tolerances: its recipe), starting from its theta (as lme4's
    ``refit``)."""
    design = m.design.with_response(np.asarray(y, dtype=float))
    return _recipe(m).fit_design(design, start=m.theta, check_conv=check_conv)


def refit_ml(m):
    """The same LMM fitted by maximum likelihood (lme4's ``refitML``); ``m`` itself when it
    already is an ML fit or has no REML variant."""
    if not getattr(m, "reml", False):
        return m
    return _recipe(m).fit_design(m.design, REML=False, start=m.theta, check_conv=True)


def refit_reml(m):
    """The same LMM fitted by REML (Kenward-Roger and the RLRT need REML fits)."""
    if getattr(m, "reml", True):
        return m
    return _recipe(m).fit_design(m.design, REML=True, start=m.theta, check_conv=True)
