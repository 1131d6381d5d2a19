r"""Exact gradient of glmer's adaptive Gauss-Hermite deviance (one scalar term).

With one scalar random-effects term (levels ``j``, column ``z_i``, ``Lambda = lambda(theta)``)
the quadrature deviance of :mod:`.agq` is a sum over levels,

.. math::

    F = \sum_j \Bigl[G_{0j} + \log L_j^2 - 2 \log \sum_k w_k
        \exp\bigl(z_k^2/2 - (G_{kj} - G_{0j})/2\bigr)\Bigr],

with ``G_{kj} = g_j(v_{kj})``, ``g_j(v) = sum_{i in j} D_i(eta_i(v)) + v^2`` (``D_i = -2 log
p(y_i | eta_i)``), the nodes ``v_{kj} = u_j + z_k s_j`` around the conditional mode ``u_j``
(PIRLS) with ``s_j = 1 / L_j``, ``L_j^2 = 1 + lambda^2 sum_{i in j} W_{L,i} z_i^2`` (the
Laplace weights at the mode), ``G_{0j} = g_j(u_j)`` and
``eta_i(v) = X_i beta + lambda z_i v + offset_i``. Differentiating the log-sum-exp with the
normalized node weights ``pi_{kj}`` (they sum to one over ``k``) the ``G_{0j}`` terms cancel:

.. math:: dF = \sum_j \Bigl[d \log L_j^2 + \sum_k \pi_{kj}\, dG_{kj}\Bigr].

With ``D'_{ik} = dD_i/d eta`` at node ``k``, ``dG_{kj} = sum_{i in j} D'_{ik} d eta_{ik}|_v
+ e_{kj} dv_{kj}``, ``e_{kj} = lambda sum_{i in j} D'_{ik} z_i + 2 v_{kj}`` and
``dv_{kj} = du_j + z_k ds_j``; at fixed ``v`` the predictor moves by ``X_i`` in ``beta`` and
``lambda' z_i v_{kj}`` in ``theta``. The mode and the node scale move too: the mode solves
``lambda sum_{i in j} g_i z_i + u_j = 0`` (``g = D'/2``), so with the observed weights ``w``
(``H_j = 1 + lambda^2 sum w_i z_i^2``)

.. math:: du_j = -\bigl[\lambda \sum_{i \in j} w_i z_i\, \partial\eta_i
          + \lambda' \sum_{i \in j} g_i z_i\, e_\theta\bigr] / H_j,

``partial eta_i = [lambda' z_i u_j, X_i]`` at fixed ``u``; with ``d eta_i = partial eta_i +
lambda z_i du_j``, ``dL_j^2 = 2 lambda lambda' sum W_L z^2 e_theta + lambda^2 sum_{i in j}
W'_{L,i} z_i^2 d eta_i`` and ``ds_j = -s_j d log L_j^2 / 2``. Everything is a sum over
observations or levels (``bincount`` and one sparse level map): no loop over levels or
nodes. With one node (``z = 0``) this is the Laplace gradient of a scalar term.

The gradient lets the quadrature stage run the whitened BFGS of the Laplace stage
(:func:`~mixedmodels.fitting.glmm_gradient.minimize_whitened`) and its standard errors
come from differences of the gradient: on cbpp with 25 nodes 6 + 5 gradient evaluations
instead of BOBYQA's 30 deviances and 20 more for the Hessian.
"""

from __future__ import annotations

import numpy as np

from ..families import Family
from .agq import agq_from_sums, agq_node_predictors, agq_sums_of, gauss_hermite
from .glmm_gradient import LaplaceGradient, level_map, row_derivatives

__all__ = ["AGQGradient", "agq_gradient_supported"]


def agq_gradient_supported(obj) -> bool:
    """Whether :class:`AGQGradient` applies to a :class:`~.glmm.GLMMObjective`: glmer's
    own objective under quadrature (nAGQ > 1), a family without a dispersion parameter
    (so no ``log phi`` block) and with ``variance_deriv2``, no estimated negative binomial
    shape, and one scalar term with one covariance parameter whose structure gives
    ``lambda_jacobian`` (quadrature needs one scalar term anyway)."""
    from .glmm import GLMMObjective

    if type(obj) is not GLMMObjective or obj.nAGQ <= 1 or obj.phi_block or \
            obj.estimate_shape or obj.family.has_dispersion:
        return False
    terms = obj.design.terms
    if len(terms) != 1 or terms[0].p != 1 or terms[0].structure.n_theta != 1 or \
            not terms[0].structure.defined_everywhere:
        return False
    try:
        obj.family.variance_deriv2(np.ones(1) * 0.5)
        terms[0].structure.lambda_jacobian(obj.design.theta0())
    except NotImplementedError:
        return False
    return True


