r"""Moment starting values of theta for large linear mixed models.

lme4 starts every relative covariance at the identity (theta = 1, correlations 0). On a
large model each evaluation costs a factorization of the whole system, and a start far
from the optimum costs a dozen of them (crossed_slopes_200k: 17 of its 26 evaluations
were spent finding the basin of its ``(x | g3)`` term). A method-of-moments estimate
costs a few operations per level of the cross-products the objective has formed anyway.

With prior weights ``W`` (residual variance ``\sigma^2 / w_i``) let
``r = y - offset - X beta_WLS`` and, for term ``k`` with model matrix rows ``z_i``
(p columns) and level ``l``, the per-level weighted least-squares coefficients

.. math:: b_l = (Z_l' W_l Z_l)^{-1} Z_l' W_l r_l .

Ignoring the other terms (their effects average out over a level's rows in crossed
designs), ``E[b_l b_l'] = \Sigma_k + \sigma^2 (Z_l' W_l Z_l)^{-1}``, so with
``B_k = mean_l b_l b_l'`` and ``H_k = mean_l (Z_l' W_l Z_l)^{-1}``,
``\Sigma_k = B_k - \sigma^2 H_k``. The weighted mean square residual adds the terms up
(``E[w_i r_i^2] = w_i z_i' \Sigma_k z_i + \sigma^2`` summed over the terms):

.. math:: T = mean_i w_i r_i^2 = \sum_k tr(\Sigma_k M_k) + \sigma^2, \quad
          M_k = Z_k' W Z_k / n,

which solves for ``\sigma^2 = (T - \sum_k tr(B_k M_k)) / (1 - \sum_k tr(H_k M_k))``.
Without weights ``W = I``.

For a REML criterion (``reml=True``) the between-level part is the REML one: ``b_l`` are
deviations from the estimated fixed effects, which take ``r_k = p / p_k`` of term ``k``'s
``L_k`` level degrees of freedom (``p`` fixed-effect columns), so
``\Sigma_k = B_k L_k / (L_k - r_k) - \sigma^2 H_k`` (``\sigma^2`` as above: its
within-level part already has the REML divisor ``n - \sum_k L_k p_k``). On a balanced
design whose fixed effects are the term's columns times between-level covariates
(sleepstudy, Orthodont) this is the REML optimum itself -- the REML likelihood factors
into a within-level part in ``\sigma^2`` and a between-level part in
``\Sigma_k + \sigma^2 H_k``, each maximized in closed form -- as the plain estimate is
the ML optimum there. theta is the Cholesky factor of ``\Sigma_k / \sigma^2``
(eigenvalues floored at :data:`MOMENT_START_FLOOR` squared, so that the log-scale search
can move every parameter). The caller keeps lme4's start where it is better
(:func:`mixedmodels.fitting.lmm.optimize_lmm`): the estimate only picks where the search
begins, never the optimum.

Every quantity above is in the objective's cross-products ``[Z X~ y~]' W [Z X~ y~]``
(:class:`~mixedmodels.objective.LMMObjective`): ``y~`` is the weighted least-squares
residual ``r`` itself (the residualized response of the internal basis), ``Z_l'W_lZ_l``
and ``Z_l'W_l r_l`` are the level's diagonal block of ``Z'WZ`` and its rows of
``Z'Wy~`` (:func:`~mixedmodels.linalg.level_blocks`), ``M_k`` is the sum of those blocks
over the levels and ``T = y~'Wy~ / n``. So the estimate takes no pass over the rows, and
an in-memory fit and a Dask fit (whose cross-products are summed over the partitions)
take it from the same numbers: the same start, to rounding.
"""

from __future__ import annotations

import numpy as np

from ..covariance.diagonal import Diagonal
from ..covariance.unstructured import Unstructured
from ..design import Design
from ..linalg import level_blocks
from ..objective import LMMObjective

__all__ = ["MOMENT_START_FLOOR", "moment_theta"]

#: Smallest relative standard deviation a moment start gives (a variance estimated at or
#: below zero starts here: inside the log-scale phase's range, close to the bound).
MOMENT_START_FLOOR = 0.05
#: Levels whose ``Z_l'Z_l`` has a reciprocal condition number below this carry no
#: estimate of their coefficients and are left out of the moments.
LEVEL_RCOND = 1e-8
#: The share of the residual mean square left to sigma^2 after the terms' sampling parts
#: must exceed this; otherwise the moments cannot separate sigma from the terms.
MIN_SIGMA_SHARE = 0.05


