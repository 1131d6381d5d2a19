r"""(RE)ML criteria of linear models with structured residuals, by whitening.

With ``W`` the whitening of :mod:`.residual` (``W' W = V^{-1}``), the model
``y = X beta + Z b + e``, ``e ~ N(0, sigma^2 V)`` becomes ``W y = W X beta + W Z b + e*``
with independent ``e*`` of variance ``sigma^2``. Its profiled criterion is the ordinary one
of :class:`~mixedmodels.objective.LMMObjective` on the whitened data, in which ``log|V|``
takes the place of ``-log|W_prior|``:

.. math::

    d_{ML}(\theta, \phi) &= \log|L_Z|^2 + \log|V| + n\,[1 + \log(2\pi r^2 / n)] \\
    d_{REML}(\theta, \phi) &= \log|L_Z|^2 + \log|R_X|^2 + \log|V|
                              + (n-p)\,[1 + \log(2\pi r^2 / (n - p))]

(with a known sigma, the unprofiled forms of ``LMMObjective``). Every evaluation whitens the
compact arrays ``[Z_1 .. Z_K, X~, y~]`` (n rows, a few columns; ``X~`` the LMM's
well-conditioned basis of the fixed effects, ``y~`` the residualized response) and rebuilds
the cross-products; the factorization is the LMM's. Without random effects (``gls``) the
criterion is that of the whitened linear model, from the Cholesky factor of ``M'V^{-1}M``
(``M`` the well-conditioned ``[X~ y~]``; see :class:`GLSObjective`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.linalg.lapack import dpotrf, dtrtri

from .._errors import DataError
from ..design import Design
from ..linalg.basis import FixedBasis
from ..linalg.dense import flat_z_positions
from ..objective.lmm import LMMObjective, LMMSolution
from .dense_gradient import GRAM_GRADIENT_MAX_ENTRIES, ScaledRowsGram
from .dense_gram import dense_gram_plan, dense_rows
from .gram import BandedGram, gram_plan, whitening_plan
from .level_gram import LevelCrossProduct
from .load_cache import RecentLoads
from .residual import BoundResidual
from .scaled_cs_gram import ScaledCompSymmGram

__all__ = ["DENSE_GRADIENT_MAX_Q", "LEVEL_GRAM_MIN_Q", "GLSObjective", "GLSSolution",
           "RSideLMMObjective", "gls_deviance"]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Fewest random effects for which the dense cross-product is summed level by level
#: (:mod:`.level_gram`): below, the dense product of the whitened rows costs no more
#: (measured per evaluation over the lme fixtures, one BLAS thread: q = 2, 3 level sums
#: 0-5% slower; q = 11 - 40 5-40% faster).
LEVEL_GRAM_MIN_Q = 8
#: Most random effects for which an R-side LMM offers its analytic gradient: it is
#: computed on the dense (q + p + 1)-square system, whose inverse costs ~q^3.
DENSE_GRADIENT_MAX_Q = 400


def _compact(design: Design, XY: np.ndarray) -> tuple[np.ndarray, list[slice]]:
    """``[Z_1 .. Z_K, X~, y~]`` (``XY``: the LMM's internal basis of the fixed effects and
    residualized response) and the column slices of the terms."""
    cols, slices, off = [], [], 0
    for t in design.terms:
        cols.append(t.Z)
        slices.append(slice(off, off + t.p))
        off += t.p
    cols.append(XY)
    return np.ascontiguousarray(np.column_stack(cols)), slices


class RSideLMMObjective:
    """``x = [theta, phi] -> criterion`` of an LMM with a residual model (module docstring).

    Parameters
    ----------
    design : Design
    residual : BoundResidual
    reml : bool
    method : str
        Factorization of the LMM (see :class:`~mixedmodels.objective.LMMObjective`).

    Attributes
    ----------
    lmm : LMMObjective
        The LMM whose data are replaced by the whitened data at every evaluation (its
        private workspace).
    """

    def __init__(self, design: Design, residual: BoundResidual, reml: bool = True,
                 method: str = "auto"):
        # prior weights live in the residual model (its log|V|), not in the LMM
        self.lmm = LMMObjective(design, reml=reml, method=method, sigma=residual.spec.sigma)
        self.design = design
        self.residual = residual
        self.reml = bool(reml)
        self.method = self.lmm.method
        self.n_theta = design.n_theta
        self._M, self._zslices = _compact(design, self.lmm.internal_XY)
        #: the dense cross-product in closed form (compound symmetry, AR(1) / CAR(1)
        #: without a variance function: .dense_gram), no row whitened per evaluation
        self._dense_gram = dense_gram_plan(design, residual, self._M, self._zslices) \
            if self.method == "dense" else None
        self._whiten = whitening_plan(residual, self._M) if self._dense_gram is None \
            else None
        #: the dense cross-product level by level where the whitening keeps every row's
        #: random effects in its level (.level_gram): no (n, q + p + 1) product per
        #: evaluation
        self._level_gram = LevelCrossProduct(design, design.p + 1) \
            if self._dense_gram is None and self.method == "dense" \
            and design.q >= LEVEL_GRAM_MIN_Q \
            and LevelCrossProduct.applies(design, residual) else None
        self.lower = np.concatenate([self.lmm.lower, np.full(residual.n_par, -np.inf)])
        self.x0 = np.concatenate([self.lmm.theta0, residual.start])
        self.n_evals = 0
        #: the ``phi`` whose whitened data the LMM holds, as a list of floats (a list
        #: comparison of 1-3 numbers costs a fraction of ``np.array_equal``'s)
        self._loaded: list[float] | None = None
        #: the last few cross-products installed (.load_cache), where they are built
        #: whole (.level_gram, .dense_gram)
        self._recent = RecentLoads()

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, phi)`` from the optimizer's vector."""
        x = np.asarray(x, dtype=float)
        return x[:self.n_theta], x[self.n_theta:]

    def load(self, phi: np.ndarray) -> bool:
        """Whiten the data for ``phi`` and install them in the LMM (False when ``phi``
        gives a correlation matrix that is not positive definite)."""
        phi = np.asarray(phi, dtype=float)
        key = phi.tolist()
        if key == self._loaded:
            return True
        if self._dense_gram is not None or self._level_gram is not None:
            hit = self._recent.get(tuple(key))
            if hit is not None:
                self._install_gram(*hit)
                self._loaded = key
                return True
        if self._dense_gram is not None:
            return self._load_gram(phi, key)
        res = self._whiten(phi)
        if res is None:
            self._loaded = None
            return False
        Mw, logdet = res
        p = self.design.p
        if self._level_gram is not None:
            A = self._level_gram(Mw)
            self._install_gram(A, logdet)
            self._recent.put(tuple(key), A, logdet)
        elif self.method == "dense":
            # the dense system copies the columns into its own [Z X y] (views suffice)
            Z = [Mw[:, sl] for sl in self._zslices]
            self.lmm.set_data(Mw[:, -(p + 1):], Z, -logdet)
        else:
            Z = [np.ascontiguousarray(Mw[:, sl]) for sl in self._zslices]
            self.lmm.set_data(np.ascontiguousarray(Mw[:, -(p + 1):]), Z, -logdet)
        self._loaded = key
        return True

    def _load_gram(self, phi: np.ndarray, key: list[float]) -> bool:
        """:meth:`load` by the closed-form dense cross-product (:mod:`.dense_gram`)."""
        res = self._dense_gram(phi)
        if res is None:
            self._loaded = None
            return False
        A, logdet = res
        self._install_gram(A, logdet)
        self._recent.put(tuple(key), A, logdet)
        self._loaded = key
        return True

    def _install_gram(self, A: np.ndarray, logdet: float) -> None:
        """Install the cross-product ``A`` (read, not modified, by the LMM's system) and
        ``log|V|``."""
        lmm = self.lmm
        lmm.system.set_cross_product(A, self.design.p + 1)
        # as LMMObjective.set_data: the Jacobian's log|W|^2, and no level-by-level system
        # holding the old cross-products
        lmm.log_det_w = -float(logdet)
        lmm.one_factor = None

    def __call__(self, x) -> float:
        self.n_evals += 1
        theta, phi = self.split(x)
        if not self.load(phi):
            return np.inf
        return self.lmm(theta)

    @property
    def has_gradient(self) -> bool:
        """:meth:`value_and_gradient` is available: the residual model has derivatives,
        every term is lme4's unstructured or diagonal class (``Lambda`` is ``lambda_k``
        repeated over the levels) and the random effects are few enough for the dense
        system (:data:`DENSE_GRADIENT_MAX_Q`)."""
        if "_has_gradient" not in self.__dict__:
            ok = self.residual.has_gradient and self.design.q <= DENSE_GRADIENT_MAX_Q
            for t in self.design.terms:
                if not ok or t.structure.keyword not in ("us", "diag"):
                    ok = False
                    break
                try:
                    t.structure.lambda_jacobian(t.structure.theta0())
                except NotImplementedError:
                    ok = False
            self._has_gradient = ok
        return self._has_gradient

    def _dense_layout(self):
        """Column of every row's random effects in the dense ``Z`` (per term ``(n, p_k)``,
        offset by the earlier terms' columns), made once."""
        if "_layout" not in self.__dict__:
            out, off = [], 0
            width = self.design.q + self.design.p + 1
            for t in self.design.terms:
                # one flat take / put instead of two-dimensional fancy indexing
                out.append(flat_z_positions(t.grouping.codes, t.p, off, width))
                off += t.q
            self._layout = out
        return self._layout

    def _gradient_plan(self):
        """The cross-product plan on the dense rows that :meth:`value_and_gradient` goes
        through (:mod:`.dense_gradient`), or None (not the dense factorization, or rows
        too many for it: the whitening gradient), made once."""
        if "_grad_plan" not in self.__dict__:
            plan = None
            design = self.design
            if self.method == "dense":
                # the plans below hold the dense rows: within GRAM_GRADIENT_MAX_ENTRIES
                small = design.nobs * (design.q + design.p + 1) <= GRAM_GRADIENT_MAX_ENTRIES
                if self._dense_gram is not None:
                    plan = self._dense_gram
                elif small and ScaledRowsGram.applies(self.residual):
                    plan = ScaledRowsGram(self.residual, design, self._M, self._zslices)
                elif small and ScaledCompSymmGram.applies(self.residual):
                    # compound symmetry with scaled rows: its closed form on the dense
                    # rows (the value keeps the whitening)
                    plan = ScaledCompSymmGram(self.residual, dense_rows(
                        design, self._M, self._zslices))
            self._grad_plan = plan
        return self._grad_plan

    @property
    def gram_gradient(self) -> bool:
        """:meth:`value_and_gradient` is available and goes through the dense
        cross-product (:mod:`.dense_gradient`, about 2.5-4x a value) rather than by
        whitening the rows."""
        return self.has_gradient and self._gradient_plan() is not None

    def value_and_gradient(self, x) -> tuple[float, np.ndarray]:
        r"""The criterion and its exact gradient in ``[theta, phi]``.

        On the dense factorization through the dense cross-product and its residual
        plan (:mod:`.dense_gradient`); else (or for rows too many for that plan) by
        :meth:`_whitened_value_and_gradient`."""
        plan = self._gradient_plan()
        if plan is None:
            return self._whitened_value_and_gradient(x)
        self.n_evals += 1
        x = np.asarray(x, dtype=float)
        theta, phi = self.split(x)
        bad = (np.inf, np.zeros(x.size))
        res = plan.vjp(phi)
        if res is None:
            return bad
        A, logdet_v, pullback = res
        # the value comes from this A: a value asked at the same phi next (the
        # convergence check, the solve at the optimum) reads the same numbers
        self._install_gram(A, logdet_v)
        self._loaded = phi.tolist()
        lmm = self.lmm
        f, value = lmm.factor_and_value(lmm.system.factorize, theta, scratch=True)
        if f is None or not math.isfinite(value):
            return bad
        system = lmm.system
        G = system.criterion_weight(f, *lmm.dense_weights(f))
        g_theta = system.weight_gradient(theta, G)
        # dd/dA = T G T' = T (T G)' (G symmetric)
        G_A = system.lambda_rows(theta, system.lambda_rows(theta, G, transpose=False).T,
                                 transpose=False)
        return float(value), np.concatenate([g_theta, pullback(G_A)])

    def _whitened_value_and_gradient(self, x) -> tuple[float, np.ndarray]:
        r"""The criterion and its exact gradient in ``[theta, phi]`` (dense system), by
        whitening the rows.

        With ``K = [Z Lambda, X~, y~]`` of the whitened data and
        ``A = K'K + diag(I_q, 0)``, the criterion is ``log|A_m|`` (``m = q`` for ML,
        ``q + p`` for REML) ``+ log|V| + d log r^2`` (or the known-sigma form) with
        ``r^2`` the Schur complement of ``y~``; so

        .. math:: \frac{\partial d}{\partial A} = [A_m^{-1}] + c\, w w', \qquad
                  w = [-A_{q+p}^{-1} a; 1], \qquad
                  \frac{\partial d}{\partial K} = 2 K \frac{\partial d}{\partial A},

        ``c = d / r^2`` (``1/sigma^2`` when known). The columns of ``Z Lambda`` of a row
        are its level's block of ``Z_k lambda_k``: their derivative gathers back to the
        compact ``Z_k`` (times ``lambda_k'``) and to ``lambda_k`` (``Z_k'`` times it,
        then ``d lambda_k / d theta``); the whitened data's derivative goes back through
        :meth:`~.residual.BoundResidual.whiten_vjp`.
        """
        self.n_evals += 1
        x = np.asarray(x, dtype=float)
        theta, phi = self.split(x)
        bad = (np.inf, np.zeros(x.size))
        res = self.residual.whiten_vjp(phi, self._M)
        if res is None:
            return bad
        Mw, logdet_v, pullback = res
        design, lmm = self.design, self.lmm
        n, p, q = design.nobs, design.p, design.q
        layout = self._dense_layout()
        slices = design.theta_slices()
        lams = []
        K = np.zeros((n, q + p + 1))
        flat = K.reshape(-1)
        for t, sl, zsl, idx in zip(design.terms, slices, self._zslices, layout,
                                   strict=True):
            lam = t.structure.lambda_(theta[sl])
            lams.append(lam)
            flat[idx] = (Mw[:, zsl] @ lam).ravel()
        K[:, q:] = Mw[:, -(p + 1):]
        A = K.T @ K
        A[np.arange(q), np.arange(q)] += 1.0
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return bad
        d = np.diagonal(L)
        r2 = d[-1] ** 2
        m = q + p if self.reml else q
        dof = n - p if self.reml else n
        logdet = 2.0 * float(np.sum(np.log(d[:m])))
        if self.reml:
            logdet += lmm.basis.log_det_R2
        if lmm.sigma is not None:
            s2 = lmm.sigma ** 2
            f = logdet + logdet_v + dof * (_LOG_2PI + np.log(s2)) + r2 / s2
            c = 1.0 / s2
        else:
            if not r2 > 0.0:
                return bad
            f = logdet + logdet_v + dof * (1.0 + _LOG_2PI + np.log(r2 / dof))
            c = dof / r2
        Lqp = L[:q + p, :q + p]
        sol = solve_triangular(Lqp, L[-1, :q + p], trans="T", lower=True,
                               check_finite=False)
        e = K[:, -1] - K[:, :q + p] @ sol                       # K w
        Li = solve_triangular(L[:m, :m], np.eye(m), lower=True, check_finite=False)
        dK = np.zeros_like(K)
        dK[:, :m] = (K[:, :m] @ (2.0 * (Li.T @ Li)))
        dK[:, :q + p] -= 2.0 * c * e[:, None] * sol[None, :]
        dK[:, -1] += 2.0 * c * e
        B = np.empty_like(Mw)
        B[:, -(p + 1):] = dK[:, q:]
        g_theta = np.empty(theta.size)
        dflat = dK.reshape(-1)
        for t, sl, zsl, idx, lam in zip(design.terms, slices, self._zslices, layout, lams,
                                        strict=True):
            D = dflat[idx].reshape(n, t.p)                       # d/d(Z_k lambda_k)
            B[:, zsl] = D @ lam.T
            dlam = Mw[:, zsl].T @ D
            jac = t.structure.lambda_jacobian(theta[sl])         # (n_theta_k, p, p)
            g_theta[sl] = np.einsum("jab,ab->j", jac, dlam)
        return float(f), np.concatenate([g_theta, pullback(B)])

    def solve(self, x) -> LMMSolution:
        """The LMM's solution at ``x`` (beta, b, sigma on the original scale)."""
        theta, phi = self.split(x)
        if not self.load(phi):
            raise not_positive_definite(self.residual, phi)
        return self.lmm.solve(theta)

    def cond_var(self, sol: LMMSolution, phi: np.ndarray) -> list:
        """Conditional covariance blocks of the random effects at ``phi``."""
        self.load(phi)
        return self.lmm.cond_var(sol)

    def full_deviance(self, theta, phi, sigma: float) -> float:
        """-2 (restricted) log-likelihood at an explicit ``sigma`` (not profiled): the
        function whose Hessian gives nlme's approximate covariance of the variance
        parameters."""
        if not self.load(phi):
            return np.inf
        f = self.lmm.system.factorize(np.asarray(theta, dtype=float), scratch=True)
        return np.inf if f is None else self.lmm.criterion_at_sigma(f, sigma)


