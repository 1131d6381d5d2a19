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
nodes. With one node (``z = 0``) this is the Laplace gradient of a scalar term. The rows
enter only through per-level sums (:func:`agq_row_sums`) and through ``X' q``,
``q_i = sum_k pi_{k,j(i)} D'_{ik}`` (:func:`agq_beta_term`), so the Dask backend forms
them in two passes over the partitions (``mixedmodels.backends.dask.agq_gradient``).

The gradient lets the quadrature stage run the whitened BFGS of the Laplace stage
(:func:`~mixedmodels.fitting.glmm_gradient.minimize_whitened`) and its standard errors
come from differences of the gradient: on cbpp with 25 nodes 6 + 5 gradient evaluations
instead of BOBYQA's 30 deviances and 20 more for the Hessian.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..families import Family
from .agq import agq_from_sums, agq_node_predictors, agq_sums_of, gauss_hermite
from .glmm_gradient import LaplaceGradient, level_map, row_derivatives

__all__ = ["AGQGradient", "AGQLevelSums", "AGQRows", "agq_beta_term", "agq_from_row_sums",
           "agq_gradient_supported", "agq_row_sums"]


def agq_gradient_supported(obj, objective_type: type | None = None) -> bool:
    """Whether :class:`AGQGradient` applies to a :class:`~.glmm.GLMMObjective`: glmer's
    own objective (exactly ``objective_type``, by default ``GLMMObjective``; the Dask
    backend passes its own) under quadrature (nAGQ > 1), a family without a dispersion
    parameter (so no ``log phi`` block) and with ``variance_deriv2``, no estimated
    negative binomial shape, and one scalar term with one covariance parameter whose
    structure gives ``lambda_jacobian`` (quadrature needs one scalar term anyway)."""
    from .glmm import GLMMObjective

    if type(obj) is not (objective_type or GLMMObjective) or obj.nAGQ <= 1 or \
            obj.phi_block or obj.estimate_shape or obj.family.has_dispersion:
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
        self._setup(obj)
        term = self._term
        self._codes = term.grouping.codes
        self._zcol = np.asarray(term.Z[:, 0], dtype=float)
        self._nlev = term.nlevels
        #: the map of observations to their level (level sums of several columns)
        self._levels = level_map(self._codes, self._nlev)

    def _setup(self, obj) -> None:
        """What does not read the rows (the Dask gradient's too)."""
        self.obj = obj
        self.design = obj.design
        self.n_grads = 0
        self._memo: dict[bytes, tuple] = {}
        self._term = obj.design.terms[0]
        #: d lambda / d theta, constant for a structure whose entry is theta itself
        structure = self._term.structure
        self._dlam = float(np.reshape(structure.lambda_jacobian(obj.design.theta0()), -1)[0]) \
            if structure.direct else None

    def _at_point(self, pr, fam: Family) -> tuple[int, float, float, np.ndarray, str]:
        """``(nodes, lambda, d lambda / d theta, L_j, kind)`` at the modes ``pr``: the
        rule, the term's scale and its derivative, the Laplace curvature's diagonal (of
        PIRLS's last factor, or of the Laplace weights' own) and their kind."""
        obj = self.obj
        structure = self._term.structure
        lam = float(structure.lambda_(pr.theta)[0, 0])
        dlam = self._dlam if self._dlam is not None else \
            float(np.reshape(structure.lambda_jacobian(pr.theta), -1)[0])
        _, L11, _ = obj._laplace_logdet(pr, fam)
        kind = fam.laplace_hessian if obj.hessian is None else obj.hessian
        return int(obj.nAGQ), lam, dlam, L11[:, 0, 0], kind

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
        nagq, lam, dlam, L_diag, kind = self._at_point(pr, fam)
        levels = self._levels
        rows = AGQRows(self.design.y, obj.pirls.prior, self.design.X, self._codes,
                       self._zcol, self._nlev)
        sums, Dp = agq_row_sums(rows, fam, kind, nagq, pr.eta, pr.mu, lam, 1.0 / L_diag,
                                obj._m2ll_of_mu(fam), lambda vals: levels @ vals)
        value, grad, pi = agq_from_row_sums(nagq, sums, u=pr.u, L_diag=L_diag, lam=lam,
                                            dlam=dlam, size=size)
        grad[1:] += agq_beta_term(rows, pi, Dp)
        return value, grad


@dataclass(frozen=True)
class AGQRows:
    """The rows the gradient reads (all of them in memory, one partition's on Dask):
    response, prior weights, fixed-effects matrix (the user's basis), the scalar term's
    level codes and column, and its number of levels."""

    y: np.ndarray
    prior: np.ndarray
    X: np.ndarray
    codes: np.ndarray
    zcol: np.ndarray
    nlevels: int


@dataclass(frozen=True)
class AGQLevelSums:
    r"""Per-level sums over the rows from which the value and the gradient follow (module
    docstring; sums of rows add, so the partitions' sums are summed on Dask). ``D`` is
    ``-2 log p`` at the mode (row 0) and the nodes, ``D'`` its slope in ``eta`` at the
    nodes, ``g, w, W_L, W_L'`` the derivatives at the mode
    (:func:`~.glmm_gradient.row_derivatives`), ``z`` the term's column."""

    #: (K + 1, levels): sum D (as agq_level_sums)
    m2ll: np.ndarray
    #: (K, levels): sum D' z
    dp_z: np.ndarray
    #: (levels,) each: sum w z^2, sum g z, sum W_L z^2, sum W_L' z^3
    w_zz: np.ndarray
    g_z: np.ndarray
    wl_zz: np.ndarray
    dwl_zzz: np.ndarray
    #: (levels, p) each: sum w z X, sum W_L' z^2 X
    w_zX: np.ndarray
    dwl_zzX: np.ndarray

    def __add__(self, other: AGQLevelSums) -> AGQLevelSums:
        return AGQLevelSums(*(getattr(self, f.name) + getattr(other, f.name)
                              for f in fields(self)))


