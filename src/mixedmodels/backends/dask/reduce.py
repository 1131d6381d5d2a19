r"""Passes 2 and 3: the reductions that replace the in-memory cross-products.

Pass 2, a tall-skinny QR. For ``M = W^{1/2} [X, y - o]`` split into row chunks ``M_k``
with ``M_k = Q_k R_k``, the ``R`` of the stacked ``R_k`` is the ``R`` of ``M`` (both are
the Cholesky factor of ``M'M``, reached without forming it). From

.. math:: R_M = \begin{bmatrix} R & c \\ 0 & \rho \end{bmatrix}

come the fixed-effects basis ``X~ = X R^{-1}`` and ``c = X~' W y`` (the coefficients that
residualize ``y``) exactly as :class:`~mixedmodels.linalg.FixedBasis` computes them in
memory, with no product ``y'y`` that would cancel. The same pass counts the rows per level
(levels that transformations emptied), the rows transformations made non-finite, the range
of the response and ``sum(log w)``; without weights the ``R`` of ``X`` also serves R's rank
rule (``|R_jj|`` against the column norm), with weights a second, unweighted ``R`` does.

Pass 3 forms ``[Z X~ y~]' W [Z X~ y~]`` per partition with the in-memory pattern code
(:class:`~mixedmodels.linalg.CrossProductPattern`, or the dense product of small models)
on the global level codes, and sums the blocks
(:func:`~mixedmodels.linalg.add_cross_products`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ...linalg import (
    CrossProductPattern,
    TermBlock,
    add_cross_products,
    dense_cross_product,
    merge_blocks,
)
from .plan import PartitionPlan

__all__ = ["QRPart", "combine_cross", "combine_qr", "cross_partition", "qr_partition"]


def _r_of(M: np.ndarray) -> np.ndarray:
    """The triangular factor of a (possibly short) matrix: (min(n, m), m)."""
    if M.shape[0] == 0:
        return np.zeros((0, M.shape[1]))
    return np.linalg.qr(M, mode="r")


@dataclass
class QRPart:
    """Pass-2 result of some rows (see the module docstring)."""

    R: np.ndarray
    R_unweighted: np.ndarray | None
    n: int
    level_counts: list
    reasons: dict = field(default_factory=dict)
    y_min: float = np.inf
    y_max: float = -np.inf
    sum_log_w: float = 0.0
    #: range of the response itself over the rows of positive prior weight (a GLMM's
    #: constant-response check; ``y_min``/``y_max`` are of ``y - offset``)
    resp_min: float = np.inf
    resp_max: float = -np.inf
    #: (category, text) of the warnings of the plan's response check (non-integer counts),
    #: re-emitted on the client
    messages: tuple = ()


def qr_partition(part, index: int, plan: PartitionPlan) -> QRPart:
    """Pass 2 on one partition (``W``: the prior weights, binomial trials included)."""
    a = plan.arrays(part)
    prior = a.prior
    messages: tuple = ()
    if plan.check is not None and len(a.y):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan.check(a.y, np.ones(len(a.y)) if prior is None else prior)
        messages = tuple(dict.fromkeys((w.category, str(w.message)) for w in caught))
    yo = a.y - a.offset
    M = np.column_stack([a.X, yo])
    Mw = M if prior is None else M * np.sqrt(prior)[:, None]
    counts = [np.bincount(c, minlength=t.nlevels) for c, t in zip(a.codes, plan.design.terms,
                                                                  strict=True)]
    y_pos = a.y if prior is None else a.y[prior > 0]
    return QRPart(
        R=_r_of(Mw),
        R_unweighted=None if prior is None else _r_of(a.X),
        n=len(yo), level_counts=counts, reasons=dict(a.reasons),
        y_min=float(yo.min()) if len(yo) else np.inf,
        y_max=float(yo.max()) if len(yo) else -np.inf,
        sum_log_w=0.0 if a.weights is None else float(np.sum(np.log(a.weights))),
        resp_min=float(y_pos.min()) if len(y_pos) else np.inf,
        resp_max=float(y_pos.max()) if len(y_pos) else -np.inf, messages=messages)


def combine_qr(parts: list[QRPart]) -> QRPart:
    """Pass-2 results of disjoint rows combined (``combine_qr([x])`` is ``x``)."""
    if len(parts) == 1:
        return parts[0]
    reasons: dict = {}
    for p in parts:
        for k, v in p.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
    unweighted = None
    if parts[0].R_unweighted is not None:
        unweighted = _r_of(np.vstack([p.R_unweighted for p in parts]))
    return QRPart(
        R=_r_of(np.vstack([p.R for p in parts])), R_unweighted=unweighted,
        n=sum(p.n for p in parts),
        level_counts=[sum(c) for c in zip(*(p.level_counts for p in parts), strict=True)],
        reasons=reasons, y_min=min(p.y_min for p in parts),
        y_max=max(p.y_max for p in parts), sum_log_w=sum(p.sum_log_w for p in parts),
        resp_min=min(p.resp_min for p in parts), resp_max=max(p.resp_max for p in parts),
        messages=tuple(dict.fromkeys(m for p in parts for m in p.messages)))


def cross_partition(part, index: int, plan: PartitionPlan, R_inv: np.ndarray,
                    coef0: np.ndarray, method: str, groups: tuple = ()):
    """Pass 3 on one partition: its blocks of ``[Z X~ y~]' W [Z X~ y~]`` (a dense
    square matrix for ``method="dense"``), in the blocks of ``groups`` -- the terms on
    one grouping factor merged as in memory (:func:`~mixedmodels.objective.lmm.block_plan`;
    empty: one block per term)."""
    a = plan.arrays(part)
    Xt = a.X @ R_inv
    yt = (a.y - a.offset) - Xt @ coef0
    XY = np.column_stack([Xt, yt])
    blocks = [TermBlock(c, np.ascontiguousarray(Z), t.nlevels)
              for c, Z, t in zip(a.codes, a.Z, plan.design.terms, strict=True)]
    if method == "dense":
        return dense_cross_product(blocks, XY, a.weights)
    return CrossProductPattern(merge_blocks(groups, blocks),
                               dense_rest=method != "sparse").compute(XY, a.weights)


def combine_cross(parts: list):
    """Sum of pass-3 results (``combine_cross([x])`` is ``x``)."""
    out = parts[0]
    for p in parts[1:]:
        out = out + p if isinstance(out, np.ndarray) else add_cross_products(out, p)
    return out
