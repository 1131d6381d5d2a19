r"""Profiled deviance and REML criterion of a linear mixed model.

Model: ``y = X beta + Z b + e`` with ``b ~ N(0, sigma^2 Lambda Lambda')`` and
``e ~ N(0, sigma^2 W^{-1})``, ``W`` the prior weights. With ``b = Lambda u`` the penalized
weighted residual sum of squares

.. math:: r^2(\theta) = \min_{u, \beta} \|W^{1/2}(y - X\beta - Z\Lambda u)\|^2 + \|u\|^2

comes from the blocked Cholesky factor ``L`` (see :mod:`mixedmodels.linalg.blocked`).
Profiling out ``beta`` and ``sigma`` gives lme4's objectives

.. math::

    d_{ML}(\theta) &= \log|L_Z|^2 - \log|W| + n\,[1 + \log(2\pi r^2 / n)] \\
    d_{REML}(\theta) &= \log|L_Z|^2 + \log|R_X|^2 - \log|W|
                        + (n-p)\,[1 + \log(2\pi r^2 / (n - p))]

``-d/2`` is the (restricted) log-likelihood at the conditional optimum of ``beta`` and
``sigma``.

Precision: the system is factored in the basis ``X~ = X R^{-1}`` of
:class:`~mixedmodels.linalg.FixedBasis` with the response replaced by its weighted
least-squares residual ``y~``, so a large constant in ``y`` or in a predictor never enters
the cross-products (``y'y - ...`` would cancel). The criterion is unchanged except
``log|R_X|^2``, to which ``log|R|^2`` is added back; ``beta`` and ``R_X^{-1}`` are mapped
back to the user's ``X`` before they leave this module (the factor itself stays in the
internal basis: only its random-effects blocks are used outside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from ..design import Design
from ..design.fixed import take_rank_factor
from ..linalg import (
    DENSE_MAX_SIZE,
    SPARSE_MIN_REST,
    BlockedFactor,
    BlockedSystem,
    BlockLayout,
    CrossProductPattern,
    CrossProducts,
    DenseSystem,
    FixedBasis,
    MergedSystem,
    SparseSystem,
    TermBlock,
    TermMerge,
)
from ..linalg.lapack import lower_mask
from .lmm_gradient import (
    general_gradient,
    has_jacobian,
    scalar_terms_gradient,
    supports_gradient,
)
from .lmm_one_factor import one_factor_system, one_factor_value_and_gradient

__all__ = ["LMMObjective", "LMMSolution", "block_plan", "choose_method"]

_LOG_2PI = float(np.log(2.0 * np.pi))
_dtrtri = lapack.dtrtri
_SYSTEMS = {"dense": DenseSystem, "blocked": BlockedSystem, "sparse": SparseSystem}
#: :attr:`LMMObjective.one_factor` not built yet (a string, not ``object()``: a pickled
#: or deep-copied objective must still recognize it)
_PENDING = "pending"


def choose_method(design, method: str = "auto", first_q: int | None = None) -> str:
    """The factorization :class:`LMMObjective` uses for a design's sizes.

    ``"auto"``: the whole system dense when ``q + p + 1 <= DENSE_MAX_SIZE``, sparse when
    the rest block (every term after the first) has more than ``SPARSE_MIN_REST`` columns,
    blocked otherwise. Only sizes are read (``q``, ``p``, the first term's ``q``).

    Parameters
    ----------
    design : Design or a sizes-only design
    method : {"auto", "dense", "blocked", "sparse"}
    first_q : int, optional
        Columns of the first block when it is not the first term alone (the terms on the
        first term's grouping factor merged, :class:`~mixedmodels.linalg.TermMerge`).

    Returns
    -------
    str
    """
    if method == "auto":
        q_rest = design.q - (design.terms[0].q if first_q is None else first_q)
        if design.q + design.p + 1 <= DENSE_MAX_SIZE:
            return "dense"
        return "sparse" if q_rest > SPARSE_MIN_REST else "blocked"
    if method not in _SYSTEMS:
        raise ValueError(f"method must be 'auto' or one of {sorted(_SYSTEMS)}, not "
                         f"{method!r}")
    return method


def block_plan(design, method: str = "auto", merge_terms: bool = True
               ) -> tuple[str, TermMerge | None]:
    """The factorization and the merge of terms on one grouping factor for a design.

    Terms on the same grouping factor (``(x || g)``) factor as one block
    (:class:`~mixedmodels.linalg.TermMerge`) unless the whole system is dense (it holds
    all of ``Z``: nothing to gain there, and the merge costs a small fit's set-up
    ~0.1 ms); the method is then chosen with the merged first block's size. Only the
    terms' names, sizes and codes are read, so a sizes-only design (rows summed over
    chunks elsewhere, codes of length 0) gets the plan of the in-memory design of the
    same rows: terms with one name have one set of codes in every chunk.

    Parameters
    ----------
    design : Design or a sizes-only design
    method : {"auto", "dense", "blocked", "sparse"}
    merge_terms : bool
        False: each term its own block (for comparisons).

    Returns
    -------
    method : str
    merge : TermMerge or None
        None when no block would hold more than one term.
    """
    chosen = choose_method(design, method)
    if chosen == "dense":
        return chosen, None        # (the sizes alone decide it: no merge to form)
    blocks = [TermBlock(t.grouping.codes, t.Z, t.nlevels) for t in design.terms]
    merge = TermMerge.of(blocks, [t.structure for t in design.terms],
                         [t.grouping.name for t in design.terms])
    merge = merge if merge.merges and merge_terms else None
    first_q = None if merge is None else merge.blocks[0].q
    return choose_method(design, method, first_q=first_q), merge


def _factorization(design, method: str, merge, layout, blocks):
    """``(pattern, system)`` of the blocked or sparse method: the per-term blocks, or the
    merged ones wrapped to speak the terms' order (:class:`MergedSystem`). ``layout``
    is :class:`CrossProductPattern` (rows here) or :class:`BlockLayout` (sizes only)."""
    structures = [t.structure for t in design.terms]
    if merge is None:
        pattern = layout(blocks, dense_rest=method != "sparse")
        return pattern, _SYSTEMS[method](pattern, structures)
    pattern = layout(merge.blocks, dense_rest=method != "sparse")
    return pattern, MergedSystem(_SYSTEMS[method](pattern, merge.structures), merge,
                                 [t.p for t in design.terms])


@dataclass(frozen=True)
class LMMSolution:
    """Everything determined by theta at the conditional optimum.

    Attributes
    ----------
    theta : ndarray
    objective : float
        REML criterion or deviance.
    beta : ndarray (p,)
    u : ndarray (q,)
        Spherical random effects.
    b : list of ndarray (l_k, p_k)
        Random effects per term (``Lambda_k u_k``), rows are levels.
    sigma : float
        Residual standard deviation (``sqrt(r^2 / n)`` for ML, ``/(n - p)`` for REML).
    pwrss : float
        Penalized weighted residual sum of squares ``r^2``.
    logdet_Z, logdet_X : float
        ``log|L_Z|^2`` and ``log|R_X|^2``.
    RX_inv : ndarray (p, p)
        Inverse of ``R_X`` (upper triangular): ``vcov(beta) = sigma^2 RX_inv RX_inv'``.
    factor : BlockedFactor
        The factor, for conditional variances (its fixed-effects blocks are in the
        internal basis ``X~`` of :attr:`LMMObjective.basis`, not the user's ``X``).
    """

    theta: np.ndarray
    objective: float
    beta: np.ndarray
    u: np.ndarray
    b: list
    sigma: float
    pwrss: float
    logdet_Z: float
    logdet_X: float
    RX_inv: np.ndarray
    factor: BlockedFactor


class LMMObjective:
    """Callable ``theta -> objective`` for a :class:`Design`; built once, evaluated often.

    Parameters
    ----------
    design : Design
    reml : bool
        REML criterion (True, lme4's default) or deviance (False).
    sigma : float, optional
        A known residual standard deviation: the criterion is then the (restricted)
        deviance at that sigma, ``log|L_Z|^2 [+ log|R_X|^2] - log|W| + d log(2 pi sigma^2)
        + r^2 / sigma^2`` with ``d = n`` (ML) or ``n - p`` (REML), instead of its profile.
    method : {"auto", "dense", "blocked", "sparse"}
        Factorization: the whole system as one dense matrix (small models), block by block
        (:mod:`mixedmodels.linalg.blocked`), or sparse LU (:mod:`mixedmodels.linalg.sparse`,
        for rest blocks too large to hold dense). ``"auto"`` picks dense when
        ``q + p + 1 <= DENSE_MAX_SIZE``, sparse when the rest block exceeds
        ``SPARSE_MIN_REST`` columns, blocked otherwise.
    merge_terms : bool
        Factor terms on the same grouping factor as one block (default; blocked and sparse
        methods, :mod:`mixedmodels.linalg.merged`). The criterion is the same either way;
        False keeps one block per term (for comparisons).
    one_factor : bool, optional
        Evaluate the criterion and its gradient level by level when every term is on one
        grouping factor (:mod:`mixedmodels.objective.lmm_one_factor`, sigma profiled):
        the same criterion at a fraction of the cost; ``method``'s system still serves
        :meth:`solve` and everything read from a factor. Default: with ``method="auto"``
        only (an explicit ``method`` evaluates through that factorization). False: never
        (for comparisons).

    Notes
    -----
    The cross-products ``[Z X~ y~]' W [Z X~ y~]`` (module docstring: the well-conditioned
    basis of the fixed effects and the residualized response) are formed once here; each
    call only scales them by ``Lambda(theta)`` and refactors. Calls have no side effect
    apart from the evaluation counter ``n_evals``.
    """

    def __init__(self, design: Design, reml: bool = True, method: str = "auto",
                 sigma: float | None = None, merge_terms: bool = True,
                 one_factor: bool | None = None):
        blocks = [TermBlock(t.grouping.codes, t.Z, t.nlevels) for t in design.terms]
        structures = [t.structure for t in design.terms]
        if one_factor is None:
            one_factor = method == "auto"
        method, merge = block_plan(design, method, merge_terms)
        # (the rank check's QR of X where it made one: the same factorization)
        basis = FixedBasis.of(design.X, design.weights, take_rank_factor(design.fixed))
        y_res, coef0 = basis.residualize(design.y - design.offset, design.weights)
        # [X~ y~] by two column writes (np.column_stack's wrapper costs more on a small fit)
        XY = np.empty((y_res.shape[0], basis.X.shape[1] + 1))
        XY[:, :-1] = basis.X
        XY[:, -1] = y_res
        #: ``[X~ y~]``: the fixed-effects columns in the internal basis and the residualized
        #: response, as the cross-products see them (:meth:`set_data`)
        self.internal_XY = XY
        if method == "dense":
            # small model: dense Z and one product, no sparse pattern to build
            pattern = None
            system = DenseSystem(blocks, structures)
            system.set_data(XY, design.weights)
        else:
            pattern, system = _factorization(design, method, merge, CrossProductPattern,
                                             blocks)
            system.set_cross_products(pattern.compute(XY, design.weights))
        log_det_w = 0.0 if design.weights is None else float(np.sum(np.log(design.weights)))
        self._setup(design, reml, sigma, method, pattern, system, basis, coef0, log_det_w,
                    merge, one_factor)

    @classmethod
    def from_cross_products(cls, design, cross, basis: FixedBasis, coef0: np.ndarray,
                            log_det_w: float, reml: bool = True, method: str = "auto",
                            merge: TermMerge | None = None) -> LMMObjective:
        """The objective of cross-products formed elsewhere (summed over chunks of rows).

        Parameters
        ----------
        design : Design or a sizes-only design
            Provides ``terms`` (structures, levels, ``p`` per term), ``p``, ``nobs``,
            ``theta0()``, ``theta_lower()``, ``theta_slices()`` and ``scale_spherical``;
            no row-level array is read.
        cross : CrossProducts or ndarray
            ``[Z X~ y~]' W [Z X~ y~]`` in the internal basis: blocks for the ``"blocked"``
            and ``"sparse"`` methods, the full (q + p + 1) square matrix for ``"dense"``.
        basis : FixedBasis
            From :meth:`FixedBasis.from_triangular`.
        coef0 : ndarray (p,)
            The coefficients of ``y`` on ``X~`` that made ``y~``
            (:meth:`FixedBasis.residualize`).
        log_det_w : float
            ``sum(log w)`` of the prior weights (0 without weights).
        reml : bool
        method : {"auto", "dense", "blocked", "sparse"}
            The method ``cross`` was formed for: with ``merge``, what
            :func:`block_plan` returned for the design (``cross`` then in the merged
            blocks' order), else :func:`choose_method`'s.
        merge : TermMerge, optional
            :func:`block_plan`'s merge of the terms (the in-memory objective's).

        Returns
        -------
        LMMObjective
            Evaluated level by level where the in-memory objective of ``method="auto"``
            would be (:attr:`one_factor`): the method here is the one chosen for it.
        """
        if merge is None:
            method = choose_method(design, method)
        structures = [t.structure for t in design.terms]
        blocks = [TermBlock(np.zeros(0, np.int64), np.zeros((0, t.p)), t.nlevels)
                  for t in design.terms]
        obj = cls.__new__(cls)
        obj.internal_XY = None      # no rows here: :meth:`set_data` does not apply
        if method == "dense":
            pattern = None
            system = DenseSystem(blocks, structures)
            system.set_cross_product(cross, design.p + 1)
        else:
            pattern, system = _factorization(design, method, merge, BlockLayout, blocks)
            system.set_cross_products(cross)
        obj._setup(design, reml, None, method, pattern, system, basis, coef0, log_det_w,
                   merge)
        return obj

    def _setup(self, design, reml, sigma, method, pattern, system, basis, coef0, log_det_w,
               merge=None, one_factor=True):
        self.design = design
        self.reml = bool(reml)
        #: the residual standard deviation when it is fixed (not profiled), else None
        self.sigma = None if sigma is None else float(sigma)
        self.n = design.nobs
        self.p = design.p
        #: ``"dense"`` (whole system, small models), ``"blocked"`` or ``"sparse"``
        self.method = method
        self.pattern = pattern
        #: the factorization; a :class:`~mixedmodels.linalg.MergedSystem` (theta, ``u`` and
        #: conditional variances in the terms' order) when terms share a grouping factor
        self.system = system
        #: the :class:`~mixedmodels.linalg.TermMerge` of the terms sharing a grouping
        #: factor, or None (each term its own block)
        self.merge = merge
        #: the system the factors come from, in the merged blocks' order
        self._core = system if merge is None else system.inner
        #: the internal basis of the fixed effects (module docstring)
        self.basis = basis
        self._coef0 = coef0
        self.log_det_w = log_det_w
        self.n_evals = 0
        self.n_grads = 0
        self.lower = design.theta_lower()
        self.theta0 = design.theta0()
        #: analytic gradient available: every structure with ``lambda_jacobian``, and the
        #: dense factorization (:meth:`DenseSystem.logdet_gradient`, sigma profiled or
        #: known) or the blocked one with sigma profiled (:mod:`.lmm_gradient`)
        jacobians = has_jacobian([t.structure for t in design.terms])
        self.has_gradient = jacobians and (
            method == "dense" or (method == "blocked" and self.sigma is None))
        self._scalar_gradient = (self.has_gradient and method == "blocked"
                                 and supports_gradient(self._core))
        # the level-by-level plan is built on first use (objectives whose data are
        # replaced before every evaluation, :meth:`set_data`, never need it)
        self._one_factor = _PENDING if one_factor else None

    @property
    def cross_products(self) -> CrossProducts | None:
        """``[Z X~ y~]' W [Z X~ y~]`` in the blocks of :attr:`pattern` (the merged blocks'
        order when :attr:`merge` is set; the last column of the fixed part is ``y~``) for
        the blocked and sparse methods; None for the others (the dense one holds the
        rows' ``Z`` instead)."""
        return self._core.A if self.method in ("blocked", "sparse") else None

    def set_data(self, XY: np.ndarray, Z: list[np.ndarray], log_det_w: float) -> None:
        """Replace the data by transformed ones (same grouping, unit weights): the
        whitened data of a model with correlated residuals, whose Jacobian ``log|W|^2``
        enters the criterion as ``log_det_w``.

        ``XY`` is :attr:`internal_XY` (the internal basis ``X~`` and the residualized
        response, module docstring) transformed: any linear map of the rows keeps
        ``X beta - y = X~ (R beta - c) - y~``, so the basis, its ``log|R|^2`` and the
        mapping back to the user's coefficients stay as they are, and no factorization of
        ``X`` is repeated.

        Parameters
        ----------
        XY : ndarray (n, p + 1)
        Z : list of ndarray
            One (n, p_k) array per term, the terms' values transformed.
        log_det_w : float
        """
        if self.method == "dense":
            self.system.set_data(XY, None, Z=Z)
        else:
            if self.merge is not None:
                Z = self.merge.merge_z(Z)
            self.system.set_cross_products(self.pattern.compute(XY, None, Z=Z))
        self.log_det_w = float(log_det_w)
        # the level-by-level system would hold the old cross-products: evaluations go
        # through the factorization that was just refreshed
        self._one_factor = None

    @property
    def one_factor(self):
        """The level-by-level evaluation of a model on one grouping factor
        (:func:`~mixedmodels.objective.lmm_one_factor.one_factor_system`, built on first
        use), or None: every evaluation then goes through :attr:`system`."""
        if isinstance(self._one_factor, str):
            self._one_factor = one_factor_system(self)
        return self._one_factor

    @one_factor.setter
    def one_factor(self, plan) -> None:
        self._one_factor = plan

    def criterion_at_sigma(self, f: BlockedFactor, sigma: float) -> float:
        """The (restricted) deviance of a factor at an explicit residual standard
        deviation (not profiled over it): the criterion when sigma is known, and the
        function whose Hessian gives nlme's approximate covariance of the variance
        parameters.

        Parameters
        ----------
        f : BlockedFactor
        sigma : float

        Returns
        -------
        float
            ``log|L_Z|^2 [+ log|R_X|^2] - log|W| + d log(2 pi sigma^2) + r^2 / sigma^2``,
            ``d = n`` (ML) or ``n - p`` (REML).
        """
        dof = self.n - self.p if self.reml else self.n
        logdet = f.logdet_Z + (f.logdet_X(self.p) + self.basis.log_det_R2
                               if self.reml else 0.0)
        s2 = sigma * sigma
        return float(logdet - self.log_det_w + dof * (_LOG_2PI + np.log(s2))
                     + f.pwrss() / s2)

    def _from_factor(self, f: BlockedFactor) -> float:
        if self.sigma is not None:
            # sigma known: the criterion is not profiled over it (MixedModels.jl's sigma=)
            return self.criterion_at_sigma(f, self.sigma)
        r2 = f.pwrss()
        if not r2 > 0.0:        # (math.log refuses what np.log maps to -inf / nan)
            return -np.inf if r2 == 0.0 else np.nan
        # math.log: a scalar, evaluated ~60 times per small fit (np.log costs 1 us more)
        if self.reml:
            dof = self.n - self.p
            return (f.logdet_Z + f.logdet_X(self.p) + self.basis.log_det_R2 - self.log_det_w
                    + dof * (1.0 + _LOG_2PI + math.log(r2 / dof)))
        return f.logdet_Z - self.log_det_w + self.n * (1.0 + _LOG_2PI + math.log(r2 / self.n))

    def factor_and_value(self, factorize, theta: np.ndarray, **kwargs):
        """The factor at ``theta`` and the criterion it gives.

        Parameters
        ----------
        factorize : callable
            A system's ``factorize`` (:attr:`system`'s or the level-by-level one's).
        theta : ndarray
            In that system's order.
        **kwargs
            Passed to ``factorize``.

        Returns
        -------
        factor, float
            ``(None, inf)`` where the system is not positive definite or the structure
            has no covariance at ``theta``.
        """
        try:
            f = factorize(theta, **kwargs)
        except np.linalg.LinAlgError:       # a structure with no covariance at theta
            return None, np.inf
        if f is None:
            return None, np.inf
        return f, float(self._from_factor(f))

    def __call__(self, theta) -> float:
        self.n_evals += 1
        if self.one_factor is not None:
            plan = self.one_factor
            return self.factor_and_value(plan.system.factorize,
                                         plan.theta_block(np.asarray(theta, dtype=float)),
                                         for_gradient=False)[1]
        try:
            f = self.system.factorize(np.asarray(theta, dtype=float), scratch=True)
        except np.linalg.LinAlgError:       # a structure with no covariance at theta
            return np.inf
        if f is None:
            return np.inf
        return float(self._from_factor(f))

    def value_and_gradient(self, theta, curvature: np.ndarray | None = None
                           ) -> tuple[float, np.ndarray]:
        """The objective and its analytic gradient (only when :attr:`has_gradient`).

        Parameters
        ----------
        theta : array-like
        curvature : ndarray, optional
            One entry per parameter: filled with a diagonal estimate of the Hessian in
            ``log theta`` (per unit of theta for parameters without the lower bound 0:
            :func:`~mixedmodels.objective.lmm_gradient.shrinkage_curvature`,
            :func:`~mixedmodels.objective.lmm_gradient.fisher_curvature`) where the
            blocked system's gradient runs without merged terms; set to NaN elsewhere.

        Returns
        -------
        float, ndarray
            The REML criterion or deviance, and its gradient in theta.
        """
        if not self.has_gradient:
            raise NotImplementedError("the analytic gradient needs the dense or blocked "
                                      "factorization and covariance structures with "
                                      "lambda_jacobian")
        self.n_evals += 1
        self.n_grads += 1
        if curvature is not None:
            curvature[:] = np.nan
        if self.one_factor is not None:
            return one_factor_value_and_gradient(self, self.one_factor,
                                                 np.asarray(theta, dtype=float))
        if self.method == "dense":
            return self._dense_value_and_gradient(np.asarray(theta, dtype=float))
        theta_user = np.asarray(theta, dtype=float)
        theta = theta_user if self.merge is None else theta_user[self.merge.theta_index]
        f = self._core.factorize(theta, scratch=True)
        if f is None:
            return np.inf, np.zeros_like(theta)
        # the gradient works in the internal basis, like the factor (the criterion differs
        # from the user basis's by a constant, so the gradient is the same); it overwrites
        # the scratch factor's dense block with its inverse (the value below reads only
        # log-determinants and the fixed-effects block)
        beta_t, RXt_inv = self._internal_fixed(f)
        r2 = f.pwrss()
        dof = self.n - self.p if self.reml else self.n
        if self._scalar_gradient:
            grad = scalar_terms_gradient(self._core, f, theta, beta_t, r2, dof, self.reml,
                                         RXt_inv, consume=True,
                                         curvature=curvature if self.merge is None else None)
        else:
            grad = general_gradient(self._core, f, theta, beta_t, r2, dof, self.reml,
                                    RXt_inv, consume=True,
                                    curvature=curvature if self.merge is None else None)
        if self.merge is not None:
            grad = self.merge.theta_to_terms(grad)
        return float(self._from_factor(f)), grad

    def _dense_value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`value_and_gradient` on the dense system: the criterion is
        ``log|Omega_s| + c log r^2`` plus a constant (``s = q + p``, ``c = n - p`` for
        REML; ``s = q``, ``c = n`` for ML; ``c = r^2 / sigma^2`` with ``log r^2``'s
        gradient when sigma is known), whose gradient
        :meth:`DenseSystem.logdet_gradient` gives."""
        f, value = self.factor_and_value(self.system.factorize, theta, scratch=True)
        if f is None or not math.isfinite(value):
            return value, np.zeros_like(theta)
        return value, self.system.logdet_gradient(f, theta, *self.dense_weights(f))

    def dense_weights(self, f) -> tuple[int, float]:
        """``(s, c)`` of the criterion ``log|Omega_s| + c log r^2`` (plus constants) of a
        dense factor: ``s = q + p``, ``c = n - p`` for REML; ``s = q``, ``c = n`` for ML;
        ``c = r^2 / sigma^2`` with a known sigma (see
        :meth:`~mixedmodels.linalg.dense.DenseSystem.logdet_gradient`).

        Parameters
        ----------
        f : DenseFactor
            A factor of :attr:`system` (dense).

        Returns
        -------
        s : int
            Leading block whose log-determinant the criterion holds.
        c : float
            Weight of ``log r^2``.
        """
        q = self.system.q
        if self.sigma is not None:
            return q + (self.p if self.reml else 0), f.pwrss() / self.sigma ** 2
        return (q + self.p, self.n - self.p) if self.reml else (q, self.n)

    def _internal_fixed(self, f: BlockedFactor) -> tuple[np.ndarray, np.ndarray]:
        """Conditional coefficients of ``y~`` on ``X~`` and ``R~_X^{-1}`` from the factor."""
        p = self.p
        if not p:
            return np.zeros(0), np.zeros((0, 0))
        # np.tril's own masking with the mask formed once per size (np.tril builds it
        # on every call, a third of this function's time on a small model)
        LXX = f.LXX
        LXX = np.where(lower_mask(LXX.shape), LXX, 0.0)
        # LAPACK's triangular inverse of the p x p block R~_X = L_XX' (upper), without
        # np.linalg.inv's wrapper and LU (half the cost; equal to it to rounding)
        RXt_inv, info = _dtrtri(LXX[:p, :p].T, lower=0)
        if info != 0:
            raise np.linalg.LinAlgError("Singular matrix")
        return RXt_inv @ LXX[p, :p], RXt_inv

    @property
    def response_coef(self) -> np.ndarray:
        """Coefficients on ``X~`` of the response taken out by the residualization
        (``y - offset = y~ + X~ c``): the user's ``beta`` is ``R^{-1}(b + c)`` for the
        factor's internal coefficients ``b``."""
        return self._coef0

    def fixed_part(self, f: BlockedFactor) -> tuple[np.ndarray, np.ndarray, float]:
        """The fixed-effects quantities of a factor, mapped back to the user's ``X``.

        Parameters
        ----------
        f : BlockedFactor
            A factor from :attr:`system` (in the internal basis of :attr:`basis`).

        Returns
        -------
        beta : ndarray (p,)
            Conditional estimate of the fixed effects.
        RX_inv : ndarray (p, p)
            ``R_X^{-1}`` (upper triangular): ``vcov(beta) = sigma^2 R_X^{-1} R_X^{-T}``.
        logdet_X : float
            ``log|R_X|^2`` of the user's ``X`` (internal value plus ``log|R|^2``).
        """
        return self._user_fixed(f, *self._internal_fixed(f))

    def _user_fixed(self, f, beta_t, RXt_inv) -> tuple[np.ndarray, np.ndarray, float]:
        """:meth:`fixed_part` from the internal quantities already computed."""
        basis = self.basis
        return (basis.to_user(beta_t + self._coef0), basis.rx_inv_to_user(RXt_inv),
                f.logdet_X(self.p) + basis.log_det_R2)

    def solve(self, theta) -> LMMSolution:
        """Conditional estimates (beta, u, b, sigma) and the factor at ``theta``.

        Parameters
        ----------
        theta : array-like

        Returns
        -------
        LMMSolution

        Raises
        ------
        numpy.linalg.LinAlgError
            When the system is not positive definite at ``theta``.
        """
        theta = np.asarray(theta, dtype=float)
        f = self.system.factorize(theta)
        if f is None:
            raise np.linalg.LinAlgError(f"system not positive definite at theta={theta}")
        p = self.p
        beta_t, RXt_inv = self._internal_fixed(f)
        u = self.system.solve_u(f, beta_t)
        beta, RX_inv, logdet_X = self._user_fixed(f, beta_t, RXt_inv)
        b = self.b_from_u(theta, u)
        r2 = f.pwrss()
        sigma = self.sigma if self.sigma is not None else \
            float(np.sqrt(r2 / (self.n - p if self.reml else self.n)))
        return LMMSolution(theta, float(self._from_factor(f)), beta, u, b, sigma, r2,
                           f.logdet_Z, logdet_X, RX_inv, f)

    def b_from_u(self, theta: np.ndarray, u: np.ndarray) -> list:
        """Random effects per term from the spherical ones.

        Parameters
        ----------
        theta : ndarray
        u : ndarray (q,)

        Returns
        -------
        list of ndarray
            ``b_k = Lambda_k u_k`` level by level, (l_k, p_k) per term.
        """
        out, off = [], 0
        for t, sl in zip(self.design.terms, self.design.theta_slices(), strict=True):
            lam = t.structure.lambda_(theta[sl])
            uk = u[off:off + t.q].reshape(t.nlevels, t.p)
            out.append(uk @ lam.T)
            off += t.q
        return out

    def cond_var(self, sol: LMMSolution) -> list:
        """Conditional covariance blocks of ``b`` per term (lme4's ``condVar``,
        conditional on the fixed effects).

        Parameters
        ----------
        sol : LMMSolution

        Returns
        -------
        list of ndarray
            ``sigma^2 Lambda M^{-1} Lambda'`` per term, (l_k, p_k, p_k).
        """
        return self.design.scale_spherical(sol.theta, self.system.cond_var_u(sol.factor),
                                           sol.sigma ** 2)
