r"""Terms on the same grouping factor factored as one block.

``(1 | g) + (0 + x | g)`` (lme4's ``(x || g)``) has two terms on one grouping factor. Kept
apart, the second term lands in the rest block of :mod:`mixedmodels.linalg.blocked`, whose
dense ``q_r x q_r`` Cholesky costs ``O(l^3)`` per evaluation although ``Z'WZ`` couples only
the columns of the same level. Merged, the terms form one block with ``P = sum_k p_k``
effects per level and the block-diagonal relative covariance factor

.. math:: \lambda_g(\theta) = \operatorname{diag}(\lambda_{k_1}(\theta_{k_1}), \ldots,
          \lambda_{k_m}(\theta_{k_m}))

(one ``P x P`` block per level), whose derivatives are the terms' own
``d lambda_k / d theta`` placed on the diagonal -- so the exact gradient of the profiled
criterion carries over. The criterion is unchanged: ``Z Lambda`` is the same matrix with
its columns permuted, and the determinant and the penalized residual sum of squares do not
depend on the order of the random effects.

:class:`TermMerge` is the plan (which terms merge, where theta and ``u`` move);
:class:`MergedSystem` wraps a factorization built on the merged blocks and speaks the
terms' order to its callers (theta, ``u``, conditional variances).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import TermBlock, theta_slices

__all__ = ["BlockDiagonalStructure", "MergedSystem", "TermMerge", "merge_blocks"]


def merge_blocks(groups, blocks) -> list:
    """The merged blocks of ``groups`` (term indices per block, :attr:`TermMerge.groups`)
    for per-term blocks of any rows: a group's codes are its first term's, its values the
    terms' columns side by side. A chunk of rows merges alike whatever rows it holds, so
    cross-products summed over chunks are those of the merged blocks of all rows.

    Parameters
    ----------
    groups : sequence of sequence of int
        Empty: every term its own block (``blocks`` is returned as a list).
    blocks : sequence of TermBlock
        In model order.

    Returns
    -------
    list of TermBlock
    """
    blocks = list(blocks)
    if not groups:
        return blocks
    out = []
    for g in groups:
        first = blocks[g[0]]
        if len(g) == 1:
            out.append(first)
        else:
            out.append(TermBlock(first.codes, np.column_stack([blocks[k].Z for k in g]),
                                 first.nlevels))
    return out


class BlockDiagonalStructure:
    """The relative covariance factor of several terms on one grouping factor.

    Implements the part of the covariance contract the factorizations use
    (``p``, ``n_theta``, ``lambda_``, ``lambda_jacobian``, ``direct_map``, ``theta0``).

    Parameters
    ----------
    parts : sequence of CovarianceStructure
        The terms' structures, in the merged block's column order.
    """

    def __init__(self, parts):
        self.parts = tuple(parts)
        self.p = int(sum(s.p for s in self.parts))
        self._cols = np.concatenate([[0], np.cumsum([s.p for s in self.parts])])
        self._slices = theta_slices(self.parts)
        # parts whose lambda is a selection of theta (scalar and unstructured terms, diag):
        # lambda is one gather and its Jacobian a constant, computed once; the map itself
        # too (read by every objective built on the merge, ~0.1 ms to assemble)
        mp = self._map = self._direct_map()
        if mp is not None:
            mp.flags.writeable = False
        self._gather = None
        if mp is not None:
            pos = np.flatnonzero(mp >= 0)
            self._gather = (pos, mp[pos])
            jac = np.zeros((self.n_theta, self.p * self.p))
            jac[mp[pos], pos] = 1.0
            self._jac = jac.reshape(self.n_theta, self.p, self.p)
            self._jac.flags.writeable = False

    @property
    def n_theta(self) -> int:
        return int(sum(s.n_theta for s in self.parts))

    def theta0(self) -> np.ndarray:
        return np.concatenate([s.theta0() for s in self.parts])

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        """``diag(lambda_k(theta_k))``, P x P."""
        out = np.zeros((self.p, self.p))
        if self._gather is not None:
            pos, src = self._gather
            out.reshape(-1)[pos] = np.asarray(theta, dtype=float)[src]
            return out
        for s, sl, a, b in zip(self.parts, self._slices, self._cols[:-1], self._cols[1:],
                               strict=True):
            out[a:b, a:b] = s.lambda_(theta[sl])
        return out

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d lambda / d theta_j``: each term's Jacobian on its diagonal block,
        (n_theta, P, P); read-only and shared when every part is a selection of theta."""
        if self._gather is not None:
            return self._jac
        out = np.zeros((self.n_theta, self.p, self.p))
        for s, sl, a, b in zip(self.parts, self._slices, self._cols[:-1], self._cols[1:],
                               strict=True):
            out[sl, a:b, a:b] = s.lambda_jacobian(theta[sl])
        return out

    def direct_map(self) -> np.ndarray | None:
        """Index into theta of every entry of ``lambda`` (-1: structural zero), or None
        when a part's ``lambda`` is not a selection of its parameters (read-only)."""
        return self._map

    def _direct_map(self) -> np.ndarray | None:
        maps = [s.direct_map() for s in self.parts]
        if any(m is None for m in maps):
            return None
        out = np.full((self.p, self.p), -1, dtype=np.int64)
        for m, s, sl, a, b in zip(maps, self.parts, self._slices, self._cols[:-1],
                                  self._cols[1:], strict=True):
            m = np.asarray(m).reshape(s.p, s.p)
            out[a:b, a:b] = np.where(m >= 0, m + sl.start, -1)
        return out.ravel()


