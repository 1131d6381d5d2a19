r"""Shared whitening factors of groups whose rows sit at the same positions.

A correlation structure's ``C_i`` depends only on the covariate values of group ``i``'s
rows (times, coordinates): groups observed at the same times have the same ``C_i``. More:
sorted by the covariate, a group observed at a *prefix* ``t_1 < .. < t_s`` of a longer
group's times ``t_1 < .. < t_m`` has ``C_i = C_P[:s, :s]``, and the Cholesky factor of a
leading block is the leading block of the factor,

.. math:: C_P = L_P L_P' \;\Rightarrow\; C_P[{:}s, {:}s] = L_P[{:}s, {:}s]\,L_P[{:}s, {:}s]',

so with ``T_P = L_P^{-1}`` (lower triangular) the whitened rows of the group are the first
``s`` rows of ``T_P [M_i; anything]`` and ``log|C_i| = 2 \sum_{k<s} \log (L_P)_{kk}``.

Longitudinal data usually have a handful of such maximal patterns ``P`` (balanced designs:
one; dropouts: the longest series covers every shorter one). One factorization per pattern
and one matrix product for all the groups of a pattern then replace a factorization and a
solve per group: the evaluation no longer scales with the number of groups times ``m^3``.
:func:`shared_patterns` finds the patterns once, at bind time, without a Python loop over
groups; when most groups have a pattern of their own (irregular times, distinct
coordinates) it returns None and the structure keeps its batched per-group factorization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blocks import RowBlocks

__all__ = ["PATTERN_MAX_FRACTION", "PatternClass", "shared_patterns", "sorted_grid"]

#: Use shared factors only when there are at most this many distinct maximal patterns per
#: group (else each group mostly factors its own matrix and the batched path is as good).
PATTERN_MAX_FRACTION = 0.5
#: Largest ``U^2 m d`` (distinct sequences squared, times their length and dimension) for
#: which prefixes are detected; above it only identical sequences share a factor.
PREFIX_MAX_ELEMENTS = 20_000_000


@dataclass(frozen=True)
class PatternClass:
    """The groups whose maximal pattern has ``size`` rows.

    Attributes
    ----------
    size : int
        ``m``, rows of the patterns of the class.
    rep_rows : ndarray of int (P, m)
        Rows of one group with each pattern, in covariate order (all valid).
    rows : ndarray of int (G, m)
        Rows of the member groups in covariate order; slots past a group's size repeat its
        last row (masked by ``valid``; a lower-triangular ``T_P`` never mixes them into
        the valid rows).
    valid : ndarray of bool (G, m)
    pattern : ndarray of int (G,)
        Pattern of each member group, ``0 .. P - 1``.
    last : ndarray of int (G,)
        ``s_i - 1``: index of each group's last row.
    lower : ndarray of bool (m, m)
        The lower triangle.
    """

    size: int
    rep_rows: np.ndarray
    rows: np.ndarray
    valid: np.ndarray
    pattern: np.ndarray
    last: np.ndarray
    lower: np.ndarray


def sorted_grid(blocks: RowBlocks, key: np.ndarray):
    """Rows and key values of every group in key order, padded: ``(G, m)`` rows (pad:
    the group's last row), ``(G, m, d)`` keys (pad: +inf)."""
    codes, sizes = blocks.codes, blocks.sizes
    n_groups, m, d = sizes.size, int(sizes.max()), key.shape[1]
    order = np.lexsort((*key[:, ::-1].T, codes))   # by group, then key
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(codes.size) - np.repeat(starts, sizes)
    g = codes[order]
    grid = np.full((n_groups, m, d), np.inf)
    grid[g, pos] = key[order]
    rows = np.empty((n_groups, m), dtype=np.int64)
    rows[:] = order[starts + sizes - 1][:, None]
    rows[g, pos] = order
    return rows, grid


def _cover(uniq: np.ndarray, usize: np.ndarray) -> np.ndarray:
    """For each distinct sequence, the longest distinct sequence it is a prefix of
    (itself when none is longer)."""
    n_u, m = uniq.shape[:2]
    if n_u * n_u * m * uniq.shape[2] > PREFIX_MAX_ELEMENTS:
        return np.arange(n_u)          # too many to compare pairwise: identical ones only
    inside = np.arange(m)[None, :] < usize[:, None]                     # (U, m)
    same = np.all(uniq[:, None] == uniq[None, :], axis=3)               # (U, U, m)
    prefix = np.all(same | ~inside[:, None, :], axis=2)                 # a prefix of b
    prefix &= usize[None, :] >= usize[:, None]
    return np.argmax(np.where(prefix, usize[None, :], -1), axis=1)


def shared_patterns(blocks: RowBlocks, key: np.ndarray) -> tuple[PatternClass, ...] | None:
    """The maximal patterns of the groups (module docstring), or None when there are more
    than :data:`PATTERN_MAX_FRACTION` per group.

    Parameters
    ----------
    blocks : RowBlocks
    key : ndarray (n,) or (n, d)
        The covariate values the correlation depends on (times, coordinates).

    Returns
    -------
    tuple of PatternClass or None
        Classes in increasing size.
    """
    key = np.asarray(key, dtype=float)
    key = key[:, None] if key.ndim == 1 else key
    n_groups = blocks.n_groups
    if n_groups * PATTERN_MAX_FRACTION < 1.0:
        # at least one pattern is always used: a single group (a spatial model without
        # groups) can never share, so its rows are not sorted and searched at every fit
        return None
    rows, grid = sorted_grid(blocks, key)
    m, d = grid.shape[1], grid.shape[2]
    uniq, first, inverse = np.unique(grid.reshape(n_groups, m * d), axis=0,
                                     return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    usize = blocks.sizes[first]
    if uniq.shape[0] * uniq.shape[0] * m * d > PREFIX_MAX_ELEMENTS \
            and uniq.shape[0] > PATTERN_MAX_FRACTION * n_groups:
        return None
    cover = _cover(uniq.reshape(-1, m, d), usize)
    used, pattern_of_u = np.unique(cover, return_inverse=True)
    if used.size > PATTERN_MAX_FRACTION * n_groups:
        return None
    pattern = pattern_of_u.ravel()[inverse]                  # per group, 0 .. len(used) - 1
    psize = usize[used]
    out = []
    for size in np.unique(psize):
        members_p = np.flatnonzero(psize == size)                       # patterns of class
        local = np.full(used.size, -1, dtype=np.int64)
        local[members_p] = np.arange(members_p.size)
        groups = np.flatnonzero(local[pattern] >= 0)
        s = int(size)
        out.append(PatternClass(
            size=s,
            rep_rows=rows[first[used[members_p]], :s],
            rows=np.ascontiguousarray(rows[groups, :s]),
            valid=np.arange(s)[None, :] < blocks.sizes[groups][:, None],
            pattern=local[pattern[groups]],
            last=blocks.sizes[groups] - 1,
            lower=np.tri(s, dtype=bool)))
    return tuple(out)
