r"""Correlations that read the coordinates of the term's columns: ``ou``, ``exp``, ``gau``,
``mat`` (glmmTMB 1.1.5's spatial and continuous-time structures).

The columns of such a term are positions -- ``exp(0 + pos(x, y) | g)`` gives one column
per distinct ``(x, y)`` -- and ``d_ij`` is the Euclidean distance between the positions of
columns i and j (glmmTMB: ``dist(parseNumLevels(...))``). One standard deviation
``s = exp(theta_0)``; the correlation (``t = theta_1, ...``):

=======  ============================================  ==========================
keyword  ``R_ij``                                      natural parameters
=======  ============================================  ==========================
ou       ``exp(-exp(t) |tau_i - tau_j|)`` (1-D times)  ``rate = exp(t)``
exp      ``exp(-d_ij / exp(t))``                       ``range = exp(t)``
gau      ``exp(-d_ij^2 / exp(2 t))``                   ``range = exp(t)``
mat      Matern(d_ij; range ``exp(t_1)``,              ``range``, ``smoothness``
         smoothness ``nu = exp(t_2)``)
=======  ============================================  ==========================

with TMB's Matern ``x^nu K_nu(x) / (Gamma(nu) 2^(nu - 1))``, ``x = d / range``. Its
derivative in ``nu`` needs ``dK_nu/dnu``, which scipy does not provide: it is computed from
``K_nu(x) = int_0^inf exp(-x cosh s) cosh(nu s) ds`` by the trapezoidal rule, which
converges geometrically for this even, analytic, doubly exponentially decaying integrand.

Prediction at positions the fit did not see (``predict(..., allow_new_levels=True)``) is
simple kriging: with ``b`` the term's effects at the fitted positions of a level and
``r_i = R(d(new_i, fitted))`` the correlations of a new position with them, the conditional
mean of its effect is ``E[b_new | b] = r_i' R^{-1} b`` (the standard deviation cancels):
:meth:`_Positional.kriging_weights`. glmmTMB gets the same numbers by refitting the joint
density with the new positions added and the parameters fixed: a random effect that no
observation touches has its mode at that conditional mean.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy import special

from .._errors import FormulaError
from .correlated import ScaledCorrelation

__all__ = ["BESSEL_GROUPS", "BESSEL_STEP", "RANGE_QUANTILES", "Exponential", "Gaussian", "Matern",
           "OrnsteinUhlenbeck", "bessel_k_order_derivative"]

#: Step of the trapezoidal rule for ``dK_nu/dnu`` (error ~ exp(-pi^2 / step) relative).
BESSEL_STEP = 0.05
#: The integrand is cut where ``x cosh(s) - nu s`` exceeds this (``e^-60`` is negligible).
BESSEL_CUTOFF = 60.0
#: Groups of the sorted arguments of :func:`bessel_k_order_derivative`, each integrated up
#: to its own cutoff.
BESSEL_GROUPS = 8
#: Quantiles of the pairwise distances tried as starting ranges (with the median
#: nearest-neighbour distance; see ``_Positional.range_lengths``).
RANGE_QUANTILES = (0.1, 0.5, 0.9)
#: Halvings of the start range tried before giving up on a positive definite start.
START_HALVINGS = 30


def bessel_k_order_derivative(nu: float, x: np.ndarray) -> np.ndarray:
    r"""``dK_nu(x) / dnu`` for ``x > 0`` by the trapezoidal rule on
    ``int_0^inf s sinh(nu s) exp(-x cosh s) ds`` (see the module docstring).

    The integrand is cut where it has fallen below ``e^-BESSEL_CUTOFF`` of ``e^-x`` (its
    factor at ``s = 0``): where ``x (cosh s - 1) - nu s`` reaches :data:`BESSEL_CUTOFF`.
    That happens sooner for a larger ``x``, so the sorted ``x`` are taken in
    :data:`BESSEL_GROUPS` groups, each summed up to its own smallest ``x``'s cut (which
    holds for the group's larger ones too): about half the exponentials of one range for
    all."""
    x = np.asarray(x, dtype=float)
    flat = x.ravel()
    out = np.empty(flat.size)
    if not flat.size:
        return out.reshape(x.shape)
    order = np.argsort(flat, kind="stable")
    for group in np.array_split(order, min(BESSEL_GROUPS, flat.size)):
        xg = flat[group]
        xm = float(xg[0])
        upper = 1.0
        for _ in range(50):         # fixed point of x (cosh(S) - 1) = cutoff + nu S
            nxt = float(np.arccosh(1.0 + (BESSEL_CUTOFF + nu * upper) / xm))
            if abs(nxt - upper) < BESSEL_STEP * 1e-3:
                upper = nxt
                break
            upper = nxt
        s = np.arange(BESSEL_STEP, upper + BESSEL_STEP, BESSEL_STEP)
        # log of the integrand's factors, to stay finite where sinh(nu s) is huge (the
        # node s = 0 contributes nothing: its integrand is 0)
        with np.errstate(over="ignore", divide="ignore"):
            logf = np.log(s * np.sinh(nu * s))[None, :] - np.outer(xg, np.cosh(s))
            out[group] = BESSEL_STEP * np.exp(logf).sum(axis=1)
    return out.reshape(x.shape)


class _Positional(ScaledCorrelation):
    """One standard deviation and a correlation that depends on distances."""

    def __init__(self, p: int, coordinates: np.ndarray | None = None, hom: bool = True):
        self.keywords = (self.keyword_name, self.keyword_name)
        self.codes = (self.code, self.code)
        if coordinates is None:
            kw = self.keyword_name
            raise FormulaError(
                f"{kw}() needs the positions of its columns: write them in the term, e.g. "
                f"{kw}(0 + pos(x, y) | g) ({kw}(0 + pos(time) | g) for times)")
        super().__init__(p, hom=True)
        coords = np.asarray(coordinates, dtype=float)
        if coords.ndim == 1:
            coords = coords[:, None]
        if coords.shape[0] != self.p:
            raise FormulaError(f"{self.keyword}(): {coords.shape[0]} positions for {self.p} "
                               "columns")
        self.coordinates = coords
        diff = coords[:, None, :] - coords[None, :, :]
        self.dist = np.sqrt(np.sum(diff * diff, axis=2))
        pos = self.dist[self.dist > 0]
        #: a typical distance: the start of a range (glmmTMB starts at 1 whatever the
        #: units of the coordinates)
        self.scale = float(np.median(pos)) if pos.size else 1.0

    keyword_name = ""
    code = -1

    def correlation_at(self, t: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """The correlation at distances ``dist`` (any shape) for parameters ``t``."""
        raise NotImplementedError

    def kriging_weights(self, theta: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
        r"""Weights ``W`` (m, p) of the fitted positions' effects in the conditional mean of
        the effects at ``coordinates`` (m, dim): ``E[b_new | b] = W b`` with
        ``W = R_{new,fit} R^{-1}`` at the term's parameters ``theta``.

        A fitted position among ``coordinates`` gets its indicator row. Where ``R`` is
        numerically singular (a range far beyond the distances) the least-squares solution
        is used, which is the limit of the weights.
        """
        return self._kriging(theta, coordinates)[0]

    def kriging_variance(self, theta: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
        r"""Conditional variances (m,) of the effects at ``coordinates`` given the fitted
        positions' effects: ``s^2 (1 - r' R^{-1} r)`` (zero at a fitted position)."""
        W, r = self._kriging(theta, coordinates)
        sd, _ = self._split(theta)
        return sd[0] ** 2 * np.maximum(1.0 - np.einsum("ij,ij->i", W, r), 0.0)

    def _kriging(self, theta: np.ndarray, coordinates: np.ndarray):
        """``(W, r)``: the weights and the correlations (m, p) with the fitted positions."""
        _, t = self._split(theta)
        coords = np.asarray(coordinates, dtype=float).reshape(-1, self.coordinates.shape[1])
        diff = coords[:, None, :] - self.coordinates[None, :, :]
        r = self.correlation_at(t, np.sqrt(np.sum(diff * diff, axis=2)))
        R = self.correlation(t)
        try:
            W = scipy.linalg.solve(R, r.T, assume_a="pos", check_finite=False).T
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            W = np.linalg.lstsq(R, r.T, rcond=None)[0].T
        return W, r

    def smooth_mask(self) -> np.ndarray:
        # a log range runs off toward a flat limit when the data do not pin it
        return np.zeros(self.n_theta, dtype=bool)

    def cor_at_range(self, length: float) -> np.ndarray:
        """Correlation parameters with a range (a correlation length) ``length``, the
        others at their start."""
        out = np.zeros(self.n_cor)
        out[0] = np.log(length)
        return out

    def range_of(self, cor: np.ndarray) -> float:
        """The range (correlation length) of correlation parameters ``cor``."""
        return float(np.exp(cor[0]))

    def _cor_start(self) -> np.ndarray:
        """Correlation parameters at the start: a range equal to the median distance, or
        the longest shorter one (halving) whose correlation matrix is positive definite
        in floating point -- a Gaussian correlation over 288 positions at the median
        distance is not, and the fit then failed at its start."""
        length = self.scale
        for _ in range(START_HALVINGS):
            cor = self.cor_at_range(length)
            try:
                np.linalg.cholesky(self.correlation(cor))
                return cor
            except np.linalg.LinAlgError:
                length /= 2.0
        return self.cor_at_range(self.scale)

    def range_lengths(self) -> np.ndarray:
        r"""Correlation lengths spanning the distances of the positions: the median
        nearest-neighbour distance and the ``RANGE_QUANTILES`` of the pairwise distances.

        The likelihood in the range can have one optimum per scale of the data's
        dependence (short range: neighbours alike; long range: a smooth trend), and a start
        at the median distance falls into the long one even where the short one is much
        better (the sweep's ``gau_pois``: 1.94 in deviance worse than glmmTMB). After a fit,
        glmmtmb evaluates its objective at these lengths
        (:mod:`~mixedmodels.fitting.range_start`) and fits again from a better point."""
        off = self.dist > 0
        if not off.any():
            return np.array([self.scale])
        nearest = np.where(off, self.dist, np.inf).min(axis=1)
        lengths = [float(np.median(nearest[np.isfinite(nearest)]))]
        lengths += [float(v) for v in np.quantile(self.dist[off], RANGE_QUANTILES)]
        return np.unique(np.array(lengths))

    def theta0(self) -> np.ndarray:
        return np.concatenate([[0.0], self._cor_start()])

    def start(self, sd: float) -> np.ndarray:
        return np.concatenate([[np.log(sd)], self._cor_start()])


class OrnsteinUhlenbeck(_Positional):
    """Ornstein-Uhlenbeck (continuous-time AR(1)) correlation ``exp(-rate |tau_i - tau_j|)``
    over one-dimensional times (``ou(0 + pos(t) | g)``)."""

    keyword_name = "ou"
    code = 4

    def __init__(self, p: int, coordinates: np.ndarray | None = None, hom: bool = True):
        super().__init__(p, coordinates, hom)
        if self.coordinates.shape[1] != 1:
            raise FormulaError(
                f"ou() is for one-dimensional times; pos() gave {self.coordinates.shape[1]} "
                "coordinates: use exp() for a spatial exponential correlation")

    @property
    def n_cor(self) -> int:
        return 1

    def cor_at_range(self, length: float) -> np.ndarray:
        return np.array([-np.log(length)])      # rate = 1 / length

    def range_of(self, cor: np.ndarray) -> float:
        return float(np.exp(-cor[0]))

    def correlation(self, t: np.ndarray) -> np.ndarray:
        return np.exp(-np.exp(t[0]) * self.dist)

    def correlation_at(self, t: np.ndarray, dist: np.ndarray) -> np.ndarray:
        return np.exp(-np.exp(t[0]) * dist)

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        rate = np.exp(t[0])
        return (-rate * self.dist * np.exp(-rate * self.dist))[None]

    def cor_names(self) -> tuple[str, ...]:
        return ("rate",)

    def cor_parameters(self, t: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(t, dtype=float))

    def cor_from_parameters(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(values, dtype=float))

    def cor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(1), np.full(1, np.inf)


class _Range(_Positional):
    """Correlations with a positive range parameter ``exp(t)`` (and possibly more)."""

    def cor_parameters(self, t: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(t, dtype=float))

    def cor_from_parameters(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(values, dtype=float))

    def cor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_cor), np.full(self.n_cor, np.inf)


class _PoweredExponential(_Range):
    """``exp(-(d / range)^k)``, ``range = exp(t)``: the exponential (k = 1) and Gaussian
    (k = 2) correlations. With ``a = (d / range)^k``, ``d rho / d t = k a exp(-a)``."""

    power = 1

    @property
    def n_cor(self) -> int:
        return 1

    def _scaled(self, t: np.ndarray) -> np.ndarray:
        return (self.dist * np.exp(-t[0])) ** self.power

    def correlation(self, t: np.ndarray) -> np.ndarray:
        return np.exp(-self._scaled(t))

    def correlation_at(self, t: np.ndarray, dist: np.ndarray) -> np.ndarray:
        return np.exp(-(np.asarray(dist, dtype=float) * np.exp(-t[0])) ** self.power)

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        a = self._scaled(t)
        return (self.power * a * np.exp(-a))[None]

    def cor_names(self) -> tuple[str, ...]:
        return ("range",)


class Exponential(_PoweredExponential):
    """Exponential spatial correlation ``exp(-d / range)``."""

    keyword_name = "exp"
    code = 5
    power = 1


class Gaussian(_PoweredExponential):
    """Gaussian spatial correlation ``exp(-d^2 / range^2)``."""

    keyword_name = "gau"
    code = 6
    power = 2


class Matern(_Range):
    """Matern spatial correlation with range ``exp(t_1)`` and smoothness ``exp(t_2)``
    (TMB's ``matern``; smoothness 1/2 is the exponential correlation)."""

    keyword_name = "mat"
    code = 7

    @property
    def n_cor(self) -> int:
        return 2

    def _pairs(self):
        """The distinct positive distances and where each off-diagonal entry takes its
        value from: ``R`` is symmetric (and a grid repeats distances), so its Bessel
        functions are evaluated once per distinct distance, not per entry."""
        pairs = self.__dict__.get("_pairs_memo")
        if pairs is None:
            off = self.dist > 0
            d, inverse = np.unique(self.dist[off], return_inverse=True)
            pairs = self._pairs_memo = (off, d, inverse.ravel())
        return pairs

    def _parts(self, t: np.ndarray):
        """``(nu, off, inverse, x, c x^nu, K_nu(x))`` at ``t`` over the distinct distances
        (``x = d / range``), remembered for the last ``t``: the correlation and its
        Jacobian at the same parameters share them."""
        key = np.ascontiguousarray(t, dtype=float).tobytes()
        memo = self.__dict__.get("_parts_memo")
        if memo is not None and memo[0] == key:
            return memo[1]
        rng, nu = float(np.exp(t[0])), float(np.exp(t[1]))
        off, d, inverse = self._pairs()
        x = d / rng
        # on the log scale: gamma(nu) 2^(nu - 1) overflows a float beyond nu ~ 170 (the
        # optimizer's trial steps go there), where x^nu K_nu(x) overflows as well
        with np.errstate(over="ignore", invalid="ignore"):
            c = float(np.exp(-special.gammaln(nu) - (nu - 1.0) * np.log(2.0)))
            cxnu = c * x ** nu
            parts = (nu, off, inverse, x, cxnu, special.kv(nu, x))
        self._parts_memo = (key, parts)
        return parts

    def correlation(self, t: np.ndarray) -> np.ndarray:
        nu, off, inverse, _, cxnu, kv = self._parts(t)
        R = np.ones((self.p, self.p))
        with np.errstate(over="ignore", invalid="ignore"):
            R[off] = (cxnu * kv)[inverse]
        if not np.all(np.isfinite(R)):
            # a smoothness so large that x^nu K_nu(x) overflows: no usable matrix there
            # (reported as a failed factorization, as a non-positive-definite one is)
            raise np.linalg.LinAlgError("Matern correlation not finite at smoothness "
                                        f"{nu:.3g}")
        return R

    def correlation_at(self, t: np.ndarray, dist: np.ndarray) -> np.ndarray:
        d = np.asarray(dist, dtype=float)
        rng, nu = float(np.exp(t[0])), float(np.exp(t[1]))
        out = np.ones(d.shape)
        pos = d > 0
        x = d[pos] / rng
        with np.errstate(over="ignore", invalid="ignore"):
            c = float(np.exp(-special.gammaln(nu) - (nu - 1.0) * np.log(2.0)))
            out[pos] = c * x ** nu * special.kv(nu, x)
        return out

    def correlation_jacobian(self, t: np.ndarray) -> np.ndarray:
        nu, off, inverse, x, cxnu, kv = self._parts(t)
        out = np.zeros((2, self.p, self.p))
        with np.errstate(over="ignore", invalid="ignore"):
            # d/dt1 (x = d e^{-t1}, dx/dt1 = -x; d[x^nu K_nu(x)]/dx = -x^nu K_{nu-1}(x))
            out[0][off] = (cxnu * x * special.kv(nu - 1.0, x))[inverse]
            # d/dt2 = nu d/dnu of c(nu) x^nu K_nu(x)
            dnu = cxnu * kv * (np.log(x) - special.digamma(nu) - np.log(2.0)) \
                + cxnu * bessel_k_order_derivative(nu, x)
            out[1][off] = (nu * dnu)[inverse]
        return out

    def cor_names(self) -> tuple[str, ...]:
        return ("range", "smoothness")
