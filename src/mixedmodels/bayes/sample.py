r"""``m.sample()``: MCMC draws from the posterior of a fit's parameters.

The chains run a No-U-Turn sampler on the target of :mod:`.targets` (the random effects
integrated out: exactly for LMMs, by the Laplace approximation for GLMMs): by default
nutpie's (:mod:`.nutpie_backend`, the ``bayes`` extra), with ``backend="builtin"`` the
numpy NUTS of :mod:`.nuts` (no extra needed; usually slower). Starting values come from the fit:
with ``H`` the Hessian of ``-log p`` at the estimates (central differences of the exact
gradient; ``d`` is small), each chain starts at a draw from ``N(z_hat, H^{-1})`` --
dispersed around the mode, as R-hat needs. The builtin sampler also takes ``H^{-1}`` as
its first inverse metric; both re-estimate the metric from the chains' draws in warmup.

The variance parameters are sampled as ``theta`` on the whole real line: the likelihood is
even in the sign of each column of ``Lambda``, so the density is smooth through
``theta = 0`` and chains cross a zero variance instead of sticking at a boundary (the GLMM
FAQ's complaint about ``mcmcsamp``); the reported sds and correlations are functions of
``Lambda Lambda'`` and do not see the sign.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd

from .._errors import MixedModelsWarning
from .._messages import user_stacklevel
from .._threads import blas_threads
from .nutpie_backend import import_nutpie, run_nutpie
from .nuts import NutsSettings, run_chain
from .posterior import PosteriorSamples
from .targets import target_of

__all__ = ["BACKENDS", "SamplingWarning", "sample"]

#: Relative step of the central differences of the gradient giving the start Hessian.
HESSIAN_STEP = 1e-5
#: Eigenvalues of the start Hessian are floored at this fraction of the largest.
HESSIAN_FLOOR = 1e-8
#: Chains whose R-hat exceeds this draw a warning (Vehtari et al.'s threshold).
RHAT_WARN = 1.01
#: Start draws outside the support are pulled halfway back to the mode this often.
START_TRIES = 20
#: The samplers ``backend=`` names: nutpie's NUTS (default) and the numpy NUTS of .nuts.
BACKENDS = ("nutpie", "builtin")


class SamplingWarning(MixedModelsWarning):
    """Divergences or unconverged chains in ``m.sample()``."""


def _start_covariance(target, z: np.ndarray) -> np.ndarray:
    d = z.size
    H = np.empty((d, d))
    for j in range(d):
        h = HESSIAN_STEP * max(1.0, abs(z[j]))
        up, dn = z.copy(), z.copy()
        up[j] += h
        dn[j] -= h
        H[:, j] = -(target(up)[1] - target(dn)[1]) / (2.0 * h)
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        return np.eye(d)
    vals, vecs = np.linalg.eigh(H)
    top = max(float(np.max(np.abs(vals))), 1e-12)
    vals = np.maximum(np.abs(vals), HESSIAN_FLOOR * top)
    return (vecs / vals) @ vecs.T


def _start_point(target, z_hat, cov, rng) -> np.ndarray:
    L = np.linalg.cholesky(cov + 1e-300 * np.eye(z_hat.size))
    step = L @ rng.standard_normal(z_hat.size)
    for _ in range(START_TRIES):
        z = z_hat + step
        if math.isfinite(target(z)[0]):
            return z
        step = 0.5 * step
    return z_hat.copy()


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)
                        and seed >= 0):
        return np.random.SeedSequence(seed)
    raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None; "
                     f"got {seed!r}")


def _check_args(draws, chains, warmup):
    for name, v, least in (("draws", draws, 1), ("chains", chains, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or int(v) != v or v < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {v!r}")


def sample(m, draws: int = 1000, chains: int = 4, seed=None, warmup: int = 1000, *,
           ranef: bool = False, target_accept: float = 0.8, max_depth: int = 10,
           warn: bool = True, backend: str = "nutpie") -> PosteriorSamples:
    """Posterior draws of ``(theta, beta, sigma)`` of a fit (see :meth:`sample` of the
    results).

    Parameters
    ----------
    m : fit
        An lmer, blmer, glmer (binomial, poisson; nAGQ = 1) or bglmer fit.
    draws, chains, warmup : int
        Kept draws per chain, number of chains (run one after the other), warmup
        iterations per chain.
    seed : int or numpy.random.Generator, optional
    ranef : bool
        Also draw the random effects given each parameter draw (LMMs).
    target_accept, max_depth : float, int
        NUTS tuning (:class:`~mixedmodels.bayes.nuts.NutsSettings`).
    warn : bool
        Warn about divergences and R-hat above :data:`RHAT_WARN`.
    backend : {"nutpie", "builtin"}
        The sampler: nutpie's NUTS (Rust, diagonal mass matrix adapted from draws and
        gradients; needs ``pip install 'mixedmodels[bayes]'``), or ``"builtin"``, the
        package's numpy NUTS with Stan's warmup and a dense metric (no extra needed;
        measured: 1.1 to 1.7 times fewer effective draws per CPU second on LMMs, 15%
        more on cbpp's correlated fixed effects; benchmarks/results/bayes.md).

    Returns
    -------
    PosteriorSamples
    """
    _check_args(draws, chains, warmup)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "nutpie":
        import_nutpie()                 # before any work: say how to install it
    settings = NutsSettings(target_accept=target_accept, max_depth=max_depth)
    target = target_of(m)
    if ranef and target.ranef is None:
        raise ValueError("ranef=True is available for LMM fits only (the GLMM target "
                         "integrates the random effects by the Laplace approximation)")
    z_hat = np.asarray(target.z_hat, dtype=float)
    if not math.isfinite(target(z_hat)[0]):
        # an estimate on a boundary the prior excludes (never for a converged fit):
        # move the variance parameters off zero
        z_hat = z_hat.copy()
        z_hat[:target.k] = np.where(z_hat[:target.k] == 0.0, 1e-3, z_hat[:target.k])
    root = _seed_sequence(seed)
    t0 = time.perf_counter()
    outs, ranefs = [], []
    # thousands of small dense solves: one BLAS thread (threads only cost here)
    with blas_threads(getattr(target, "dense_size", 0)):
        cov = _start_covariance(target, z_hat)
        if backend == "nutpie":
            def start(s):
                return _start_point(target, z_hat, cov, np.random.default_rng(s))

            outs = run_nutpie(target, start, draws, warmup, chains,
                              int(root.generate_state(1, np.uint64)[0]), settings)
            rngs = [np.random.default_rng(ss) for ss in root.spawn(chains)]
        else:
            rngs = []
            for ss in root.spawn(chains):
                rng = np.random.default_rng(ss)
                z0 = _start_point(target, z_hat, cov, rng)
                outs.append(run_chain(target, z0, draws, warmup, rng, settings,
                                      inv_metric=cov))
                rngs.append(rng)
        if ranef:
            ranefs = [np.array([target.ranef(z, rng) for z in o.x])
                      for o, rng in zip(outs, rngs, strict=True)]
    seconds = time.perf_counter() - t0
    return _assemble(m, target, outs, ranefs if ranef else None, seconds, warn,
                     backend)


def _index(chains: int, draws: int) -> dict:
    return {"chain": np.repeat(np.arange(chains), draws),
            "draw": np.tile(np.arange(draws), chains)}


def _ranef_names(design) -> list[str]:
    names = []
    for t in design.terms:
        levels = [str(v) for v in t.grouping.levels]
        names += [f"{e}|{t.group}[{lv}]" for lv in levels for e in t.names]
    return names


def _assemble(m, target, outs, ranefs, seconds, warn, backend) -> PosteriorSamples:
    chains, draws = len(outs), outs[0].x.shape[0]
    Z = np.vstack([o.x for o in outs])
    idx = _index(chains, draws)
    P = target.parameters(Z)
    names = target.param_names
    frame = pd.DataFrame({**idx, **{n: P[:, j] for j, n in enumerate(names)}})
    unc = pd.DataFrame({**idx, **{n: Z[:, j] for j, n in enumerate(target.coords)}})
    stats = pd.DataFrame({**idx, **{k: np.concatenate([getattr(o, k) for o in outs])
                                    for k in ("accept", "n_leapfrog", "depth", "diverging",
                                              "energy", "logp")}})
    rel = pd.DataFrame(target.relative_sd(Z), columns=list(target.sd_names()))
    ranef_frame = None
    if ranefs is not None:
        R = np.vstack(ranefs)
        ranef_frame = pd.DataFrame(R, columns=_ranef_names(m.design))
        ranef_frame.insert(0, "draw", idx["draw"])
        ranef_frame.insert(0, "chain", idx["chain"])
    pri = getattr(m, "priors", None)
    res = PosteriorSamples(frame, unc, stats, ranef_frame, rel, target.approximation,
                           tuple(pri.describe()) if pri is not None and pri.any else (),
                           tuple(o.step_size for o in outs), seconds, int(target.n_evals),
                           backend=backend, _names=tuple(names))
    if warn:
        _warn(res)
    return res


def _warn(res: PosteriorSamples) -> None:
    if res.divergences:
        warnings.warn(f"{res.divergences} of {len(res.draws)} trajectories diverged: the "
                      "draws may miss part of the posterior; try target_accept=0.95",
                      SamplingWarning, stacklevel=user_stacklevel())
    if res.nchains > 1 and res.ndraws >= 4:
        rh = res.summary()["r_hat"]
        bad = rh[rh > RHAT_WARN]
        if len(bad):
            warnings.warn(f"R-hat above {RHAT_WARN} for {list(bad.index)} "
                          f"(largest {bad.max():.3f}): the chains disagree; run more "
                          "warmup and draws", SamplingWarning, stacklevel=user_stacklevel())
