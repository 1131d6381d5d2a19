r"""Exact gradient of glmer's Laplace deviance in ``(theta, beta)``.

glmer's Laplace deviance (:mod:`.glmm`, nAGQ = 1) is

.. math::

    F(\theta, \beta) = \frac{PD(\hat u)}{\phi} + \sum_i s_i(\phi) + \log|M|, \qquad
    M = I + \Lambda' Z' W_L Z \Lambda,

with ``PD(u) = sum_i d_i(eta_i) + ||u||^2``, ``eta = X beta + Z Lambda u + offset``, the
conditional mode ``u^`` of ``PD`` (PIRLS) and the Laplace weights ``W_L`` at the mode --
lme4's Fisher weights ``w mu'^2 / V`` for the binomial, Poisson and negative binomial,
the observed information of ``d_i / 2`` for families with a dispersion (identical for
canonical links). ``phi`` is 1, or profiled (``phi^`` minimizes ``PD / phi + sum s_i``).

Write ``g_i = d(d_i/2)/d eta_i``, ``w_i = d^2(d_i/2)/d eta_i^2`` (the observed weights:
``H = I + Lambda' Z' diag(w) Z Lambda`` is the Hessian of ``PD / 2`` in ``u``) and
``w'_{L,i} = d W_{L,i} / d eta_i``. The mode solves ``u + Lambda' Z' g = 0``, so by the
implicit function theorem ``du^/dx = -H^{-1} d(Lambda' Z' g)/dx`` at fixed ``u``. Then:

* ``PD / phi``: by the envelope theorem (in ``u`` and in a profiled ``phi``) its
  derivative is ``(2 / phi) g' d eta / dx`` at fixed ``u``.
* ``log|M|``: ``d log|M| = tr(M^{-1} dM)``. With the leverages
  ``s_i = [Z Lambda M^{-1} Lambda' Z']_{ii}``, ``r_i = w'_{L,i} s_i`` (the third-derivative
  term: the weights move with the mode) and ``z = H^{-1} Lambda' Z' r``,

  .. math::

      \frac{\partial \log|M|}{\partial\beta} = X' (r - w \circ Z\Lambda z), \qquad
      \frac{\partial \log|M|}{\partial\theta_j} =
          2\,\mathrm{tr}(M^{-1}\Lambda' Z' W_L Z \Lambda_j)
          + (r - w \circ Z\Lambda z)' Z \Lambda_j u^ - g' Z \Lambda_j z,

  ``Lambda_j = d Lambda / d theta_j`` (the covariance contract's ``lambda_jacobian``).

Per random-effects term ``t`` every ``theta_j`` derivative is ``<Lambda_j, Z_t' V_t>`` with
``V_t = (2 g / phi + r - w Z Lambda z) u_t - g z_t + 2 W_L [B a]_t`` (``u_t``, ``z_t`` the
term's columns gathered at each observation's level, ``B_i = M^{-1}`` on observation
``i``'s slots and ``a_i = (Z Lambda)_i``). The inverse on the slots and the leverages come
from the general Laplace engine's kernels (:mod:`.laplace.hessian`, which factor
``I + sum_i A_i' W_i A_i`` for any weights), as does the solve with ``H``.

Derivatives of ``d_i / 2`` in ``eta`` follow from those in ``mu``,
``D_1 = -w (y - mu)/V``, ``D_2 = w [1/V + (y - mu) V'/V^2]``,
``D_3 = w [-2V'/V^2 + (y - mu)(V'' V - 2V'^2)/V^3]``, and the inverse link's derivatives
``m_1, m_2, m_3``: ``g = D_1 m_1``, ``w = D_2 m_1^2 + D_1 m_2``,
``w' = D_3 m_1^3 + 3 D_2 m_1 m_2 + D_1 m_3``; the Fisher weight's derivative is
``w (2 m_1 m_2 / V - m_1^3 V' / V^2)``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..families import Family
from .laplace.hessian import _one_block, make_hessian
from .laplace.random_structure import RandomStructure
from .laplace.sensitivity import solve_columns
from .pirls import PIRLS, PIRLSError

#: Relative step of the central differences in the negative binomial shape at fixed eta.
SHAPE_FD_REL = 1e-4
#: Evaluations remembered per gradient: the differences for the theta scaling and for the
#: standard errors start at the optimizer's best point, evaluated moments before, and a
#: line search's last trials are not always that point.
MEMO_SIZE = 8

_dpotrf, _dpotrs, _dgesv = lapack.dpotrf, lapack.dpotrs, lapack.dgesv

#: Largest ``levels x n`` for which :func:`level_map` is a dense array.
DENSE_LEVEL_MAP_MAX = 20_000


def level_map(codes: np.ndarray, nlevels: int):
    """The (levels x n) 0/1 map of observations to their level (``codes``): level sums of
    several columns in one product; a dense array for small models (where scipy's
    sparse product costs more than the multiplications), else CSR."""
    n = codes.shape[0]
    if nlevels * n <= DENSE_LEVEL_MAP_MAX:
        # (directly: scipy's constructor and conversion cost ~40 us, the whole model's
        # gradient set-up)
        m = np.zeros((nlevels, n))
        m[codes, np.arange(n)] = 1.0
        return m
    return sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(nlevels, n))

__all__ = ["DENSE_LEVEL_MAP_MAX", "LaplaceGradient", "Stage0Gradient", "gradient_supported",
           "level_map", "row_derivatives", "stage0_supported"]


def _random_structure(obj) -> RandomStructure:
    """The :class:`RandomStructure` of the objective's terms (one channel), made once per
    objective and shared by its gradients (the stage-0 and the Laplace one; it holds
    only what the design determines)."""
    cached = getattr(obj, "_gradient_structure", None)
    if cached is not None and cached[0] is obj.design:
        return cached[1]
    structure = RandomStructure([("cond", SimpleNamespace(terms=obj.design.terms))])
    obj._gradient_structure = (obj.design, structure)
    return structure


def _dense_system(obj, structure: RandomStructure):
    """PIRLS's :class:`~.pirls_dense.DensePIRLSSystem` when the gradient may use it: the
    in-memory PIRLS of a small model, one random-effects channel and no integrated
    fixed effects (the general engine's REML columns); else None."""
    from .pirls import PIRLS

    pirls = getattr(obj, "pirls", None)
    if type(pirls) is not PIRLS or pirls.dense is None:
        return None
    if structure.n_channels != 1 or structure.X_int is not None:
        return None
    return pirls.dense


def _scalar_term(obj, structure: RandomStructure):
    """``(codes, z column)`` of the one scalar term when the gradient may treat ``M`` as
    diagonal (:meth:`LaplaceGradient._scalar_pieces`): rows in memory (PIRLS's own
    workspace), one random-effects channel, no integrated fixed effects; else None."""
    from .pirls import PIRLS

    terms = obj.design.terms
    if type(getattr(obj, "pirls", None)) is not PIRLS or len(terms) != 1 or \
            terms[0].p != 1 or structure.n_channels != 1 or structure.X_int is not None:
        return None
    return terms[0].grouping.codes, np.asarray(terms[0].Z[:, 0], dtype=float)


def gradient_supported(obj) -> bool:
    """Whether :class:`LaplaceGradient` applies to a :class:`~.glmm.GLMMObjective`: the
    Laplace approximation (nAGQ = 1; ``x = [theta, beta]`` and glmer_nb's log shape), a
    family with ``variance_deriv2``, and terms whose structures give ``lambda_jacobian``
    and a covariance for every parameter vector (all but Toeplitz: ``us``, ``diag``, AR(1),
    compound symmetry, the spatial and the known-matrix structures)."""
    from .glmm import GLMMObjective

    # a subclass (bglmer's penalized objective) adds terms this gradient does not know
    if type(obj) is not GLMMObjective:
        return False
    if obj.nAGQ != 1 or obj.phi_block:
        return False
    return _derivatives_available(obj)


def stage0_supported(obj) -> bool:
    """Whether :class:`Stage0Gradient` applies: glmer's own objective (not a penalized
    subclass, whose prior also enters PIRLS), no estimated negative binomial shape, at
    least one covariance parameter, a family with ``variance_deriv2`` and structures as
    for :func:`gradient_supported`."""
    from .glmm import GLMMObjective

    if type(obj) is not GLMMObjective or obj.estimate_shape or not obj.n_theta:
        return False
    return _derivatives_available(obj)


def _derivatives_available(obj) -> bool:
    if not all(t.structure.defined_everywhere for t in obj.design.terms):
        # a Toeplitz correlation can fail to be one: the derivative-free fit with its
        # restarts copes with the infinite deviances there, and BFGS's line searches stall
        # (homtoep's Poisson fixture stopped 1.2 above the optimum BOBYQA reaches)
        return False
    try:
        obj.family.variance_deriv2(np.ones(1) * 0.5)
        for t, sl in zip(obj.design.terms, obj.design.theta_slices(), strict=True):
            t.structure.lambda_jacobian(obj.design.theta0()[sl])
    except NotImplementedError:
        return False
    return True


def row_derivatives(fam: Family, kind: str, y: np.ndarray, prior: np.ndarray,
                    eta: np.ndarray, mu: np.ndarray):
    """Per observation ``(g, w, W_L, dW_L/deta, same)`` (module docstring): the first
    and second derivatives of ``d_i / 2`` in ``eta``, the Laplace weights of ``kind``
    (``"expected"`` or ``"observed"``) and their derivative; ``same``: ``W_L`` is ``w``
    (the observed information, or any kind under a canonical link)."""
    if getattr(fam, "canonical_is_natural", False) and fam.link.name == fam.canonical_link:
        # eta the natural parameter (d mu/d eta = V): the formulas below reduce to
        # g = -w (y - mu), W = w mu' and dW/d eta = w mu'' -- three products instead of
        # thirty-odd array operations (a third of cbpp's gradient)
        m1, m2 = fam.link.slope_and_curvature(eta)
        w = prior * m1
        return -prior * (y - mu), w, w, prior * m2, True
    _, m1, m2, m3 = fam.link.inverse_derivatives(eta, 3)
    V = fam.variance(mu)
    V1, V2 = fam.variance_deriv(mu), fam.variance_deriv2(mu)
    res = y - mu
    D1 = -prior * res / V
    D2 = prior * (1.0 / V + res * V1 / (V * V))
    D3 = prior * (-2.0 * V1 / (V * V) + res * (V2 * V - 2.0 * V1 * V1) / V ** 3)
    g = D1 * m1
    w = D2 * m1 * m1 + D1 * m2
    if fam.link.name == fam.canonical_link or kind == "observed":
        # the observed weights (exactly the Fisher weights for a canonical link)
        return g, w, w, D3 * m1 ** 3 + 3.0 * D2 * m1 * m2 + D1 * m3, True
    wf = prior * m1 * m1 / V
    dwf = prior * (2.0 * m1 * m2 / V - m1 ** 3 * V1 / (V * V))
    return g, w, wf, dwf, False


class LaplaceGradient:
    """``x -> (F(x), dF/dx)`` for a :class:`~.glmm.GLMMObjective` (module docstring).

    Parameters
    ----------
    obj : GLMMObjective
        nAGQ = 1, ``x = [theta, beta]`` or ``[theta, beta, log k]`` (glmer_nb; see
        :func:`gradient_supported` and :meth:`_shape_derivative`).

    Notes
    -----
    Every call is one PIRLS solve (the objective's, counted in ``obj.n_evals``), one
    factorization of ``M`` with its selected inverse and one solve with ``H`` (a second
    factorization only when the Laplace weights are not the observed ones: lme4's Fisher
    weights for non-canonical links).
    """

    #: ``(point, PIRLS tolerance, family, PIRLSResult)`` of the last successful
    #: evaluation: the fit's solution at a stage's optimum is this one when the search
    #: evaluated the optimum last (:meth:`last_solve_at`)
    last_solve: tuple | None = None

    def last_solve_at(self, point: np.ndarray, family: Family,
                      tol: float | None = None):
        """The last evaluation's PIRLS result when it was at exactly ``point`` (``x``;
        theta for :class:`Stage0Gradient`) with ``family`` and PIRLS's own tolerance (as
        :meth:`~.glmm.GLMMObjective.solve` and ``solve0`` solve) or, when ``tol`` is
        given, a tolerance at most ``tol``; else None."""
        last = self.last_solve
        if last is None or last[2] is not family or not np.array_equal(last[0], point):
            return None
        if last[1] is not None and (tol is None or not last[1] <= tol):
            return None
        return last[3]

    def __init__(self, obj):
        self.obj = obj
        design = obj.design
        self.design = design
        self.structure = _random_structure(obj)
        self._M_kernel = None          # the kernel of M, built on first use (_M)
        self._H = None
        self.slices = design.theta_slices()
        self._jac: dict[int, np.ndarray] = {}
        self.n_grads = 0
        self._scatter_matrix: sp.csr_matrix | None = None
        self._memo: dict[bytes, tuple] = {}
        #: PIRLS's dense system of small models (rows in memory), whose ``Z`` the
        #: gradient's dense path (:meth:`_dense_pieces`) reuses; None: the kernels
        self._dense = _dense_system(obj, self.structure)
        self._dense_a = None if self._dense is None else np.empty(self._dense.Z.shape)
        #: ``(codes, z column)`` of a model with one scalar term and rows in memory
        #: (:meth:`_scalar_pieces`: ``M`` is diagonal), else None
        self._scalar = _scalar_term(obj, self.structure)
        self._levels = None             # its level map (level_map), made on first use

    @property
    def _M(self):
        """The Laplace engine's kernel for ``M`` (:func:`~.laplace.hessian.make_hessian`),
        made when first needed: the dense path of small models (:meth:`_dense_pieces`)
        never uses it."""
        if self._M_kernel is None:
            self._M_kernel = make_hessian(self.structure)
        return self._M_kernel

    # -- per-observation derivatives ---------------------------------------------------
    def _derivatives(self, fam: Family, eta: np.ndarray, mu: np.ndarray):
        """``(g, w, W_L, dW_L/deta, same)`` at the modes; ``same``: ``W_L`` is ``w``."""
        kind = fam.laplace_hessian if self.obj.hessian is None else self.obj.hessian
        return row_derivatives(fam, kind, self.design.y, self.obj.pirls.prior, eta, mu)

    def _factor(self, kernel, a: np.ndarray, weights: np.ndarray) -> None:
        r"""Factor ``M = I + sum_i w_i a_i' a_i`` (or ``H``, with the weights ``w``).

        With one block (one level of one term and one channel: a spatial process over
        all sites, a known matrix over all levels) the sum is the matrix product
        :math:`a^\top \operatorname{diag}(w)\, a` (``n P^2`` flops by BLAS), the Laplace
        engine's own path (:func:`~.laplace.hessian.factor_at`), instead of the ``n x P
        x P`` per-observation products summed by ``bincount`` (gau_pois, ``P = 70``:
        ~65% of glmer's gradient); the same matrix to rounding."""
        if _one_block(kernel, self.structure):
            ok = kernel._factor_blocks(((a.T * weights) @ a)[None])
        else:
            ok = kernel.factor(self.structure.slot_products(a, weights[:, None, None]))
        if not ok:
            raise PIRLSError("the Laplace Hessian is not positive definite at the "
                             "conditional modes")

    # -- value and gradient ------------------------------------------------------------
    def __call__(self, x) -> tuple[float, np.ndarray]:
        """``(F(x), dF/dx)``; ``(inf, nan)`` where the modes cannot be found. A point
        evaluated among the last :data:`MEMO_SIZE` (same bits, same family and PIRLS
        tolerance) is answered from memory."""
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        hit = self._memo.get(key)
        obj = self.obj
        if hit is not None and hit[0] is obj.family and hit[1] == obj.stage0_tol:
            return hit[2], hit[3].copy()
        value, grad = self._evaluate(x)
        if np.isfinite(value):
            if len(self._memo) >= MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = (obj.family, obj.stage0_tol, value, grad.copy())
        return value, grad

    def _evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        obj = self.obj
        obj.n_evals += 1
        self.n_grads += 1
        theta, beta, _, fam = obj.split(x)
        obj._use_family(fam)
        self.last_solve = None
        try:
            pr = obj.pirls.fit(theta, beta)
            value, grad = self._at_modes(x, pr, fam)
            self.last_solve = (x.copy(), None, fam, pr)
        except (PIRLSError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf, np.full(x.shape, np.nan)
        if not np.isfinite(grad).all():
            return np.inf, np.full(x.shape, np.nan)
        return float(value), grad

    @property
    def predicts_modes(self) -> bool:
        """Whether :meth:`gradient_at_predicted` applies to this objective (its
        docstring: this class, the in-memory PIRLS predicting every theta, no
        dispersion)."""
        obj = self.obj
        pirls = obj.pirls
        return type(self) is LaplaceGradient and type(pirls) is PIRLS and \
            not obj.family.has_dispersion and pirls.predicts_every_theta

    def gradient_at_predicted(self, x: np.ndarray, ref) -> np.ndarray | None:
        r"""``dF/dx`` at ``x`` with the modes predicted from the reference ``ref`` of a
        nearby solution, ``u~ = u* + (du/dx)(x - x*)``
        (:meth:`~.pirls.PIRLS.reference_of`), instead of PIRLS's modes: no PIRLS solve,
        one pass over the rows; None where this shortcut does not apply (then solve).

        The prediction is off by ``e = O(|x - x*|^2)`` (the modes' curvature) and the
        gradient formula, exact at the modes, by ``O(e)``: at a forward difference's step
        ``h`` of the standard errors' Hessian that adds ``O(h)`` to the difference, the
        same order as its truncation error (cbpp at ``h`` = 3e-5 in ``x``: the standard
        errors 5.93e-6 from converged central differences against 5.76e-6 with the
        solved modes). The predicted modes are an affine function of ``x``, so the
        differences carry no PIRLS convergence noise.

        Only for this class (not the quadrature gradient, whose value needs the factor at
        the modes) with the in-memory PIRLS, for families without a dispersion (phi = 1:
        a profiled ``phi`` needs the penalized deviance at the true modes), when the
        predicted move of the linear predictor is small (PIRLS's own test for using a
        prediction) and the rows are valid there."""
        obj = self.obj
        if not self.predicts_modes or ref is None:
            return None
        theta, beta, _, fam = obj.split(x)
        obj._use_family(fam)
        rows = obj.pirls.predicted_rows(theta, beta, ref)
        if rows is None:
            return None
        obj.n_evals += 1
        self.n_grads += 1
        u, eta, mu = rows
        pr = SimpleNamespace(theta=theta, beta=beta, u=u, eta=eta, mu=mu)
        try:
            with np.errstate(all="raise", under="ignore"):
                grad = self._gradient(x, pr, fam, 1.0)
        except (PIRLSError, np.linalg.LinAlgError, FloatingPointError):
            return None
        return grad if np.isfinite(grad).all() else None

    def _at_modes(self, x: np.ndarray, pr, fam: Family) -> tuple[float, np.ndarray]:
        """``(F, dF/dx)`` at the PIRLS modes ``pr`` of ``x`` (a FloatingPointError where
        the deviance is not finite)."""
        value, phi, _ = self.obj._value(pr, fam, None, 1)
        if not np.isfinite(value):
            raise FloatingPointError
        # (underflow is no failure: the Matern smoothness derivative's integrand
        # underflows to zero in its tail)
        with np.errstate(all="raise", under="ignore"):
            return value, self._gradient(x, pr, fam, phi)

    def _shape_derivative(self, fam: Family, pr, d_eta: np.ndarray, lev: np.ndarray
                          ) -> float:
        r"""``dF / d log k`` for glmer_nb's estimated shape ``k``.

        The shape enters ``F`` at fixed ``eta`` through ``d_i + s_i`` (envelope theorem in
        ``u``), through the Laplace weights, and through the mode (``g`` depends on ``k``
        via ``V``): ``dF/dk = sum_i [d(d_i + s_i)/dk + s_i^{lev} dW_{L,i}/dk
        - (Z Lambda z)_i dg_i/dk]`` with the leverages and ``Z Lambda z`` of
        :meth:`_gradient`. The elementwise ``k``-derivatives at fixed ``eta`` are central
        differences of the family's own functions (:data:`SHAPE_FD_REL`): smooth closed
        forms, accurate to ~1e-10 relative, with no PIRLS solve.
        """
        y, prior = self.design.y, self.obj.pirls.prior
        k = float(fam.theta)
        h = SHAPE_FD_REL * k
        kind = fam.laplace_hessian if self.obj.hessian is None else self.obj.hessian
        m1 = fam.link.inverse_derivatives(pr.eta, 1)[1]
        parts = []
        for kk in (k + h, k - h):
            f = fam.with_theta(kk)
            dev = f.dev_resids(y, pr.mu, prior) + f.saturated(y, prior, 1.0)
            g = -prior * (y - pr.mu) * m1 / f.variance(pr.mu)
            parts.append((dev, g, f.laplace_weights(y, pr.eta, pr.mu, prior, kind)))
        (dev_p, g_p, w_p), (dev_m, g_m, w_m) = parts
        dF = (np.sum(dev_p - dev_m) + lev @ (w_p - w_m)
              - d_eta @ (g_p - g_m)) / (2.0 * h)
        return k * float(dF)

    def _gradient(self, x, pr, fam: Family, phi: float, joint: bool = False) -> np.ndarray:
        """``dF/dx`` at the modes ``pr`` (module docstring); ``joint``: beta is PIRLS's
        joint estimate too (the nAGQ = 0 criterion), so ``z`` solves the joint system and
        only the theta entries are filled."""
        S = self.structure
        design = self.design
        theta = pr.theta
        g, w, wl, dwl, same = self._derivatives(fam, pr.eta, pr.mu)
        lams = S.lambdas(theta)
        if self._scalar is not None:
            Ba, lev, r, z, d_eta = self._scalar_pieces(lams, w, wl, dwl, same, joint)
        elif self._dense is not None:
            Ba, lev, r, z, d_eta = self._dense_pieces(lams, w, wl, dwl, same, joint)
        else:
            Ba, lev, r, z, d_eta = self._blocked_pieces(lams, w, wl, dwl, same, joint)
        # coefficient of d eta (no division by phi = 1: the same numbers)
        gamma = (2.0 * g if phi == 1.0 else 2.0 * g / phi) + r - w * d_eta
        grad = np.zeros(x.size)
        if not joint:
            grad[self.obj.layout.slice("beta.cond")] = design.X.T @ gamma
            if self.obj.estimate_shape:
                grad[self.obj.layout.slice("family.nb_shape")] = \
                    self._shape_derivative(fam, pr, d_eta, lev)
        u = pr.u
        if self._scalar is not None:
            self._scalar_theta(grad, theta, u, z, gamma, g, wl, Ba)
            return grad
        for ts, sl in zip(S.terms, self.slices, strict=True):
            t = ts.term
            if not t.structure.n_theta:
                continue                  # a known covariance (equalto): no parameter
            codes = t.grouping.codes
            ut = u[ts.u_offset:ts.u_offset + t.q].reshape(t.nlevels, t.p)[codes]
            zt = z[ts.u_offset:ts.u_offset + t.q].reshape(t.nlevels, t.p)[codes]
            V = gamma[:, None] * ut - g[:, None] * zt + 2.0 * wl[:, None] * Ba[:, ts.slots]
            K = t.Z.T @ V                                         # (p, p): [row, column]
            grad[sl] = self._jacobian(ts.u_offset, t.structure, theta[sl]) @ K.ravel()
        return grad

    def _scalar_theta(self, grad: np.ndarray, theta: np.ndarray, u: np.ndarray,
                      z: np.ndarray, gamma: np.ndarray, g: np.ndarray, wl: np.ndarray,
                      Ba: np.ndarray) -> None:
        r"""The theta entry of :meth:`_gradient` for the one scalar term of
        :meth:`_scalar_pieces` (written into ``grad``): with ``p = 1`` the term's ``K`` is
        the scalar ``sum_i z_i V_i``, ``V_i = gamma_i u_{j(i)} - g_i z_{j(i)} + 2 W_{L,i}
        [B a]_i``, formed on 1-d rows (the general loop's ``(n, 1)`` columns, reshapes
        and slot gathers cost more than the arithmetic at cbpp's 56 rows; the same
        elementwise operations in the same order)."""
        t = self.structure.terms[0].term
        if not t.structure.n_theta:
            return                        # a known covariance (equalto): no parameter
        codes, zc = self._scalar
        V = gamma * u[codes]
        V -= g * z[codes]
        V += 2.0 * wl * Ba[:, 0]
        sl = self.slices[0]
        grad[sl] = self._jacobian(0, t.structure, theta[sl]) @ np.array([zc @ V])

    def _blocked_pieces(self, lams, w, wl, dwl, same: bool, joint: bool):
        """``(B a, s, r, z, d eta)`` of :meth:`_gradient` through the Laplace engine's
        kernels (any size of model)."""
        S = self.structure
        a = S.slot_values(lams)                                   # (n, P): Z Lambda
        self._factor(self._M, a, wl)
        apply = getattr(self._M, "slot_inverse_apply", None)
        if _one_block(self._M, S):
            # one block: a_i M^{-1} on the slots is row i of a M^{-1} (no (n, P, P) array)
            Ba = a @ self._M.inverse_blocks()[0].T                # (n, P)
        elif apply is not None:
            Ba = apply(a)                                         # (n, P), no (n, P, P)
        else:
            B = getattr(self._M, "slot_inverse_lapack", self._M.slot_inverse)()
            Ba = np.einsum("nst,nt->ns", B, a)                    # (n, P)
        lev = np.einsum("ns,ns->n", a, Ba)                        # s_i
        r = dwl * lev
        if same:
            H = self._M
        else:
            if self._H is None:
                self._H = make_hessian(S)
            H = self._H
            self._factor(H, a, w)
        if joint:
            z, d_eta = self._joint_solve(H, a, w, r)
        else:
            z = H.solve(S.scatter(a, r[:, None]))
            d_eta = S.apply(a, z)[:, 0]
        return Ba, lev, r, z, d_eta

    def _dense_pieces(self, lams, w, wl, dwl, same: bool, joint: bool):
        r"""The pieces of :meth:`_blocked_pieces` for the small models whose PIRLS
        factors one dense system (:mod:`.pirls_dense`): with ``A = Z Lambda`` as a dense
        n x q matrix, ``M = A' W_L A + I`` is one LAPACK Cholesky factorization, its
        inverse on observation ``i``'s slots applied to ``a_i`` is row ``i`` of
        ``A M^{-1}`` at the slots' columns (``[B a]_{is} = (A M^{-1})_{i, J_{is}}``:
        ``A_{ij}`` sums ``a_{is}`` over the slots ``s`` with ``J_{is} = j``), and the
        leverages are the row sums of ``A \circ A M^{-1}``. The same numbers as the
        kernels' to rounding, without their per-block and per-column calls (cbpp: q =
        15, n = 56, where those calls were most of the gradient's cost)."""
        S = self.structure
        A = self._dense_a
        self._dense.scaled_z(lams, A)
        Lm = self._dense_factor(A, wl)
        # A M^{-1} = (M^{-1} A')': one solve with the factor (no inverse to form and
        # mirror: four calls fewer per gradient on cbpp)
        AMt, info = _dpotrs(Lm, A.T, lower=1)
        if info != 0:
            raise PIRLSError("the Laplace Hessian is not positive definite at the "
                             "conditional modes")
        AM = AMt.T                                                # (n, q)
        Ba = np.take_along_axis(AM, S.J, axis=1)                  # (n, P)
        lev = np.einsum("nq,nq->n", A, AM)                        # s_i
        r = dwl * lev
        Lh = Lm if same else self._dense_factor(A, w)
        rhs_u = A.T @ r
        if not joint:
            z = _dpotrs(Lh, rhs_u, lower=1)[0]
            return Ba, lev, r, z, A @ z
        X = self.design.X
        p = X.shape[1]
        if not p:
            z = _dpotrs(Lh, rhs_u, lower=1)[0]
            return Ba, lev, r, z, A @ z
        # the joint system [[H, A' W X], [X' W A, X' W X]] by block elimination through
        # H's factor, as _joint_solve
        WX = w[:, None] * X
        G = A.T @ WX                                              # (q, p)
        sol = _dpotrs(Lh, np.column_stack([G, rhs_u]), lower=1)[0]
        C, hu = sol[:, :p], sol[:, p]
        schur = X.T @ WX - G.T @ C
        zb = np.linalg.solve(schur, X.T @ r - G.T @ hu)
        zu = hu - C @ zb
        return Ba, lev, r, zu, A @ zu + X @ zb

    def _scalar_pieces(self, lams, w, wl, dwl, same: bool, joint: bool):
        r"""The pieces of :meth:`_blocked_pieces` for one scalar term (``(1 | g)``,
        ``(x - 1 | g)``): with ``a_i = lambda z_i`` the levels share no observation, so
        ``M = diag(d)``, ``d_j = 1 + sum_{i in j} W_{L,i} a_i^2``; ``[B a]_i = a_i /
        d_{j(i)}``, the leverages are ``a_i^2 / d_{j(i)}`` and the solves with ``H``
        divisions (the joint system by block elimination through that diagonal, as
        :meth:`_joint_solve`). Level sums are bincounts: no matrix with a column per
        level."""
        codes, zc = self._scalar
        nlev = self.structure.q
        a = lams[0][0, 0] * zc
        a2 = a * a
        d = 1.0 + np.bincount(codes, wl * a2, minlength=nlev)
        dc = d[codes]
        Ba = (a / dc)[:, None]
        lev = a2 / dc
        r = dwl * lev
        dh = d if same else 1.0 + np.bincount(codes, w * a2, minlength=nlev)
        hu = np.bincount(codes, a * r, minlength=nlev) / dh
        X = self.design.X
        p = X.shape[1]
        if not joint or not p:
            return Ba, lev, r, hu, a * hu[codes]
        WX = w[:, None] * X
        if self._levels is None:
            self._levels = level_map(codes, nlev)
        G = self._levels @ (a[:, None] * WX)         # Lambda' Z' W X: (levels, p)
        C = G / dh[:, None]
        schur = X.T @ WX - G.T @ C
        # (LAPACK's gesv, as np.linalg.solve, without its wrapping: a third of this call)
        _, _, zb, info = _dgesv(schur, X.T @ r - G.T @ hu)
        if info != 0:
            raise np.linalg.LinAlgError("the joint system of the nAGQ = 0 criterion is "
                                        "singular")
        zu = hu - C @ zb
        return Ba, lev, r, zu, a * zu[codes] + X @ zb

    def _dense_factor(self, A: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The lower Cholesky factor of ``A' diag(weights) A + I`` (dense), or a
        :class:`PIRLSError` when it is not positive definite."""
        M = A.T @ (A * weights[:, None])
        M.flat[::M.shape[0] + 1] += 1.0
        L, info = _dpotrf(M, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise PIRLSError("the Laplace Hessian is not positive definite at the "
                             "conditional modes")
        return L

    def _jacobian(self, key: int, structure, theta_t: np.ndarray) -> np.ndarray:
        """``d vec(Lambda) / d theta`` of one term, (n_theta, p*p): constant (and cached)
        for structures whose entries are the parameters themselves."""
        if structure.direct and key in self._jac:
            return self._jac[key]
        dlam = structure.lambda_jacobian(theta_t)
        out = dlam.reshape(dlam.shape[0], dlam[0].size if dlam.shape[0] else 0)
        if structure.direct:
            self._jac[key] = out
        return out

    def _joint_solve(self, H, a: np.ndarray, w: np.ndarray, r: np.ndarray):
        r"""``[z_u; z_beta] = H_J^{-1} [Lambda' Z' r; X' r]`` for the joint system
        ``H_J = [[H, Lambda' Z' W X], [X' W Z Lambda, X' W X]]`` of the nAGQ = 0 criterion
        (PIRLS estimates ``beta`` with ``u``), by block elimination through ``H``:
        ``C = H^{-1} Lambda' Z' W X``, ``S = X' W X - (Lambda' Z' W X)' C``. Returns
        ``z_u`` and ``Z Lambda z_u + X z_beta`` (the change of ``eta``)."""
        S, X = self.structure, self.design.X
        p = X.shape[1]
        G = self._scatter_columns(a, w[:, None] * X) if p else np.zeros((S.q, 0))
        rhs = np.column_stack([G, S.scatter(a, r[:, None])])
        # the blocked kernel solves all columns at once; the others column by column
        sol = H.solve_many(rhs) if hasattr(H, "solve_many") else solve_columns(H, rhs)
        C, hu = sol[:, :p], sol[:, p]
        schur = X.T @ (w[:, None] * X) - G.T @ C
        zb = np.linalg.solve(schur, X.T @ r - G.T @ hu) if p else np.zeros(0)
        zu = hu - C @ zb
        return zu, S.apply(a, zu)[:, 0] + X @ zb

    def _scatter_columns(self, a: np.ndarray, V: np.ndarray) -> np.ndarray:
        """``A' V`` for an (n, m) matrix ``V`` of one-channel values: the q x m matrix
        whose column ``j`` is ``S.scatter(a, V[:, j:j+1])``, as one product with the fixed
        0/1 map of (observation, slot) to random effect (built once), instead of ``m``
        ``bincount`` passes over the data."""
        S = self.structure
        n, P = a.shape
        if self._scatter_matrix is None:
            flat = S.J.ravel()
            self._scatter_matrix = sp.csr_matrix(
                (np.ones(flat.size), (flat, np.arange(flat.size))), shape=(S.q, flat.size))
        vals = (a[:, :, None] * V[:, None, :]).reshape(n * P, V.shape[1])
        return np.asarray(self._scatter_matrix @ vals)


class Stage0Gradient(LaplaceGradient):
    """``theta -> (F_0(theta), dF_0/dtheta)`` of the nAGQ = 0 criterion: the Laplace
    deviance at PIRLS's joint estimates of ``beta`` and ``u`` (the same formulas with the
    implicit path through both; :meth:`LaplaceGradient._joint_solve`).

    Parameters
    ----------
    obj : GLMMObjective
        Any nAGQ; no estimated negative binomial shape (see :func:`stage0_supported`).
    """

    def _evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        obj = self.obj
        obj.n_evals += 1
        self.n_grads += 1
        fam = obj.family
        obj._use_family(fam)
        self.last_solve = None
        try:
            pr = obj.pirls.fit(theta, None, tol=obj.stage0_tol)
            value, phi, _ = obj._value(pr, fam, None, 1)
            if not np.isfinite(value):
                raise FloatingPointError
            self.last_solve = (np.array(theta, dtype=float), obj.stage0_tol, fam, pr)
            with np.errstate(all="raise", under="ignore"):
                grad = self._gradient(theta, pr, fam, phi, joint=True)
        except (PIRLSError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf, np.full(theta.shape, np.nan)
        if not np.isfinite(grad).all():
            return np.inf, np.full(theta.shape, np.nan)
        return float(value), grad
