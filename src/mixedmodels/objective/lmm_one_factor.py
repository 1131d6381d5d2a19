r"""The profiled LMM criterion and its gradient when every term shares one grouping factor.

:class:`~mixedmodels.linalg.one_factor.OneFactorSystem` factors such a model level by level
(no ``(q + m)^2`` dense system, no sparse pattern); this module decides when it is used
(:func:`one_factor_system`) and turns its ``d/d lambda`` into the gradient in theta
(:func:`one_factor_value_and_gradient`). The criterion's parts differentiated are those of
:mod:`mixedmodels.objective.lmm` with ``S`` the fixed-effects Schur complement (its factor
``L_S`` holds ``R_X'`` and ``r``):

.. math::

    \phi(S) = [\text{REML}] \log|S_{XX}| + c \log r^2, \qquad
    d\phi = \operatorname{tr}(\Psi\, dS), \qquad
    \Psi = [\text{REML}]\, S^{-1} + \frac{c - [\text{REML}]}{r^2}\, w w',

``c = n - p`` (REML) or ``n`` (ML), ``w = (-\beta, 1) = r^2 S^{-1} e_m``: from
``d r^2 = w' dS w`` and ``S_{XX}^{-1} \oplus 0 = S^{-1} - w w' / r^2``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..linalg.merged import TermMerge
from ..linalg.one_factor import ONE_FACTOR_MAX_P, OneFactorSystem

__all__ = ["one_factor_system", "one_factor_value_and_gradient"]

_dtrtri = lapack.dtrtri

#: Smallest ``q + p + 1`` for which a model held by the dense factorization is evaluated
#: level by level instead. Below it the dense system's ~10 calls on a small matrix beat
#: the level-by-level system's ~20 (measured value and gradient, one BLAS thread: k = 1,
#: 20 levels 16 us dense against 26 us; k = 2, 30 levels 158 us against 70 us; the two
#: cross near 45 columns for both k). Models too large for the dense system always use it.
ONE_FACTOR_MIN_DENSE_SIZE = 48


class OneFactorPlan:
    """The level-by-level system of an objective and how its theta maps to the terms'.

    Attributes
    ----------
    system : OneFactorSystem
    structure : CovarianceStructure
        The block's (``lambda`` and its Jacobian).
    theta_index : ndarray of int or None
        ``theta_block = theta[theta_index]`` (terms merged into the block), None when the
        block is the one term.
    gather : ndarray of int or None
        Where each theta sits in ``lambda.ravel()`` when every theta is one entry of
        ``lambda`` (the gradient is then a gather of ``d/d lambda``), else None
        (``lambda_jacobian`` is contracted).
    """

    def __init__(self, system: OneFactorSystem, theta_index, structure):
        self.system = system
        self.structure = structure
        self.theta_index = theta_index
        self.gather = _entry_of_each_theta(structure)
        m = system.m
        a, b = np.triu_indices(m, 1)
        #: flat positions of the strict upper triangle of an m x m matrix (cleared by one
        #: scatter: np.tril per evaluation costs more than the rest of the fixed part)
        self._upper = a * m + b
        self._d_reml, self._d_ml = np.ones(m), np.zeros(m)

    def psi(self, LXX: np.ndarray, reml: bool, c: float) -> np.ndarray | None:
        r"""``Psi`` of the module docstring from the factor ``L`` of ``S`` (lower
        triangle of ``LXX``): with ``U = L^{-1}``, ``S^{-1} = U'U`` and ``w = r U_{m\cdot}'``
        (the last row of ``U`` is ``e_m' L^{-1}``), so ``Psi = U' diag(d) U`` with ``d =
        ([REML], ..., [REML], c)``. None when ``L`` is singular."""
        U = LXX.copy()
        U.reshape(-1)[self._upper] = 0.0  # chol_inplace leaves S's upper triangle
        _, info = _dtrtri(U.T, lower=0, overwrite_c=1)  # (L')^{-1} in place: U = L^{-1}
        if info != 0:
            return None
        d = self._d_reml if reml else self._d_ml
        d[-1] = c
        return (U.T * d) @ U

    def theta_block(self, theta: np.ndarray) -> np.ndarray:
        return theta if self.theta_index is None else theta[self.theta_index]

    def to_terms(self, grad: np.ndarray) -> np.ndarray:
        if self.theta_index is None:
            return grad
        out = np.empty_like(grad)
        out[self.theta_index] = grad
        return out


def _entry_of_each_theta(structure) -> np.ndarray | None:
    mp = structure.direct_map()
    if mp is None:
        return None
    mp = np.asarray(mp)
    pos = np.flatnonzero(mp >= 0)
    if np.unique(mp[pos]).size != pos.size or pos.size != structure.n_theta:
        return None  # a parameter shared by several entries
    out = np.empty(structure.n_theta, dtype=np.intp)
    out[mp[pos]] = pos
    return out


def one_factor_system(obj, min_dense_size: int = ONE_FACTOR_MIN_DENSE_SIZE) -> OneFactorPlan | None:
    """The level-by-level plan of an :class:`~mixedmodels.objective.LMMObjective`, or None.

    Used when sigma is profiled (not known), every term is on one grouping factor (one
    term, or terms with the same grouping factor and codes, which merge into one block)
    with at most :data:`~mixedmodels.linalg.one_factor.ONE_FACTOR_MAX_P` effects per
    level in all, and the objective's factorization is blocked, or dense with at least
    :data:`ONE_FACTOR_MIN_DENSE_SIZE` columns (the sparse one never holds a single
    block). Built from the cross-products already installed in the
    objective's system, so the two factorizations see the same numbers.

    Parameters
    ----------
    obj : LMMObjective
    min_dense_size : int
        The dense factorization's threshold (0: whenever the model qualifies, for tests).

    Returns
    -------
    OneFactorPlan or None
    """
    if obj.sigma is not None:
        return None
    terms = obj.design.terms
    if sum(t.p for t in terms) > ONE_FACTOR_MAX_P:
        return None
    if obj.method == "dense":
        system = obj.system
        if system.q + obj.p + 1 < min_dense_size:
            return None
        if len(terms) == 1:
            index = np.arange(system.q).reshape(terms[0].nlevels, terms[0].p)
            structure, theta_index = terms[0].structure, None
        else:
            names = {t.grouping.name for t in terms}
            if len(names) != 1:
                return None
            merge = TermMerge.of(
                system.blocks, [t.structure for t in terms], [t.grouping.name for t in terms]
            )
            if len(merge.groups) != 1:
                return None
            inv = np.empty_like(merge.u_index)
            inv[merge.u_index] = np.arange(merge.u_index.size)
            block = merge.blocks[0]
            index = inv.reshape(block.nlevels, block.p)
            structure, theta_index = merge.structures[0], merge.theta_index
        one = OneFactorSystem.from_dense(system.full, index, structure)
        return OneFactorPlan(one, theta_index, structure)
    if obj.method != "blocked":
        return None
    core = obj._core
    A = core.A
    if A is None or A.A21 is not None:
        return None  # more than one block
    structure = core.structures[0]
    theta_index = None if obj.merge is None else obj.merge.theta_index
    return OneFactorPlan(OneFactorSystem(A.A11, A.A1X, A.AXX, structure), theta_index, structure)


def one_factor_value_and_gradient(
    obj, plan: OneFactorPlan, theta: np.ndarray
) -> tuple[float, np.ndarray]:
    """The criterion of ``obj`` and its gradient in theta through ``plan`` (module
    docstring); ``(inf, 0)`` where the system is not positive definite."""
    th = plan.theta_block(theta)
    f, value = obj.factor_and_value(plan.system.factorize, th)
    if f is None or not np.isfinite(value):
        return value, np.zeros_like(theta)
    Psi = plan.psi(f.LXX, obj.reml, obj.n - obj.p if obj.reml else obj.n)
    if Psi is None:
        return value, np.full_like(theta, np.nan)
    G = plan.system.lambda_gradient(f, Psi)
    if plan.gather is not None:
        grad = G.reshape(-1)[plan.gather]
    else:
        jac = plan.structure.lambda_jacobian(th)
        grad = jac.reshape(jac.shape[0], -1) @ G.reshape(-1)
    return value, plan.to_terms(grad)
