r"""The matrices and vectors of a fitted mixed model by name (lme4's ``getME``).

The model is ``eta = X beta + Z b + offset`` with ``b = Lambda u``. ``Z`` (n x q) has one
block of columns per random-effects term, in lme4's term order; within a term the columns run
level by level, the term's ``p`` effects together (level 1: ``(Intercept), Days``; level 2:
...), which is lme4's layout of ``Zt``'s rows. ``Lambda`` (q x q) is block diagonal,
``I_levels (x) Lambda_k`` per term, so ``Lambda Lambda'`` times ``sigma^2`` (LMM) or the
dispersion (GLMM) is the covariance of ``b``. ``u`` is lme4's spherical random-effects vector
(``b = Lambda u``, a priori ``N(0, sigma^2 I)`` -- ``sigma^2`` the dispersion of a GLMM, 1
for binomial and Poisson), ``b`` the conditional modes in the same order.

``Z``, ``Zt``, ``Lambda`` and ``Lambdat`` are ``scipy.sparse`` CSC matrices (``Z`` has ``p_k``
nonzeros per row and term); the others are numpy arrays or numbers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["MATRIX_NAMES", "get_matrix", "lambda_matrix", "z_matrix"]

#: Names :func:`get_matrix` knows, with a one-line description each.
MATRIX_NAMES = {
    "X": "fixed-effects model matrix (n x p, aliased columns dropped)",
    "Z": "random-effects model matrix (n x q, sparse)",
    "Zt": "transpose of Z (q x n, sparse)",
    "Lambda": "relative covariance factor (q x q, sparse, block diagonal)",
    "Lambdat": "transpose of Lambda (sparse)",
    "theta": "relative covariance parameters (lme4's order)",
    "beta": "fixed effects",
    "u": "spherical random effects (b = Lambda u)",
    "b": "conditional modes of the random effects (q,)",
    "y": "response (binomial: proportions)",
    "mu": "fitted means (response scale)",
    "eta": "linear predictor with random effects and offset",
    "offset": "offset (zeros when none)",
    "weights": "prior weights (ones when none)",
    "sigma": "residual standard deviation (sqrt of the dispersion for GLMMs)",
    "lower": "lower bounds of theta",
    "Gp": "first column of each term's block in Z (and q at the end)",
    "cnms": "effect names per term, {group label: names}",
    "n": "number of observations",
    "p": "number of fixed effects",
    "q": "number of random effects",
}


def z_matrix(design) -> sp.csc_matrix:
    """The sparse ``Z`` of ``design`` (see the module docstring)."""
    n = design.nobs
    blocks = []
    for t in design.terms:
        p = t.p
        rows = np.repeat(np.arange(n), p)
        cols = (t.grouping.codes[:, None] * p + np.arange(p)[None, :]).ravel()
        blocks.append(sp.csc_matrix((t.Z.ravel(), (rows, cols)), shape=(n, t.q)))
    if not blocks:
        return sp.csc_matrix((n, 0))
    return sp.hstack(blocks, format="csc")


def lambda_matrix(design, theta: np.ndarray) -> sp.csc_matrix:
    """The sparse block-diagonal ``Lambda(theta)``."""
    blocks = []
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        lam = t.structure.lambda_(np.asarray(theta, float)[sl])
        blocks.append(sp.kron(sp.identity(t.nlevels, format="csc"), sp.csc_matrix(lam),
                              format="csc"))
    if not blocks:
        return sp.csc_matrix((0, 0))
    return sp.block_diag(blocks, format="csc")


def get_matrix(m, name: str):
    """``name`` of the fitted model ``m`` (see :data:`MATRIX_NAMES`)."""
    d = m.design
    if name == "X":
        return d.X
    if name in ("Z", "Zt"):
        Z = z_matrix(d)
        return Z if name == "Z" else Z.T.tocsc()
    if name in ("Lambda", "Lambdat"):
        L = lambda_matrix(d, m.theta)
        return L if name == "Lambda" else L.T.tocsc()
    simple = {
        "theta": lambda: np.asarray(m.theta, float).copy(),
        "beta": lambda: np.asarray(m.beta, float).copy(),
        "u": lambda: np.asarray(m.solution.u, float).copy(),
        "b": lambda: np.concatenate([np.asarray(b, float).ravel() for b in m.random_effects]),
        "y": lambda: d.y.copy(),
        "mu": lambda: m.fitted().to_numpy(),
        "eta": lambda: np.asarray(m._eta(), float),
        "offset": lambda: d.offset.copy(),
        "weights": lambda: np.ones(d.nobs) if d.weights is None else d.weights.copy(),
        "sigma": lambda: float(m.sigma),
        "lower": lambda: d.theta_lower(),
        "Gp": lambda: np.concatenate([[0], np.cumsum([t.q for t in d.terms])]).astype(int),
        "cnms": lambda: dict(zip(m._term_labels(), [list(t.labels()) for t in d.terms],
                                 strict=True)),
        "n": lambda: d.nobs,
        "p": lambda: d.p,
        "q": lambda: d.q,
    }
    if name not in simple:
        raise ValueError(f"unknown matrix name {name!r}; get_matrix knows "
                         f"{', '.join(repr(k) for k in MATRIX_NAMES)}")
    return simple[name]()
