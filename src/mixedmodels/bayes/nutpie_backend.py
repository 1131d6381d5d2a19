r"""The default sampler of ``m.sample()``: nutpie's NUTS on our log density and gradient.

nutpie (PyMC's Rust implementation of the No-U-Turn sampler, ``pip install
'mixedmodels[bayes]'``) samples any ``x -> (log p(x), grad log p(x))`` callable through
:func:`nutpie.compiled_pyfunc.from_pyfunc`; the trajectories, the step-size adaptation
and nutpie's warmup of a diagonal mass matrix from the draws *and their gradients* (Seyboldt
et al.'s "gradient-based" estimate, which settles in fewer warmup draws than Stan's draw
variances) run in Rust, and each leapfrog step calls our numpy density once. The chains
run one after the other on one thread (``cores=1``): the density is Python, which holds the
interpreter lock, so threads would only wait for each other.

Starting points: each chain starts at a draw from ``N(z_hat, H^{-1})`` (the Laplace
approximation at the fit's estimates, as the builtin sampler does), drawn with a generator
seeded by the seed nutpie hands the chain, so a seed gives the same draws every time.
nutpie rejects a starting point whose gradient has a zero component (its first mass matrix
is ``1/|grad|``); a dispersed draw has none, and nutpie asks for another otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from .nuts import ChainOutput, NutsSettings

__all__ = ["NUTPIE_HINT", "import_nutpie", "run_nutpie"]

NUTPIE_HINT = ("m.sample() draws with nutpie by default, which is not installed: "
               "pip install 'mixedmodels[bayes]' (or pip install nutpie), or pass "
               "backend='builtin' for the package's own numpy NUTS (no extra)")

def import_nutpie():
    """The nutpie module, or an ImportError that says how to get it."""
    try:
        import nutpie
        from nutpie.compiled_pyfunc import from_pyfunc  # noqa: F401  (the API we use)
    except ImportError as exc:
        raise ImportError(NUTPIE_HINT) from exc
    return nutpie


def _model(nutpie, target, start):
    """A nutpie model of ``target`` whose chains start at ``start(seed)``."""
    from nutpie.compiled_pyfunc import from_pyfunc

    d = target.dim

    def make_logp():
        def logp(x):
            lp, g = target(np.asarray(x, dtype=float))
            if not math.isfinite(lp):
                # outside the support: nutpie ends the trajectory there (a divergence)
                return -math.inf, np.zeros(d)
            return float(lp), np.ascontiguousarray(g, dtype=np.float64)
        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x):
            return {"z": np.array(x, dtype=np.float64)}
        return expand

    return from_pyfunc(d, make_logp, make_expand, [np.dtype("float64")], [(d,)], ["z"],
                       make_initial_point_fn=start)


def run_nutpie(target, start, draws: int, warmup: int, chains: int, seed: int,
               settings: NutsSettings) -> list[ChainOutput]:
    """``chains`` nutpie chains on ``target`` (see the module docstring).

    Parameters
    ----------
    target : sampler target (``z -> (log p, grad)``, ``dim``)
    start : callable
        ``seed -> z0``: a starting point (finite log density) from an integer seed.
    draws, warmup, chains : int
    seed : int
        nutpie's seed (it derives each chain's from it).
    settings : NutsSettings
        ``target_accept`` and ``max_depth`` are passed on; nutpie's metric is diagonal
        (``dense_metric`` does not apply).

    Returns
    -------
    list of ChainOutput
        Post-warmup draws and statistics per chain (``inv_metric``: not reported, NaN).
    """
    nutpie = import_nutpie()
    model = _model(nutpie, target, start)
    trace = nutpie.sample(model, draws=draws, tune=warmup, chains=chains, cores=1,
                          seed=seed, progress_bar=False, save_warmup=False,
                          target_accept=settings.target_accept,
                          maxdepth=settings.max_depth)
    Z = np.asarray(trace.posterior["z"].values, dtype=float)       # chain, draw, d
    st = trace.sample_stats
    col = lambda k, t: np.asarray(st[k].values).astype(t)          # noqa: E731
    acc, nstep, depth = col("mean_tree_accept", float), col("n_steps", int), col("depth", int)
    div, energy, logp = col("diverging", bool), col("energy", float), col("logp", float)
    step = col("step_size", float)
    return [ChainOutput(Z[c], logp[c], acc[c], nstep[c], depth[c], div[c], energy[c],
                        float(step[c, -1]), np.full(target.dim, np.nan))
            for c in range(Z.shape[0])]
