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

__all__ = ["SIMULATE_NONE", "refit_lmm", "refit_ml", "refit_reml", "replicate_rng",
           "replicate_rngs", "replicate_seed_root", "simulate_frame", "simulate_lm_one",
           "simulate_lmm_one"]

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
    return np.random.SeedSequence(seed)


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
    noise = rng.standard_normal(d.nobs)
    if d.weights is not None:
        noise /= np.sqrt(d.weights)
    return y + sigma * noise


def simulate_lm_one(m, rng: np.random.Generator) -> np.ndarray:
    """One simulated response of a linear model: ``X beta + offset + sigma e / sqrt(w)``."""
    d = m.design
    mu = d.X @ m.beta + d.offset
    noise = rng.standard_normal(mu.shape[0])
    if d.weights is not None:
        noise /= np.sqrt(d.weights)
    return mu + m.sigma * noise


def simulate_frame(m, nsim: int, seed, one) -> pd.DataFrame:
    """``nsim`` simulated responses as a DataFrame (rows: observations, columns: sim_i);
    ``one(rng)`` draws one response."""
    cols = {f"sim_{i + 1}": one(rng) for i, rng in enumerate(replicate_rngs(seed, nsim))}
    return pd.DataFrame(cols, index=m.design.frame.index)


def _optimizer_name(opt) -> str:
    return "bobyqa" if opt.optimizer == "nlopt:LN_BOBYQA" else opt.optimizer


def refit_lmm(m, y, check_conv: bool = True):
    """Fit the LMM ``m`` to the response ``y``, reusing its design, REML setting and
    optimizer settings, starting from its theta (as lme4's ``refit``)."""
    from ..fitting import fit_lmm

    design = m.design.with_response(np.asarray(y, dtype=float))
    return fit_lmm(design, REML=m.reml, optimizer=_optimizer_name(m.opt),
                   optimizer_settings=m.opt.settings, start=m.theta, check_conv=check_conv)


def refit_ml(m):
    """The same LMM fitted by maximum likelihood (lme4's ``refitML``); ``m`` itself when it
    already is an ML fit or has no REML variant."""
    if not getattr(m, "reml", False):
        return m
    from ..fitting import fit_lmm

    return fit_lmm(m.design, REML=False, optimizer=_optimizer_name(m.opt),
                   optimizer_settings=m.opt.settings, start=m.theta, check_conv=True)


def refit_reml(m):
    """The same LMM fitted by REML (Kenward-Roger and the RLRT need REML fits)."""
    if getattr(m, "reml", True):
        return m
    from ..fitting import fit_lmm

    return fit_lmm(m.design, REML=True, optimizer=_optimizer_name(m.opt),
                   optimizer_settings=m.opt.settings, start=m.theta, check_conv=True)
