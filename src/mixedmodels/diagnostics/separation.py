r"""Complete separation: fixed effects whose estimates run off to infinity.

In a binomial model a binary predictor whose 1s all have the same response (a single 1
among 1,000 rows with ``y = 0``) has no finite maximum-likelihood estimate: the deviance keeps
falling, ever more slowly, as its coefficient goes to minus infinity. The same happens to a
Poisson coefficient whose observations are all zero. The other coefficients stay well
defined, and lme4 reports them with the separated one somewhere far out (below -10 on the
logit scale) and an enormous standard error.

It shows in the information: once the fitted means of those observations sit at the edge
of the family's range their working weights vanish, and so does the information along the
direction of ``beta`` that moves only them. With the ``W``-orthonormal basis ``X~`` of the
fixed effects (``X~' diag(prior) X~ = I``) the eigenvalues of ``X~' W X~`` lie between the
smallest and the largest weight per unit of prior weight; a direction whose eigenvalue is
below :data:`SEPARATION_INFO_TOL` of the largest weight carries no information. The
coefficients that make up that direction (mapped back to the user's columns, weighted by the
size of each column) are the separated ones.
"""

from __future__ import annotations

import numpy as np

from .._errors import MixedModelsWarning
from ..linalg import FixedBasis

__all__ = ["SEPARATION_INFO_TOL", "SeparationWarning", "separated_columns",
           "separated_from_information",
           "separation_message"]

#: Information along a direction of beta, relative to the largest working weight per unit
#: of prior weight, below which the direction is separated. Separated coefficients have
#: weights below 1e-8 at the fit (PIRLS's ``SEPARATED_WEIGHT``); well-determined ones are
#: many orders of magnitude above this.
SEPARATION_INFO_TOL = 1e-7
#: A column is named when its share of a separated direction (coefficient times column
#: norm) is at least this fraction of the largest share.
SEPARATION_SHARE = 0.1


class SeparationWarning(MixedModelsWarning):
    """A fixed effect has no finite estimate (complete or quasi-complete separation)."""


def separated_columns(basis: FixedBasis, X: np.ndarray, weights: np.ndarray,
                      prior: np.ndarray) -> np.ndarray:
    """Indices of the columns of ``X`` whose coefficients are separated (module docstring).

    Parameters
    ----------
    basis : FixedBasis
        Of ``X`` under the prior weights.
    X : ndarray (n, p)
        The user's fixed-effects columns.
    weights : ndarray (n,)
        Working (Fisher) weights at the fit, prior weights included.
    prior : ndarray (n,)
        Prior weights.
    """
    if X.shape[1] == 0:
        return np.zeros(0, dtype=int)
    info = basis.X.T @ (weights[:, None] * basis.X)
    pos = prior > 0
    scale = float(np.max(weights[pos] / prior[pos])) if pos.any() else 0.0
    return separated_from_information(basis, info, scale, np.linalg.norm(X, axis=0))


def separated_from_information(basis: FixedBasis, info: np.ndarray, scale: float,
                               column_norms: np.ndarray) -> np.ndarray:
    """:func:`separated_columns` from its reductions of the rows (what a chunked or
    distributed backend sums).

    Parameters
    ----------
    basis : FixedBasis
    info : ndarray (p, p)
        ``X~' W X~`` with the working weights.
    scale : float
        The largest working weight per unit of prior weight.
    column_norms : ndarray (p,)
        Euclidean norms of the user's columns of ``X``.
    """
    if info.shape[0] == 0:
        return np.zeros(0, dtype=int)
    evals, evecs = np.linalg.eigh(0.5 * (info + info.T))
    small = evals < SEPARATION_INFO_TOL * scale
    if not small.any() or scale <= 0:
        return np.zeros(0, dtype=int)
    directions = basis.R_inv @ evecs[:, small]             # in beta, one per column
    share = np.abs(directions) * column_norms[:, None]
    share = share / np.max(share, axis=0, keepdims=True)
    return np.flatnonzero(np.any(share >= SEPARATION_SHARE, axis=1))


def separation_message(names: list[str], estimates: np.ndarray, family: str) -> str:
    """Warning text naming the separated coefficients."""
    listed = ", ".join(f"{n!r} ({e:.3g})" for n, e in zip(names, estimates, strict=True))
    edge = "0 or 1" if family == "binomial" else "0"
    return (
        f"complete separation: the fitted means of the observations that determine {listed} "
        f"are {edge}, so {'this coefficient has' if len(names) == 1 else 'these have'} no "
        "finite estimate (the likelihood keeps increasing as it runs off to infinity). Its "
        "estimate and standard error are not meaningful; the other coefficients and the "
        "random effects are estimated with it held where the likelihood stopped changing. "
        "Consider a penalized fit (a weakly informative prior on the fixed effects, as "
        "blme's bglmer or Firth's bias reduction), or merging the sparse category."
    )