def _level_moments(ZZ: np.ndarray, Zr: np.ndarray, n: int):
    """``(B, H, M, levels)`` of one term (see the module docstring) from its per-level
    ``Z_l'W_lZ_l`` (l, p, p) and ``Z_l'W_l r_l`` (l, p) over ``n`` rows, or None without
    any level whose coefficients are estimable; ``levels`` counts the levels that are
    (the means ``B`` and ``H`` are over those)."""
    p = ZZ.shape[1]
    if p == 1:
        # a scalar term: the per-level solves are divisions (no batched LAPACK calls
        # over tens of thousands of 1 x 1 matrices)
        zz = ZZ[:, 0, 0]
        ok = zz > 0
        if not ok.any():
            return None
        bl = Zr[ok, 0] / zz[ok]
        h = 1.0 / zz[ok]
        return (np.array([[bl @ bl / bl.size]]), np.array([[h.mean()]]),
                np.array([[zz.sum() / n]]), bl.size)
    w = np.linalg.eigvalsh(ZZ)
    ok = w[:, 0] > LEVEL_RCOND * np.maximum(w[:, -1], np.finfo(float).tiny)
    if not ok.any():
        return None
    Hl = np.linalg.inv(ZZ[ok])
    bl = np.einsum("lab,lb->la", Hl, Zr[ok])
    B = bl.T @ bl / bl.shape[0]
    return B, Hl.mean(axis=0), ZZ.sum(axis=0) / n, bl.shape[0]


def _term_products(obj: LMMObjective) -> list:
    """``(Z_l'W_lZ_l (l, p, p), Z_l'W_l y~_l (l, p))`` of every term, in model order,
    read off the objective's cross-products (a term merged with others on its grouping
    factor owns a run of its block's columns)."""
    terms = obj.design.terms
    groups = [(k,) for k in range(len(terms))] if obj.merge is None else obj.merge.groups
    out: list = [None] * len(terms)
    for block, group in enumerate(groups):
        ZZ, ZX = level_blocks(obj.cross_products, obj.pattern, block)
        col = 0
        for k in group:
            p = terms[k].p
            out[k] = (ZZ[:, col : col + p, col : col + p], ZX[:, col : col + p, -1])
            col += p
    return out


def _dense_term_products(obj: LMMObjective) -> list:
    """:func:`_term_products` read off the dense system's ``[Z X~ y~]' W [Z X~ y~]``
    (``obj.system.full``; a term's level ``l`` owns columns ``off + l p .. + p``)."""
    A = obj.system.full
    out, off = [], 0
    for t in obj.design.terms:
        idx = off + np.arange(t.nlevels)[:, None] * t.p + np.arange(t.p)[None, :]
        out.append((A[idx[:, :, None], idx[:, None, :]], A[idx, -1]))
        off += t.nlevels * t.p
    return out


def _reml_between_factor(levels: int, lost: float) -> float:
    """``L / (L - r)``: the REML divisor of ``L`` levels' moments about fixed effects that
    take ``r`` of their degrees of freedom; 1 (the ML moments) where fewer than one level's
    worth would be left."""
    return levels / (levels - lost) if levels - lost >= 1.0 else 1.0


def _relative_factor(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the symmetric ``S`` with eigenvalues floored."""
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    w = np.maximum(w, MOMENT_START_FLOOR**2)
    return np.linalg.cholesky((V * w) @ V.T)


def moment_theta(source: LMMObjective | Design, reml: bool = False) -> np.ndarray | None:
    """Moment estimate of theta (see the module docstring), in the design's theta order.

    Parameters
    ----------
    source : LMMObjective or Design
        An objective on the blocked or sparse factorization -- its cross-products formed
        from rows in memory or summed over a Dask frame's partitions -- or a design (whose
        objective on the blocked factorization is built for it).
    reml : bool
        Give the between-level moments the REML divisor ``L_k - p / p_k`` (module
        docstring): the start of a REML search. The default keeps the plain estimate
        (the large models' start: its levels are many and the divisor barely matters).

    Returns
    -------
    ndarray or None
        None where the estimate does not apply (terms other than unstructured or
        per-column diagonal ones; an objective whose system keeps neither per-level
        blocks nor the dense cross-products) or the moments do not determine sigma.
    """
    obj = source if isinstance(source, LMMObjective) else LMMObjective(source, method="blocked")
    terms = obj.design.terms
    dense = obj.method == "dense"
    if not terms or (obj.cross_products is None and not dense):
        return None
    for t in terms:
        s = t.structure
        if not (type(s) is Unstructured or (type(s) is Diagonal and s.n_theta == t.p)):
            return None
    products = _dense_term_products(obj) if dense else _term_products(obj)
    moments = [_level_moments(ZZ, Zr, obj.n) for ZZ, Zr in products]
    if any(m is None for m in moments):
        return None
    T = float(obj.system.full[-1, -1] if dense else obj.cross_products.AXX[-1, -1]) / obj.n
    explained = sum(float(np.sum(B * M)) for B, _, M, _ in moments)
    sampling = sum(float(np.sum(H * M)) for _, H, M, _ in moments)
    if not 1.0 - sampling > MIN_SIGMA_SHARE:
        return None
    sigma2 = (T - explained) / (1.0 - sampling)
    if not (np.isfinite(sigma2) and sigma2 > MIN_SIGMA_SHARE * T):
        return None
    parts = []
    for t, (B, H, _, levels) in zip(terms, moments, strict=True):
        if reml:
            B = B * _reml_between_factor(levels, obj.p / t.p)
        L = _relative_factor((B - sigma2 * H) / sigma2)
        if type(t.structure) is Diagonal:
            parts.append(np.sqrt(np.diag(L @ L.T)))
        else:
            # lme4's order: the lower triangle column by column
            rows, cols = t.structure.rows, t.structure.cols
            parts.append(L[rows, cols])
    return np.concatenate(parts)