def gls_deviance(logdet_x: float, logdet_v: float, r2: float, dof: int,
                 sigma: float | None) -> float:
    r"""-2 (restricted) log-likelihood of a whitened linear model.

    .. math:: d = \log|X'V^{-1}X|_{REML} + \log|V| + \nu\,[1 + \log(2\pi r^2 / \nu)]

    with ``nu = n - p`` (REML) or ``n`` (ML) and sigma profiled out; with a known sigma,
    ``... + nu log(2 pi sigma^2) + r^2 / sigma^2``.

    Parameters
    ----------
    logdet_x : float
        ``log|X' V^{-1} X|`` for REML, 0 for ML.
    logdet_v : float
        ``log|V|``.
    r2 : float
        Weighted residual sum of squares.
    dof : int
        ``nu``.
    sigma : float or None
        A known residual standard deviation.

    Returns
    -------
    float
    """
    if sigma is not None:
        s2 = sigma * sigma
        return logdet_x + logdet_v + dof * (_LOG_2PI + math.log(s2)) + r2 / s2
    return logdet_x + logdet_v + dof * (1.0 + _LOG_2PI + math.log(r2 / dof))


class GLSSolution:
    """Estimates of a whitened linear model at ``phi``.

    Attributes
    ----------
    objective, beta, sigma, pwrss, logdet_X, logdet_V
    RX_inv : ndarray (p, p)
        ``vcov(beta) = sigma^2 RX_inv RX_inv'``.
    """

    def __init__(self, objective, beta, sigma, pwrss, logdet_X, logdet_V, RX_inv):
        self.objective = float(objective)
        self.beta = beta
        self.sigma = float(sigma)
        self.pwrss = float(pwrss)
        self.logdet_X = float(logdet_X)
        self.logdet_V = float(logdet_V)
        self.RX_inv = RX_inv