@dataclass(frozen=True)
class TermMerge:
    """Which terms share a grouping factor, and where theta and ``u`` move when merged.

    Attributes
    ----------
    groups : tuple of tuple of int
        Term indices per merged block, blocks ordered by their first term (so the first
        block holds the first term), terms in model order within a block.
    blocks : tuple of TermBlock
        The merged blocks (codes of the factor, the terms' columns side by side).
    structures : tuple
        One structure per block (the term's own, or a :class:`BlockDiagonalStructure`).
    theta_index : ndarray (n_theta,)
        ``theta_merged = theta[theta_index]``.
    u_index : ndarray (q,)
        ``u = u_merged[u_index]`` (the terms' order: term by term, level by level).
    """

    groups: tuple
    blocks: tuple
    structures: tuple
    theta_index: np.ndarray
    u_index: np.ndarray

    @property
    def merges(self) -> bool:
        """True when some block holds more than one term."""
        return any(len(g) > 1 for g in self.groups)

    @classmethod
    def of(cls, blocks, structures, keys) -> TermMerge:
        """Group terms whose grouping factors have the same key and the same codes.

        Parameters
        ----------
        blocks : sequence of TermBlock
        structures : sequence of CovarianceStructure
        keys : sequence of hashable
            The grouping factor of each term (its name); terms with equal keys merge when
            their codes and numbers of levels agree too.
        """
        blocks, structures = tuple(blocks), tuple(structures)
        groups: list[list[int]] = []
        for k, (b, key) in enumerate(zip(blocks, keys, strict=True)):
            for g in groups:
                first = blocks[g[0]]
                if (keys[g[0]] == key and first.nlevels == b.nlevels
                        and np.array_equal(first.codes, b.codes)):
                    g.append(k)
                    break
            else:
                groups.append([k])
        t_slices = theta_slices(structures)
        u_off = np.concatenate([[0], np.cumsum([b.q for b in blocks])])
        merged_structs, theta_index = [], []
        u_index = np.empty(int(u_off[-1]), dtype=np.int64)
        m_off = 0
        for g in groups:
            first = blocks[g[0]]
            nl = first.nlevels
            P = int(sum(blocks[k].p for k in g))
            col = 0
            for k in g:
                p = blocks[k].p
                # effect a of level j of term k sits at m_off + j P + col + a when merged
                merged = (m_off + np.arange(nl)[:, None] * P + col + np.arange(p)[None, :])
                u_index[u_off[k]:u_off[k + 1]] = merged.ravel()
                theta_index.append(np.arange(t_slices[k].start, t_slices[k].stop))
                col += p
            m_off += nl * P
            merged_structs.append(structures[g[0]] if len(g) == 1 else
                                  BlockDiagonalStructure([structures[k] for k in g]))
        return cls(tuple(tuple(g) for g in groups), tuple(merge_blocks(groups, blocks)),
                   tuple(merged_structs),
                   np.concatenate(theta_index).astype(np.int64) if theta_index
                   else np.zeros(0, np.int64), u_index)

    def merge_z(self, Z) -> list:
        """Per-term value arrays (n, p_k) to the merged blocks' (n, P)."""
        return [Z[g[0]] if len(g) == 1 else np.column_stack([Z[k] for k in g])
                for g in self.groups]

    def theta_to_terms(self, grad_merged: np.ndarray) -> np.ndarray:
        """A vector in the merged theta order (a gradient) back to the terms' order."""
        out = np.empty_like(grad_merged)
        out[self.theta_index] = grad_merged
        return out

    def split_blocks(self, merged: list, sizes) -> list:
        """Per-level covariance blocks of the merged blocks, (l, P, P) each, to the terms'
        diagonal sub-blocks (l, p_k, p_k) in model order.

        ``sizes`` are the terms' ``p_k``."""
        out = [None] * len(sizes)
        for g, blk in zip(self.groups, merged, strict=True):
            col = 0
            for k in g:
                p = sizes[k]
                out[k] = np.ascontiguousarray(blk[:, col:col + p, col:col + p])
                col += p
        return out


class MergedSystem:
    """A factorization on merged blocks that callers use in the terms' order.

    ``factorize`` takes theta in the terms' order; ``solve_u`` returns ``u`` and
    ``cond_var_u`` the blocks in the terms' order. The factor itself is the inner
    system's (its random-effects blocks are in the merged order).

    Parameters
    ----------
    inner : BlockedSystem or SparseSystem
        Built on ``merge.blocks`` and ``merge.structures``.
    merge : TermMerge
    sizes : sequence of int
        ``p_k`` of the terms, in model order.
    """

    def __init__(self, inner, merge: TermMerge, sizes):
        self.inner = inner
        self.merge = merge
        self.sizes = tuple(int(p) for p in sizes)

    def set_cross_products(self, A, once: bool = False) -> None:
        # (``once`` only where it is asked for: an LMM's inner system may be a
        # SparseSystem, which has no product pattern to skip)
        if once:
            self.inner.set_cross_products(A, once=True)
        else:
            self.inner.set_cross_products(A)

    def factorize(self, theta: np.ndarray, scratch: bool = False):
        return self.inner.factorize(np.asarray(theta, dtype=float)[self.merge.theta_index],
                                    scratch=scratch)

    def solve_u(self, f, beta: np.ndarray) -> np.ndarray:
        return self.inner.solve_u(f, beta)[self.merge.u_index]

    def cond_var_u(self, f) -> list[np.ndarray]:
        return self.merge.split_blocks(self.inner.cond_var_u(f), self.sizes)