class AGQGradient(LaplaceGradient):
    """``x -> (F(x), dF/dx)`` of the quadrature deviance, ``x = [theta, beta]`` (module
    docstring); the memory of recent points is :class:`~.glmm_gradient.LaplaceGradient`'s.

    Parameters
    ----------
    obj : GLMMObjective
        nAGQ > 1 (see :func:`agq_gradient_supported`).

    Notes
    -----
    Every call is one PIRLS solve (counted in ``obj.n_evals``), the deviance as the
    objective computes it, and one pass over the ``nodes x n`` node predictors.
    """

    def __init__(self, obj):
        # (none of the Laplace engine's kernels: the scalar term's sums are bincounts)
        self.obj = obj
        self.design = obj.design
        self.n_grads = 0
        self._memo: dict[bytes, tuple] = {}
        term = obj.design.terms[0]
        self._term = term
        self._codes = term.grouping.codes
        self._zcol = np.asarray(term.Z[:, 0], dtype=float)
        self._nlev = term.nlevels
        #: the map of observations to their level (level sums of several columns)
        self._levels = level_map(self._codes, self._nlev)
        #: d lambda / d theta, constant for a structure whose entry is theta itself
        structure = term.structure
        self._dlam = float(np.reshape(structure.lambda_jacobian(obj.design.theta0()), -1)[0]) \
            if structure.direct else None

    def _at_modes(self, x: np.ndarray, pr, fam: Family) -> tuple[float, np.ndarray]:
        """The quadrature deviance and its gradient at the modes ``pr`` (the evaluation
        around them is :class:`~.glmm_gradient.LaplaceGradient`'s)."""
        with np.errstate(all="raise", under="ignore"):
            value, grad = self._value_and_gradient(x.size, pr, fam)
        if not np.isfinite(value):
            raise FloatingPointError
        return value, grad

    def _value_and_gradient(self, size: int, pr, fam: Family) -> tuple[float, np.ndarray]:
        """``(F, dF/d[theta, beta])`` at the modes ``pr`` (module docstring). ``F`` is the
        objective's own number (:func:`~.agq.agq_from_sums` of the same sums, with the
        curvature of PIRLS's last factor); the node predictors, means and values serve
        both."""
        obj = self.obj
        nagq = int(obj.nAGQ)
        y, prior, X = self.design.y, obj.pirls.prior, self.design.X
        codes, zc, nlev, levels = self._codes, self._zcol, self._nlev, self._levels
        structure = self._term.structure
        lam = float(structure.lambda_(pr.theta)[0, 0])
        dlam = self._dlam if self._dlam is not None else \
            float(np.reshape(structure.lambda_jacobian(pr.theta), -1)[0])
        _, L11, _ = obj._laplace_logdet(pr, fam)
        L_diag = L11[:, 0, 0]
        s = 1.0 / L_diag
        u = pr.u
        # the nodes: predictors (K + 1, n; row 0 the mode), means, -2 log p and its slope
        etas = agq_node_predictors(nagq, eta=pr.eta, codes=codes, zcol=zc, lam=lam, scale=s)
        link = fam.link
        mu = link.linkinv(etas)
        D = obj._m2ll_of_mu(fam)(mu)
        sums = agq_sums_of(D, codes, nlev)
        value = agq_from_sums(nagq, sums, u=u, L_diag=L_diag)
        if getattr(fam, "canonical_is_natural", False) and link.name == fam.canonical_link:
            Dp = -2.0 * prior * (y - mu[1:])                       # dD/d eta = 2 g
        else:
            Dp = -2.0 * prior * (y - mu[1:]) * link.mu_eta(etas[1:]) / fam.variance(mu[1:])
        kind = fam.laplace_hessian if obj.hessian is None else obj.hessian
        g, w, wl, dwl, _ = row_derivatives(fam, kind, y, prior, pr.eta, pr.mu)
        zz = zc * zc
        # d eta at fixed u: [theta, beta] columns
        P = np.empty((y.shape[0], size))
        P[:, 0] = dlam * zc * u[codes]
        P[:, 1:] = X
        # the mode's sensitivity (observed-information Hessian, diagonal over levels)
        H = 1.0 + lam * lam * np.bincount(codes, w * zz, minlength=nlev)
        R = lam * (levels @ ((w * zc)[:, None] * P))
        R[:, 0] += dlam * np.bincount(codes, g * zc, minlength=nlev)
        du = -R / H[:, None]                                        # (levels, 1 + p)
        d_eta = P + (lam * zc)[:, None] * du[codes]
        # the Laplace curvature L_j^2 and the node scale s_j = 1 / L_j
        dL2 = lam * lam * (levels @ ((dwl * zz)[:, None] * d_eta))
        dL2[:, 0] += 2.0 * lam * dlam * np.bincount(codes, wl * zz, minlength=nlev)
        dlogL2 = dL2 * (s * s)[:, None]
        ds = -0.5 * s[:, None] * dlogL2
        # the normalized node weights pi (K, levels)
        z, wq = gauss_hermite(nagq)
        v = u[None, :] + z[:, None] * s[None, :]                    # (K, levels)
        terms = (np.log(wq) + 0.5 * z * z)[:, None] \
            - 0.5 * (sums[1:] + v * v - (sums[0] + u * u)[None, :])
        pi = np.exp(terms - terms.max(axis=0))
        pi /= pi.sum(axis=0)
        pic = pi[:, codes]                                          # (K, n)
        q = np.einsum("kn,kn->n", pic, Dp)
        qv = np.einsum("kn,kn->n", pic * v[:, codes], Dp)
        e = lam * agq_sums_of(Dp * zc[None, :], codes, nlev) + 2.0 * v
        pe = pi * e
        a = pe.sum(axis=0)
        b = z @ pe
        grad = dlogL2.sum(axis=0) + a @ du + b @ ds
        grad[0] += dlam * float(zc @ qv)
        grad[1:] += X.T @ q
        return value, grad
