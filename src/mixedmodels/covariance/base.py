r"""The covariance contract every random-effects structure implements.

The covariance of a term's p random effects per level of its grouping factor is
``Sigma = s^2 Lambda Lambda'`` with ``Lambda`` a p x p factor built from the term's slice of
theta (``s = sigma`` in lmer, whose covariances are relative to the residual variance;
``s = 1`` in glmer and glmmtmb). A structure maps between three views of the same
covariance:

* **theta** -- the optimizer's scale (lme4's Cholesky entries for ``us``; glmmTMB 1.1.5's
  log standard deviations and transformed correlations for the structured classes);
* **Lambda** -- the factor the objectives use (:meth:`lambda_`), with its exact derivatives
  ``dLambda/dtheta_j`` (:meth:`lambda_jacobian`, used by the exact gradients);
* **parameters** -- the natural scale reported and profiled (standard deviations,
  correlations, a range, factor loadings): :meth:`parameters` and
  :meth:`theta_from_parameters`, named by :meth:`parameter_names`.

It also converts to and from glmmTMB's own theta (:meth:`to_glmmtmb`), says which
parameters sit on a boundary (:meth:`boundary_mask`, :meth:`is_singular`), whether flipping
the sign of a column of ``Lambda`` maps parameters to parameters (:attr:`sign_symmetric`,
:meth:`canonical`), and, when ``Sigma`` is linear in some variance parameters, the basis
matrices Kenward-Roger's method needs (:meth:`linear_basis`). Structures that need data --
coordinates for the spatial and Ornstein-Uhlenbeck classes, a known matrix for ``propto``
and ``equalto`` -- receive them at construction (:class:`StructureData`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = ["SINGULAR_TOL", "CovarianceStructure", "StructureData"]

#: A standard deviation below this (relative to the largest one of the model, or absolute
#: when all are tiny) or a correlation within this of +-1 makes a fit singular (lme4's
#: ``isSingular`` tolerance on theta).
SINGULAR_TOL = 1e-4
#: Up to this many parameters :meth:`CovarianceStructure.is_singular` tests a direct
#: (Cholesky) parameterization on Python floats.
SCALAR_SINGULAR_MAX = 16


@dataclass(frozen=True)
class StructureData:
    """Data a structure needs beyond its number of effects.

    Attributes
    ----------
    names : tuple of str
        Names of the term's p columns (for messages).
    coordinates : ndarray (p, dim) or None
        Position of each column (``pos(x, y)`` in the term).
    matrix : ndarray (p, p) or None
        A known covariance (``propto``, ``equalto``), ordered as the columns.
    where : str
        The term as written, for messages.
    """

    names: tuple[str, ...] = ()
    coordinates: np.ndarray | None = None
    matrix: np.ndarray | None = None
    where: str = ""


class CovarianceStructure(ABC):
    """Abstract covariance structure for a term with ``p`` random effects per group.

    Parameters
    ----------
    p : int
        Number of random effects per level.
    """

    #: keyword used in formulas (``us``, ``diag``, ...)
    keyword: str = ""
    #: glmmTMB's ``blockCode`` of the structure (``.valid_covstruct``)
    glmmtmb_code: int = -1
    #: Flipping the sign of a column of ``Lambda`` leaves ``Lambda Lambda'`` unchanged and
    #: maps parameters to parameters (:meth:`canonical` picks the representative), so an
    #: optimizer may ignore the lower bounds.
    sign_symmetric: bool = False
    #: ``Lambda`` is linear in theta with its entries equal to elements of theta
    #: (:meth:`direct_map` is not None).
    direct: bool = False
    #: Every parameter vector gives a covariance matrix (False for Toeplitz lag
    #: correlations, which need not form a correlation matrix: :meth:`lambda_` raises
    #: there, and a gradient-based search's line searches stall at the infinite deviance).
    defined_everywhere: bool = True

    def __init__(self, p: int):
        self.p = int(p)

    # -- theta ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def n_theta(self) -> int:
        """Number of parameters."""

    def lower_bounds(self) -> np.ndarray:
        """Lower bounds of the parameters (0 for Cholesky diagonals, -inf otherwise)."""
        return np.full(self.n_theta, -np.inf)

    @abstractmethod
    def theta0(self) -> np.ndarray:
        """Starting values (lme4's: identity relative covariance)."""

    def start(self, sd: float) -> np.ndarray:
        """Starting values with every standard deviation equal to ``sd`` and no
        correlation (glmmtmb scales its start to the data)."""
        return self.theta0() * sd

    @abstractmethod
    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        """The p x p factor ``Lambda`` for this term's parameters.

        Raises
        ------
        numpy.linalg.LinAlgError
            Where the parameters give no positive-definite covariance (a Toeplitz
            correlation that is not one): the objectives treat this as infinite deviance.
        """

    def direct_map(self) -> np.ndarray | None:
        """When every entry of ``Lambda`` is either 0 or one element of theta: for each of the
        p x p entries (row-major) the index into theta, or -1 for a structural zero. None for
        structures whose ``Lambda`` is a nonlinear function of theta. Lets hot loops fill
        ``Lambda`` with one gather instead of a Python call per term."""
        return None

    def lambda_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d Lambda / d theta_j`` for every parameter: (n_theta, p, p).

        Exact for structures whose entries are parameters (:meth:`direct_map`); structures
        with a nonlinear ``Lambda(theta)`` override it.
        """
        mp = self.direct_map()
        if mp is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement lambda_jacobian")
        out = np.zeros((self.n_theta, self.p * self.p))
        pos = np.flatnonzero(mp >= 0)
        out[mp[pos], pos] = 1.0
        return out.reshape(self.n_theta, self.p, self.p)

    def relative_jacobian(self, theta: np.ndarray) -> np.ndarray | None:
        """``M_j`` with ``dLambda/dtheta_j = Lambda M_j`` (n_theta, p, p) where the
        structure has it in closed form (a scale: ``M = I / 2`` for ``Lambda =
        exp(theta / 2) C``), else None -- the Laplace gradient then forms
        ``Lambda^{-1} dLambda_j`` itself (an SVD and a solve per evaluation)."""
        return None

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        """The parameters of the same covariance in canonical form (for sign-symmetric
        structures: the one within the lower bounds)."""
        return np.asarray(theta, dtype=float)

    # -- covariance views ----------------------------------------------------------------
    def covariance(self, theta: np.ndarray) -> np.ndarray:
        """``Lambda Lambda'`` (relative to ``sigma^2`` in lmer)."""
        lam = self.lambda_(theta)
        return lam @ lam.T

    def sd_cor(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standard deviations and correlation matrix of ``Lambda Lambda'``."""
        cov = self.covariance(theta)
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            cor = cov / np.outer(sd, sd)
        cor = np.where(np.outer(sd, sd) > 0, cor, 0.0)
        np.fill_diagonal(cor, 1.0)
        return sd, cor

    # -- boundaries ------------------------------------------------------------------------
    def boundary_mask(self) -> np.ndarray:
        """Parameters whose lower bound is finite (a zero there means a singular fit)."""
        return np.isfinite(self.lower_bounds())

    def is_singular(self, theta: np.ndarray, tol: float = SINGULAR_TOL) -> bool:
        """Whether the covariance is on the boundary of its space: a standard deviation
        (near) zero or a correlation (near) +-1 -- a singular ``Lambda Lambda'``.

        Parameters
        ----------
        theta : ndarray
        tol : float
            Standard deviations below ``tol`` times the largest and correlations within
            ``tol`` of +-1 count as on the boundary.

        Returns
        -------
        bool
        """
        theta = np.asarray(theta, dtype=float)
        if self.direct and theta.size <= SCALAR_SINGULAR_MAX:
            # lme4's rule (a Cholesky diagonal at its bound of zero) on Python floats:
            # the same test per parameter, without numpy's calls on a few numbers
            return any(math.isfinite(lo) and abs(t) < tol
                       for t, lo in zip(theta.tolist(), self.lower_bounds().tolist(),
                                        strict=True))
        mask = self.boundary_mask()
        if np.any(np.abs(theta[mask]) < tol):
            return True
        if self.direct:
            return False        # lme4's rule: a Cholesky diagonal at its bound of zero
        sd, cor = self.sd_cor(theta)
        if not sd.size:
            return False
        if np.any(sd < tol * max(float(sd.max()), 1.0)):
            return True
        off = cor[~np.eye(self.p, dtype=bool)]
        return bool(np.any(np.abs(off) > 1.0 - tol))

    # -- natural parameters ----------------------------------------------------------------
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the natural parameters (``sd_1``, ``rho``, ``range``, ...)."""
        return tuple(f"theta_{k + 1}" for k in range(self.n_theta))

    def parameter_scales(self) -> np.ndarray:
        """Which natural parameters are standard deviations (or loadings): in lmer they are
        reported multiplied by sigma."""
        return np.zeros(self.n_theta, dtype=bool)

    def even_mask(self) -> np.ndarray:
        """Parameters in each of which alone the covariance is even (a standard deviation
        that is a column of ``Lambda`` by itself: ``diag``'s): the objective's curvature
        in one of them changes fastest near zero, and only there does a Hessian need
        central differences along it."""
        return np.zeros(self.n_theta, dtype=bool)

    def smooth_mask(self) -> np.ndarray:
        """Parameters along which the objective is smooth on the scale of a
        finite-difference step wherever the optimizer stops: neither even about a point it
        may cross (a standard deviation), nor flat as a variance vanishes or a range runs
        off (a log scale, a log range) -- a correlation's transformed parameter. A Hessian
        takes forward differences along them."""
        return np.zeros(self.n_theta, dtype=bool)

    def log_scale_mask(self) -> np.ndarray:
        """Parameters that are the log of a standard deviation or of a variance scale
        (glmmTMB's parameterization): the covariance loses that scale only as such a
        parameter goes to ``-inf``, so an optimizer approaches a zero variance by ever
        smaller steps (:mod:`mixedmodels.fitting.laplace_boundary`)."""
        return np.zeros(self.n_theta, dtype=bool)

    def parameter_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the natural parameters."""
        return np.full(self.n_theta, -np.inf), np.full(self.n_theta, np.inf)

    def parameters(self, theta: np.ndarray) -> np.ndarray:
        """Natural parameters from theta (relative to sigma in lmer)."""
        return np.asarray(theta, dtype=float).copy()

    def theta_from_parameters(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`parameters`."""
        return np.asarray(values, dtype=float).copy()

    def parameter_dict(self, theta: np.ndarray, scale: float = 1.0) -> dict[str, float]:
        """Natural parameters by name, standard deviations multiplied by ``scale``."""
        vals = self.parameters(theta)
        vals = np.where(self.parameter_scales(), vals * scale, vals)
        return dict(zip(self.parameter_names(), (float(v) for v in vals), strict=True))

    # -- glmmTMB ---------------------------------------------------------------------------
    def to_glmmtmb(self, theta: np.ndarray) -> np.ndarray:
        """glmmTMB 1.1.5's theta of the same covariance (``fit$fit$par["theta"]``)."""
        return np.asarray(theta, dtype=float).copy()

    def from_glmmtmb(self, values: np.ndarray) -> np.ndarray:
        """theta from glmmTMB's parameterization (inverse of :meth:`to_glmmtmb`)."""
        return np.asarray(values, dtype=float).copy()

    # -- Kenward-Roger ---------------------------------------------------------------------
    def linear_basis(self) -> list[np.ndarray] | None:
        """Symmetric p x p matrices ``E_i`` with ``Lambda Lambda' = sum_i gamma_i E_i`` for
        variance parameters ``gamma`` (the covariance is linear in them), or None when the
        structure is nonlinear in every parameterization (Kenward-Roger's adjustment, which
        assumes linearity, is then refused)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