class GLSObjective:
    r"""``phi -> criterion`` of a linear model with a residual model (nlme's ``gls``).

    The criterion is read off the Cholesky factor ``L`` of ``A = M' V^{-1} M`` (and
    ``log|V|``), ``M = [X~ y~]`` the fixed-effects basis and residualized response of
    :class:`~mixedmodels.linalg.basis.FixedBasis`: with ``L = [[L_X, 0], [l', r]]``,
    ``r^2`` is the weighted residual sum of squares and ``log|X'V^{-1}X| = log|L_X|^2 +
    log|R|^2``. ``A`` comes from :func:`~.gram.gram_plan` (per-row outer products where
    ``V^{-1}`` is banded, else by whitening). The basis keeps ``A`` well conditioned: a
    response or predictor far from zero (``y + 1e5``) would otherwise lose the residual
    sum of squares to cancellation in ``y'V^{-1}y``.

    Parameters
    ----------
    X : ndarray (n, p)
    y : ndarray (n,)
        Response minus offset.
    residual : BoundResidual
    reml : bool
    qr : ndarray, optional
        ``X``'s QR factorization from the design's rank check
        (:func:`~mixedmodels.design.fixed.take_rank_factor`), for the basis.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, residual: BoundResidual,
                 reml: bool = True, qr: np.ndarray | None = None):
        self.residual = residual
        self.reml = bool(reml)
        self.n, self.p = X.shape
        w = None if residual.log_w is None else np.exp(residual.log_w)
        self.basis = FixedBasis.of(np.asarray(X, dtype=float), w, qr)
        y_res, self._coef0 = self.basis.residualize(np.asarray(y, dtype=float), w)
        self._M = M = np.empty((self.n, self.p + 1))       # [X~ y~], C order
        M[:, :self.p] = self.basis.X
        M[:, self.p] = y_res
        self._gram = gram_plan(residual, self._M)
        self.sigma = residual.spec.sigma
        # (np.full's own steps: its wrapper costs more than filling a few numbers)
        self.lower = lower = np.empty(residual.n_par)
        lower.fill(-np.inf)
        self.x0 = residual.start
        self.n_evals = 0
        self._dof = self.n - self.p if self.reml else self.n
        #: The fit starts from a previous fit's optimum (a ``fitted(.)`` iteration):
        #: quasi-Newton then starts from the curvature (a finite-difference Hessian, or
        #: a small probe in one dimension), whose first step lands close to the optimum,
        #: rather than from a gradient step of fixed length that overshoots and
        #: backtracks (:mod:`~mixedmodels.fitting.gls_quasi_newton`).
        self.warm = False
        #: ``(phi as bytes, (L, log|V|))`` of the last evaluation: :meth:`solve` at the
        #: optimum (usually the last point evaluated) reuses its factor
        self._last: tuple[bytes, tuple[np.ndarray, float]] | None = None
        #: ``(phi as bytes, value, gradient)`` of the last :meth:`value_and_gradient`:
        #: the convergence check after Fisher scoring starts at the point where the
        #: search ended, whose value and gradient the search has just computed
        self._last_gradient: tuple[bytes, float, np.ndarray] | None = None
        #: whether :meth:`scoring_information` applies (the residual model decides;
        #: fixed per binding), once asked
        self._scoring: bool | None = None

    def with_residual(self, residual: BoundResidual) -> GLSObjective:
        """This criterion with the residual model ``residual`` bound to the same rows (a
        ``fitted(.)`` covariate updated): the basis, the residualized response and the
        row data of the cross-products are reused."""
        new = object.__new__(GLSObjective)
        new.__dict__.update(self.__dict__)
        new.residual = residual
        new.x0 = residual.start
        new.n_evals = 0
        new._last = None
        new._last_gradient = None
        new._scoring = None
        reuse = getattr(self._gram, "with_residual", None)
        new._gram = reuse(residual) if reuse is not None else gram_plan(residual, self._M)
        return new

    def scoring_information(self, phi) -> np.ndarray | None:
        r"""The expected information of the criterion (``-2 log L``) in the variance
        parameters at ``phi``, for Fisher scoring (:mod:`~mixedmodels.fitting.gls_scoring`);
        None where the model is not one whose information has this form (a correlation,
        a known sigma, no variance parameters or no Jacobian of the log standard
        deviations).

        Independent rows with ``sd_j = sigma g_j(u)``: each ``s_j = log sd_j`` carries the
        information 2 of ``N(0, e^{2 s_j})``, and ``sigma`` profiled out removes the
        columns' means, so with ``J_{ja} = d log g_j / d u_a``

        .. math:: \mathcal{I}(u) = 4 \sum_j (J_j - \bar J)(J_j - \bar J)'

        for ``-2 log L`` (``beta``'s share, ``p`` of the ``n`` degrees of freedom, and
        REML's correction are left out: a preconditioner needs only the shape).
        """
        res = self.residual
        if self._scoring is None:
            self._scoring = not (res.correlation is not None or res.n_var == 0
                                 or res.n_var != res.n_par or self.sigma is not None
                                 or not res.variance.has_jacobian)
            self._ones = np.ones(self.n)
        if not self._scoring:
            return None
        # no correlation and only variance parameters: phi is the variance function's u
        J = res.variance.log_sd_jacobian(np.asarray(phi, dtype=float))
        # sum_j (J_j - J_bar)(J_j - J_bar)' = J'J - m m' / n with the column sums m as a
        # product (numpy's axis-0 sum of a 2-column C-ordered array costs 3x J'J)
        m = self._ones @ J
        return 4.0 * (J.T @ J - np.outer(m, m) / J.shape[0])

    @property
    def cheap_gradient(self) -> bool:
        """The gradient costs about one value (banded ``V^{-1}``: :class:`~.gram.BandedGram`)
        -- the convergence check then uses it instead of finite differences."""
        return self.has_gradient and isinstance(self._gram, BandedGram)

    @property
    def fast_gradient(self) -> bool:
        """The gradient costs a few values at most: :attr:`cheap_gradient`, or pattern
        or group factors differentiated without whitening
        (:attr:`~.gram.PatternGram.analytic_gradient`,
        :class:`~.group_gram.GroupGram`) -- ``gls`` is then fitted by quasi-Newton
        (:mod:`~mixedmodels.fitting.gls_quasi_newton`)."""
        return self.cheap_gradient or (self.has_gradient
                                       and getattr(self._gram, "analytic_gradient", False))

    def _factor(self, phi):
        """``(L, log|V|)`` or None (the last evaluation's when ``phi`` is its point)."""
        phi = np.asarray(phi, dtype=float)
        key = phi.tobytes()
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        res = self._gram.value(phi)
        if res is None:
            return None
        A, logdet = res
        L = _chol(A, self.p)
        if L is None:
            return None
        self._last = (key, (L, logdet))
        return L, logdet

    def _criterion(self, L, logdet, sigma=None) -> float:
        p = self.p
        d = L.diagonal().tolist()            # k numbers: Python floats beat array calls
        r2 = d[p] * d[p]
        dof = self._dof
        extra = 2.0 * sum(map(math.log, d[:p])) + self.basis.log_det_R2 if self.reml \
            else 0.0
        return gls_deviance(extra, logdet, r2, dof, self.sigma if sigma is None else sigma)

    def __call__(self, phi) -> float:
        self.n_evals += 1
        f = self._factor(phi)
        if f is None:
            return np.inf
        return self._criterion(*f)

    @property
    def has_gradient(self) -> bool:
        """:meth:`value_and_gradient` is available (see
        :attr:`~.residual.BoundResidual.has_gradient`)."""
        return self.residual.has_gradient

    def value_and_gradient(self, phi) -> tuple[float, np.ndarray]:
        r"""The criterion and its exact gradient in ``phi``.

        The criterion depends on the data through ``A = M' V^{-1} M`` (and adds
        ``log|V|``): with ``v = [-\hat\gamma; 1]`` (``\hat\gamma`` the coefficients on
        ``X~``) and ``r^2 = v' A v``,

        .. math:: G = \frac{\partial d}{\partial A} = [A_{XX}^{-1}]_{REML}
                  + c\, v v', \qquad c = \frac{n - p}{r^2}
                  \;(\tfrac{n}{r^2} \text{ for ML}, \; 1/\sigma^2 \text{ known}),

        which :func:`~.gram.gram_plan`'s pullback takes to ``df / d phi``. Infinite value
        and zero gradient where the criterion is.
        """
        self.n_evals += 1
        phi = np.asarray(phi, dtype=float)
        key = phi.tobytes()
        last = self._last_gradient
        if last is not None and last[0] == key:
            return last[1], last[2].copy()
        bad = (np.inf, np.zeros(phi.size))
        res = self._gram.vjp(phi)
        if res is None:
            return bad
        A, logdet, pullback = res
        L = _chol(A, self.p)
        if L is None:
            return bad
        self._last = (key, (L, logdet))
        p = self.p
        # one triangular inverse (LAPACK directly: scipy's wrappers cost half a small
        # evaluation in checks) holds both terms: its first p rows are [L_X^{-1}, 0] and
        # its last row is v' / r, so G = Li' diag(1, .., 1, c r^2) Li (REML; the first p
        # weights 0 for ML)
        Li, _ = dtrtri(L, lower=1)
        r2 = L[p, p] ** 2
        c = 1.0 / self.sigma ** 2 if self.sigma is not None else self._dof / r2
        weight = np.empty(p + 1)            # (np.full's own steps, without its wrapper)
        weight.fill(1.0 if self.reml else 0.0)
        weight[p] = c * r2
        G = (Li.T * weight) @ Li
        f, g = self._criterion(L, logdet), pullback(G)
        self._last_gradient = (key, f, g)
        return f, g.copy()

    def full_deviance(self, phi, sigma: float) -> float:
        """-2 (restricted) log-likelihood at an explicit ``sigma``."""
        f = self._factor(phi)
        return np.inf if f is None else self._criterion(*f, sigma=sigma)

    def solve(self, phi) -> GLSSolution:
        """Estimates at ``phi``."""
        f = self._factor(phi)
        if f is None:
            raise not_positive_definite(self.residual, phi)
        L, logdet = f
        p = self.p
        # L_X^{-1} once (LAPACK directly): gamma = L_X^{-T} l and RX_inv = L_X^{-T}
        Li, _ = dtrtri(np.ascontiguousarray(L[:p, :p]), lower=1)
        gamma = Li.T @ L[p, :p]
        r2 = L[p, p] ** 2
        sigma = self.sigma if self.sigma is not None else math.sqrt(r2 / self._dof)
        basis = self.basis
        # (Python floats: p logs cost less than numpy's calls on a p-vector)
        logdet_X = 2.0 * sum(map(math.log, L.diagonal()[:p].tolist())) + basis.log_det_R2
        return GLSSolution(self._criterion(L, logdet), basis.to_user(gamma + self._coef0),
                           sigma, r2, logdet_X, logdet, basis.rx_inv_to_user(Li.T))


def not_positive_definite(residual: BoundResidual, phi) -> DataError:
    """The error for a residual model that gives no positive definite covariance at
    ``phi`` (only reachable from fixed or user values: the optimizer treats such points
    as infinite), naming the structures and their values."""
    parts = []
    for spec, values in ((getattr(residual.correlation, "spec", None),
                          residual.cor_params(phi)),
                         (getattr(residual.variance, "spec", None),
                          residual.var_params(phi))):
        if spec is not None:
            shown = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
            held = " (fixed)" if spec.fixed else ""
            parts.append(f"{spec.describe()} at {shown}{held}")
    what = "; ".join(parts) or "the residual model"
    return DataError(
        f"{what}: the residual covariance of some group is not positive definite (or the "
        "whitened model matrix is degenerate). A Gaussian or rational-quadratic "
        "correlation of 'manhattan' or 'maximum' distances need not be positive definite "
        "at every range; choose other values, a nugget, or metric='euclidean'")


def _chol(A: np.ndarray, p: int) -> np.ndarray | None:
    """Lower Cholesky factor of the ``(p + 1)``-square ``A``, or None where ``A`` is not
    positive definite (a perfect fit or a degenerate whitening) or not finite."""
    L, info = dpotrf(A, lower=1, clean=1, overwrite_a=0)
    # NaN passes dpotrf unnoticed but reaches the last pivot
    if info != 0 or not math.isfinite(L[p, p]):
        return None
    return L
