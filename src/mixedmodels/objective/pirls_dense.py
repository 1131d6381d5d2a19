r"""PIRLS's penalized least-squares system as one dense matrix, for small models.

With ``G = [Z Lambda, X, r]`` (``n x (q + m)``: the random-effects columns scaled by
``Lambda(theta)``, then the ``m`` columns of the step -- ``[X~ z]`` in the joint (nAGQ = 0)
solve, the working residual alone at fixed ``beta``) one PIRLS step factors

.. math:: L L' = G' W G + \operatorname{diag}(I_q, 0)

by one LAPACK Cholesky. The leading ``q x q`` block of ``L`` is the factor ``L_Z`` of
``M = Lambda' Z' W Z Lambda + I`` (so ``log|M| = 2 sum log diag L_Z``), the rows below it
give ``L_Z^{-1} Lambda' Z' W [X r]`` and the Schur complement's factor ``[[R, 0], [c', s]]``
(``R' beta = c``), exactly the blocks :class:`~.pirls_system.PIRLSSystem` builds piece by
piece. For a model with a few dozen random effects and few observations (cbpp: q = 15,
n = 56) the two products and one factorization cost a third of the blocked algorithm's
bincounts, per-block factorizations and solves, which are all call overhead at that size;
:func:`use_dense` bounds where this holds (:data:`DENSE_PIRLS_MAX_SIZE`,
:data:`DENSE_PIRLS_MAX_FLOPS`).

The last pivot (the step's residual sum of squares ``s^2``) is never used -- ``beta`` and
``u`` come from the rows above it -- and is zero when the working response is fitted
exactly; a factorization that fails only there (LAPACK's ``info`` equal to the size: every
earlier column is complete) is accepted, as the blocked system raises that one pivot.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..linalg.lapack import solve_lower, solve_lower_t

__all__ = ["DENSE_PIRLS_MAX_FLOPS", "DENSE_PIRLS_MAX_SIZE", "DensePIRLSFactor",
           "DensePIRLSSystem", "ScalarPIRLSFactor", "use_dense"]

#: Largest ``q + p + 1`` for which PIRLS factors its system densely: the (q + m)^3 / 3
#: Cholesky flops stay negligible next to the per-call costs they replace.
DENSE_PIRLS_MAX_SIZE = 64
#: ... and largest ``n (q + p + 1)^2`` (the flops of ``G' W G``). Measured on one core:
#: cbpp (n = 56, size 20, 2.2e4) a joint step 20 us dense against 70 us blocked;
#: grouseticks (n = 403, size 185, 1.4e7) 1.1 ms against 0.3-0.4 ms.
DENSE_PIRLS_MAX_FLOPS = 4e5

_dpotrf = lapack.dpotrf


def use_dense(nobs: int, q: int, p: int) -> bool:
    """Whether a design of ``nobs`` rows, ``q`` random effects and ``p`` fixed effects
    gets the dense PIRLS system (module docstring)."""
    size = q + p + 1
    return size <= DENSE_PIRLS_MAX_SIZE and nobs * size * size <= DENSE_PIRLS_MAX_FLOPS


class DensePIRLSFactor:
    """``L`` of one PIRLS step (lower triangle of a C-ordered (q + m) square array).

    Attributes
    ----------
    L : ndarray (q + m, q + m)
    q : int
    logdet : float
        ``log|Lambda' Z' W Z Lambda + I|``.
    """

    __slots__ = ("L", "_first", "logdet", "q")

    def __init__(self, L: np.ndarray, q: int, logdet: float, first: tuple[int, int]):
        self.L, self.q, self.logdet = L, q, logdet
        self._first = first

    @property
    def LXX(self) -> np.ndarray:
        """The ``[X r]`` block of ``L`` (lower triangular, m x m)."""
        return self.L[self.q:, self.q:]

    @property
    def L11(self) -> np.ndarray:
        """The first term's diagonal blocks of ``L_Z``, (levels, p1, p1): its levels do not
        share observations, so its block of ``M`` and of ``L_Z`` is block diagonal."""
        nlev, p1 = self._first
        if p1 == 1:
            return self.L.reshape(-1)[:nlev * (self.L.shape[0] + 1):self.L.shape[0] + 1] \
                .reshape(nlev, 1, 1).copy()
        idx = np.arange(nlev * p1).reshape(nlev, p1)
        return np.tril(self.L[idx[:, :, None], idx[:, None, :]])


class ScalarPIRLSFactor:
    r"""One fixed-``beta`` PIRLS step of a model with one scalar term
    (:meth:`DensePIRLSSystem.factor_scalar_step`): its levels share no rows, so
    ``M = Lambda' Z' W Z Lambda + I`` is the diagonal ``d``, ``d_j = 1 + lambda^2
    sum_{i in j} w_i z_i^2``, and the step's modes are ``rhs / d`` with ``rhs_j = lambda
    sum_{i in j} w_i z_i r_i`` (``r`` the working residual). The dense factor's
    numbers without its matrices (``L_Z = diag(sqrt(d))``): the same to rounding.

    Attributes
    ----------
    d, rhs : ndarray (levels,)
    logdet : float
        ``log|M| = sum log d``.
    """

    __slots__ = ("d", "logdet", "rhs")

    #: no fixed-effects block (fixed beta)
    LXX = None

    def __init__(self, d: np.ndarray, rhs: np.ndarray, logdet: float):
        self.d, self.rhs, self.logdet = d, rhs, logdet

    @property
    def L11(self) -> np.ndarray:
        """The diagonal of ``L_Z`` as (levels, 1, 1) blocks."""
        return np.sqrt(self.d).reshape(-1, 1, 1)


class DensePIRLSSystem:
    """Factor-and-solve of the PIRLS system with a dense ``Z`` (module docstring); the
    interface of :class:`~.pirls_system.PIRLSSystem` (``solve_u``, ``solve_M``,
    ``logdet``), with :meth:`factor_step` taking the step's columns and weights in place of
    cross-products. Factors of the blocked system (``fallback``, which
    :meth:`~.pirls.PIRLS.logdet_at` still uses) are passed on to it.

    Parameters
    ----------
    design : Design
    Z : scipy.sparse matrix or ndarray (n, q)
        ``Z`` in the layout of ``u`` (term by term, level by level).
    fallback : PIRLSSystem or MergedPIRLSSystem
    """

    def __init__(self, design, Z, fallback):
        self.fallback = fallback
        self.Z = np.asarray(Z.toarray() if sp.issparse(Z) else Z, dtype=float)
        self.n, self.q = self.Z.shape
        #: per term: (first column, q_k, levels, p_k)
        self._terms, off = [], 0
        for t in design.terms:
            self._terms.append((off, t.q, t.nlevels, t.p))
            off += t.q
        self._scalar = all(t.p == 1 for t in design.terms)
        #: ``(codes, z column)`` of a model with one scalar term, whose fixed-beta steps
        #: need no matrices (:meth:`factor_scalar_step`); else None
        self.one_scalar = None
        if len(design.terms) == 1 and design.terms[0].p == 1:
            t = design.terms[0]
            self.one_scalar = (t.grouping.codes, np.asarray(t.Z[:, 0], dtype=float))
        self._counts = np.array([t.q for t in design.terms], dtype=np.intp)
        first = design.terms[0]
        self._first = (first.nlevels, first.p)
        self._size = None
        self._zdiag = None
        #: the step's columns ``[Z Lambda, XY]``, reused while ``lams`` (the same list: one
        #: PIRLS solve's) is the one their ``Z Lambda`` block was formed for
        self._G: np.ndarray | None = None
        self._G_lams = None

    def scaled_z(self, lams, out: np.ndarray) -> None:
        """``Z Lambda`` into ``out`` (n, q)."""
        if self._scalar:
            lam = np.repeat(np.array([lam[0, 0] for lam in lams]), self._counts)
            np.multiply(self.Z, lam, out=out)
            return
        for (off, qk, nlev, p), lam in zip(self._terms, lams, strict=True):
            block = self.Z[:, off:off + qk]
            if p == 1:
                np.multiply(block, lam[0, 0], out=out[:, off:off + qk])
            else:
                out[:, off:off + qk] = (block.reshape(self.n, nlev, p) @ lam) \
                    .reshape(self.n, qk)

    def factor_step(self, lams, XY: np.ndarray, w: np.ndarray, ridge: float = 0.0
                    ) -> DensePIRLSFactor | None:
        """The factor of one step, or None when ``M`` (or the fixed-effects block) is not
        numerically positive definite.

        Parameters
        ----------
        lams : list of ndarray
            Each term's ``lambda_k(theta)``.
        XY : ndarray (n, m)
            The step's columns: ``[X~ z]`` (joint) or the working residual (n, 1).
        w : ndarray (n,)
            Working weights.
        ridge : float
            Added to the diagonal of the fixed-effects block (``m - 1`` columns), for
            :data:`~.pirls.XX_RIDGE`'s retry.
        """
        q = self.q
        m = XY.shape[1]
        size = q + m
        G = self._G
        if self._G_lams is not lams or G.shape[1] != size:
            # a new solve (new lams): form Z Lambda once for all of its steps
            G = np.empty((self.n, size))
            self.scaled_z(lams, G[:, :q])
            self._G, self._G_lams = G, lams
        G[:, q:] = XY
        C = G.T @ (G * w[:, None])
        if size != self._size:
            self._size = size
            self._zdiag = np.arange(q) * (size + 1)
        flat = C.reshape(-1)
        flat[self._zdiag] += 1.0
        if ridge:
            xdiag = (q + np.arange(m - 1)) * (size + 1)
            flat[xdiag] += ridge
        # C is symmetric: its transpose is the same matrix in Fortran order, factored in
        # place into C's lower triangle (C order)
        _, info = _dpotrf(C.T, lower=0, clean=0, overwrite_a=1)
        if info != 0 and info != size:
            return None
        logdet = 2.0 * float(np.log(flat[self._zdiag]).sum())
        return DensePIRLSFactor(C, q, logdet, self._first)

    def factor_scalar_step(self, lams, r: np.ndarray, w: np.ndarray
                           ) -> ScalarPIRLSFactor | None:
        """:meth:`factor_step` at fixed beta for one scalar term (:attr:`one_scalar`):
        the diagonal ``M`` and the step's right-hand side by two level sums
        (:class:`ScalarPIRLSFactor`), or None when ``M`` is not positive definite (the
        observed weights of both signs)."""
        codes, zc = self.one_scalar
        a = lams[0][0, 0] * zc
        wa = w * a
        d = 1.0 + np.bincount(codes, wa * a, minlength=self.q)
        if not d.min() > 0.0:
            return None
        rhs = np.bincount(codes, wa * r, minlength=self.q)
        return ScalarPIRLSFactor(d, rhs, float(np.log(d).sum()))

    def solve_u(self, f, beta: np.ndarray) -> np.ndarray:
        """``u`` at ``beta`` (the step's coefficients; empty at fixed beta):
        ``L_Z' u = l_rZ' - L_XZ' beta``."""
        if type(f) is ScalarPIRLSFactor:
            return f.rhs / f.d
        if not isinstance(f, DensePIRLSFactor):
            return self.fallback.solve_u(f, beta)
        q, p = self.q, beta.shape[0]
        L = f.L
        rhs = L[q + p, :q] - L[q:q + p, :q].T @ beta if p else L[q, :q]
        return solve_lower_t(L[:q, :q], rhs)

    def solve_M(self, f, B: np.ndarray) -> np.ndarray:
        """``M^{-1} B`` for a (q, k) matrix ``B``."""
        if type(f) is ScalarPIRLSFactor:
            return B / f.d[:, None]
        if not isinstance(f, DensePIRLSFactor):
            return self.fallback.solve_M(f, B)
        Lz = f.L[:self.q, :self.q]
        return solve_lower_t(Lz, solve_lower(Lz, B))

    def logdet(self, f) -> float:
        return f.logdet if isinstance(f, (DensePIRLSFactor, ScalarPIRLSFactor)) \
            else self.fallback.logdet(f)

    def factor(self, theta, A, need_xx: bool = True):
        """The blocked system's factor for cross-products ``A`` (the Laplace determinant
        with other weights, :meth:`~.pirls.PIRLS.logdet_at`)."""
        return self.fallback.factor(theta, A, need_xx=need_xx)
