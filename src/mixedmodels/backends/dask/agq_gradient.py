r"""The exact gradient of glmer's adaptive-quadrature deviance on Dask input.

:mod:`mixedmodels.objective.agq_gradient` (whose module docstring has the formulas) needs
the rows only through per-level sums (:class:`~mixedmodels.objective.agq_gradient.AGQLevelSums`:
``-2 log p`` and its slope at every node, the mode's derivatives ``g, w, W_L, W_L'`` times
powers of ``z`` and times ``X``) and through ``X' q``, ``q_i = sum_k pi_{k,j(i)} D'_{ik}``
with the normalized node weights ``pi`` that the level sums give. So a gradient is, after
PIRLS, two passes: :func:`agq_gradient_partition` forms the level sums of a partition
(summed over partitions), the client turns them into the deviance, ``pi`` and every entry
but ``X' q``, and a second pass with ``pi`` returns ``X' q``. The deviance comes from the
same level sums as the objective's own (:func:`~.glmm_pass.agq_partition`), so the
quadrature stage runs the in-memory fit's BFGS on the same numbers (to rounding).
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from ...objective.agq_gradient import (
    AGQGradient,
    AGQLevelSums,
    AGQRows,
    agq_beta_term,
    agq_from_row_sums,
    agq_gradient_supported,
    agq_row_sums,
)
from ...objective.glmm_gradient import level_map
from .glmm_pass import RowState, _prior, _random_part, _rows, combine_arrays, m2ll_function

__all__ = ["DaskAGQGradient", "agq_gradient_partition", "dask_agq_gradient_supported"]


def dask_agq_gradient_supported(obj) -> bool:
    """Whether :class:`DaskAGQGradient` applies to a ``DaskGLMMObjective``: the in-memory
    rule (:func:`~mixedmodels.objective.agq_gradient.agq_gradient_supported`)."""
    from .glmm import DaskGLMMObjective

    return agq_gradient_supported(obj, DaskGLMMObjective)


def agq_gradient_partition(
    part,
    index: int,
    plan,
    family,
    R_inv: np.ndarray,
    state: RowState,
    nodes: int,
    lam: float,
    scale: np.ndarray,
    kind: str,
    pi: np.ndarray | None,
):
    """One partition's :class:`AGQLevelSums` at the modes ``state`` (``pi`` None), or its
    ``X' q`` (p,) given the node weights ``pi`` (K, levels) (module docstring)."""
    rows = _rows(part, plan, R_inv)
    a = rows.a
    nlev = plan.design.terms[0].nlevels
    p = state.beta.size
    if not len(a.y):
        if pi is not None:
            return np.zeros(p)
        k = int(nodes)
        return AGQLevelSums(
            np.zeros((k + 1, nlev)),
            np.zeros((k, nlev)),
            *(np.zeros(nlev) for _ in range(4)),
            np.zeros((nlev, p)),
            np.zeros((nlev, p)),
        )
    codes = a.codes[0]
    ar = AGQRows(a.y, _prior(a), a.X, codes, a.Z[0][:, 0], nlev)
    eta = a.X @ state.beta + a.offset + _random_part(a, state.b)
    levels = level_map(codes, nlev)
    sums, Dp = agq_row_sums(
        ar,
        family,
        kind,
        int(nodes),
        eta,
        family.link.linkinv(eta),
        lam,
        scale,
        m2ll_function(family, a, 1.0),
        lambda vals: levels @ vals,
    )
    return sums if pi is None else agq_beta_term(ar, pi, Dp)


def _combine_sums(parts: list) -> AGQLevelSums:
    return functools.reduce(operator.add, parts)


class DaskAGQGradient(AGQGradient):
    """``x -> (F(x), dF/dx)`` of a ``DaskGLMMObjective`` under quadrature (module
    docstring; :class:`~mixedmodels.objective.agq_gradient.AGQGradient` for the memo and
    the PIRLS solve).

    Parameters
    ----------
    obj : DaskGLMMObjective
        See :func:`dask_agq_gradient_supported`.
    """

    def __init__(self, obj):
        self._setup(obj)  # (not AGQGradient.__init__: it reads the term's rows)

    def _value_and_gradient(self, size: int, pr, fam) -> tuple[float, np.ndarray]:
        """``(F, dF/d[theta, beta])`` at the modes ``pr`` from two passes (module
        docstring)."""
        pirls = self.obj.pirls
        nagq, lam, dlam, L_diag, kind = self._at_point(pr, fam)

        def pass_(combine, pi):
            return pirls._reduce(
                agq_gradient_partition,
                combine,
                pirls.basis.R_inv,
                pr.eta,
                nagq,
                lam,
                1.0 / L_diag,
                kind,
                pi,
            )

        value, grad, pi = agq_from_row_sums(
            nagq, pass_(_combine_sums, None), u=pr.u, L_diag=L_diag, lam=lam, dlam=dlam, size=size
        )
        grad[1:] += pass_(combine_arrays, pi)
        return value, grad