def _slopes(rows: AGQRows, fam: Family, etas: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``D'_{ik} = dD_i / d eta`` at the nodes (rows 1: of ``etas`` and ``mu``)."""
    y, prior, link = rows.y, rows.prior, fam.link
    if getattr(fam, "canonical_is_natural", False) and link.name == fam.canonical_link:
        return -2.0 * prior * (y - mu[1:])                          # dD/d eta = 2 g
    return -2.0 * prior * (y - mu[1:]) * link.mu_eta(etas[1:]) / fam.variance(mu[1:])


def agq_row_sums(rows: AGQRows, fam: Family, kind: str, nagq: int, eta: np.ndarray,
                 mu: np.ndarray, lam: float, scale: np.ndarray, m2ll_of_mu,
                 level_sums) -> tuple[AGQLevelSums, np.ndarray]:
    """:class:`AGQLevelSums` of ``rows`` at the modes (``eta, mu`` at ``u``; ``scale``
    the node scales ``s_j = 1 / L_j``), and ``D'`` (K, n) for :func:`agq_beta_term`.

    Parameters
    ----------
    kind : str
        The Laplace weights' kind (``"expected"`` or ``"observed"``).
    m2ll_of_mu : callable
        ``mu (K + 1, n) -> D``: the objective's own ``-2 log p``.
    level_sums : callable
        ``vals (n, m) -> (levels, m)``: sums per level of ``rows.codes``.
    """
    codes, zc, nlev = rows.codes, rows.zcol, rows.nlevels
    etas = agq_node_predictors(nagq, eta=eta, codes=codes, zcol=zc, lam=lam, scale=scale)
    mus = fam.link.linkinv(etas)
    D = m2ll_of_mu(mus)
    Dp = _slopes(rows, fam, etas, mus)
    g, w, wl, dwl, _ = row_derivatives(fam, kind, rows.y, rows.prior, eta, mu)
    zz = zc * zc
    scalars = np.asarray(level_sums(np.column_stack([w * zz, g * zc, wl * zz,
                                                     dwl * zz * zc])))
    X = rows.X
    p = X.shape[1]
    blocks = np.asarray(level_sums(np.hstack([(w * zc)[:, None] * X,
                                              (dwl * zz)[:, None] * X])))
    sums = AGQLevelSums(agq_sums_of(D, codes, nlev),
                        agq_sums_of(Dp * zc[None, :], codes, nlev),
                        *(scalars[:, c] for c in range(4)), blocks[:, :p], blocks[:, p:])
    return sums, Dp


def agq_from_row_sums(nagq: int, sums: AGQLevelSums, *, u: np.ndarray, L_diag: np.ndarray,
                      lam: float, dlam: float, size: int
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """``(F, dF/d[theta, beta], pi)`` from the level sums (module docstring), the beta
    entries without ``X' q``, ``q_i = sum_k pi_{k,j(i)} D'_{ik}`` (:func:`agq_beta_term`),
    which needs the normalized node weights ``pi`` (K, levels) back on the rows."""
    value = agq_from_sums(nagq, sums.m2ll, u=u, L_diag=L_diag)
    s = 1.0 / L_diag
    # the mode's sensitivity (observed-information Hessian, diagonal over levels); the
    # theta column of d eta at fixed u is dlam z_i u_j, so its level sums are u_j times
    # the sums of the scalar columns
    H = 1.0 + lam * lam * sums.w_zz
    R = np.empty((u.size, size))
    R[:, 0] = dlam * (lam * u * sums.w_zz + sums.g_z)
    R[:, 1:] = lam * sums.w_zX
    du = -R / H[:, None]                                            # (levels, 1 + p)
    # the Laplace curvature L_j^2 along d eta = [dlam z u, X] + lam z du, and the node
    # scale s_j = 1 / L_j
    dL2 = np.empty_like(R)
    dL2[:, 0] = dlam * u * sums.dwl_zzz
    dL2[:, 1:] = sums.dwl_zzX
    dL2 += lam * sums.dwl_zzz[:, None] * du
    dL2 *= lam * lam
    dL2[:, 0] += 2.0 * lam * dlam * sums.wl_zz
    dlogL2 = dL2 * (s * s)[:, None]
    ds = -0.5 * s[:, None] * dlogL2
    # the normalized node weights pi (K, levels)
    z, wq = gauss_hermite(nagq)
    v = u[None, :] + z[:, None] * s[None, :]                        # (K, levels)
    m2 = sums.m2ll
    terms = (np.log(wq) + 0.5 * z * z)[:, None] \
        - 0.5 * (m2[1:] + v * v - (m2[0] + u * u)[None, :])
    pi = np.exp(terms - terms.max(axis=0))
    pi /= pi.sum(axis=0)
    e = lam * sums.dp_z + 2.0 * v
    pe = pi * e
    grad = dlogL2.sum(axis=0) + pe.sum(axis=0) @ du + (z @ pe) @ ds
    # theta at fixed v: sum_i lambda' z_i sum_k pi_kj v_kj D'_ik
    grad[0] += dlam * float(np.sum(pi * v * sums.dp_z))
    return value, grad, pi


def agq_beta_term(rows: AGQRows, pi: np.ndarray, Dp: np.ndarray) -> np.ndarray:
    """``X' q``, ``q_i = sum_k pi_{k,j(i)} D'_{ik}``: the beta entries' part at fixed
    ``v``."""
    return rows.X.T @ np.einsum("kn,kn->n", pi[:, rows.codes], Dp)
