r"""Scaled (quantile) residuals from simulations, DHARMa's ``getQuantile``.

With ``y^*_{ij}`` (``j = 1..s``) responses simulated from the fitted model for observation
``i`` and ``y_i`` the observed one:

* **PIT** (DHARMa's default since 0.3.1; Smith 1985, Dunn and Smyth 1996): ``l_i =
  mean_j(y^*_{ij} < y_i)``, ``u_i = mean_j(y^*_{ij} \le y_i)``; the residual is ``l_i``
  where the two agree (continuous responses) and a uniform draw on ``[l_i, u_i]`` where
  they do not (ties: integer responses, point masses), which makes the residuals of a
  correct model uniform on (0, 1) -- approximately, with the simulation's resolution ``1/s``;
* **traditional** (used with refits): DHARMa's ecdf, ``F(v) = \#\{y^* \le v\}/(s + 1)`` at
  the distinct simulated values and linear in between (0 below the smallest, 1 above the
  largest), evaluated at ``y_i``; for integer responses observation and simulations get
  U(-1/2, 1/2) noise first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ecdf_residuals", "pit_residuals"]


def pit_residuals(simulated: np.ndarray, observed: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """PIT residuals (module docstring).

    Parameters
    ----------
    simulated : ndarray (n, s)
    observed : ndarray (n,)
    rng : numpy.random.Generator
        For the randomization of ties.

    Returns
    -------
    ndarray (n,)
    """
    sims = np.asarray(simulated, dtype=float)
    obs = np.asarray(observed, dtype=float)[:, None]
    lower = np.mean(sims < obs, axis=1)
    upper = np.mean(sims <= obs, axis=1)
    ties = lower != upper
    out = lower.copy()
    if ties.any():
        # one draw per observation, as DHARMa's runif(n, lower, upper)
        draws = rng.uniform(size=lower.size)
        out = np.where(ties, lower + draws * (upper - lower), lower)
    return out


def ecdf_residuals(simulated: np.ndarray, observed: np.ndarray, integer: bool,
                   rng: np.random.Generator) -> np.ndarray:
    """Traditional residuals (module docstring), vectorized over observations.

    Parameters
    ----------
    simulated : ndarray (n, s)
    observed : ndarray (n,)
    integer : bool
        Add U(-1/2, 1/2) noise to observations and simulations first.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray (n,)
    """
    S = np.array(simulated, dtype=float)
    obs = np.array(observed, dtype=float)
    n, s = S.shape
    if integer:
        S = S + rng.uniform(-0.5, 0.5, size=S.shape)
        obs = obs + rng.uniform(-0.5, 0.5, size=n)
    S.sort(axis=1)
    k = np.sum(obs[:, None] >= S, axis=1)                 # values <= obs
    rows = np.arange(n)
    a = S[rows, np.clip(k - 1, 0, s - 1)]                 # largest value <= obs
    b = S[rows, np.clip(k, 0, s - 1)]                     # smallest value > obs
    Fa = k / (s + 1.0)
    Fb = np.sum(b[:, None] >= S, axis=1) / (s + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(b > a, (obs - a) / (b - a), 0.0)
    inside = Fa + np.where(obs > a, frac, 0.0) * (Fb - Fa)
    return np.where(k == 0, 0.0, np.where(k == s, np.where(obs > S[:, -1], 1.0, Fa), inside))
