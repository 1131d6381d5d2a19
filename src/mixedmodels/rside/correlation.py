r"""Residual correlation structures, nlme's ``corStruct`` classes.

Each structure is a small frozen spec (what the user writes: ``cor_ar1(form="~ time |
Subject")``) and, once bound to the rows of a fit, a :class:`BoundCorrelation` that turns
its unconstrained parameters ``u`` into the within-group correlation matrices ``C_i`` and
whitens data with them:

.. math:: \tilde M_i = L_i^{-1} M_i, \qquad L_i L_i' = C_i, \qquad
          \log|C| = \sum_i 2 \sum_k \log (L_i)_{kk}.

The generic path computes ``C_i`` for every batch of equally sized groups and factors them
with one batched Cholesky. AR(1) and continuous-time AR(1) are Markov, so their whitening
is closed form (a difference with the previous observation in time, Prais-Winsten), and
compound symmetry has the closed-form inverse square root
``(1 - rho)^{-1/2} (I - c J / n_i)``, ``c = 1 - sqrt((1 - rho) / (1 - rho + n_i rho))``;
these cost O(n) per evaluation. Any square root ``W_i`` with ``W_i' W_i = C_i^{-1}`` gives
the same likelihood; the Cholesky one is kept for residuals and simulation.

The unconstrained scales are nlme's (``coef(cs, unconstrained = TRUE)``), so that its
optimizer and ours see the same surface and ``intervals()`` are built on the same scale:
AR(1) ``log((1 + phi) / (1 - phi))``; CAR(1) ``log(phi / (1 - phi))``; compound symmetry
``log((rho + 1/(m - 1)) / (1 - rho))`` with ``m`` the largest group; ARMA the partial
autocorrelations of :mod:`.arma`; the general correlation matrix nlme's spherical
parameterization of its Cholesky factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dpotrf

from .._errors import DataError, FormulaError
from ..design.response import evaluate_numeric
from ..linalg.lapack import solve_lower
from .arma import (
    arma_acf,
    arma_acf_and_jacobian,
    arma_acf_jacobian,
    arma_constrained,
    arma_unconstrained,
    is_low_order,
    low_order_acf,
)
from .banded import BandedWhitening
from .blocks import RowBlocks
from .form import StructureForm, parse_form
from .patterns import shared_patterns

__all__ = [
    "BoundCorrelation",
    "CorAR1",
    "CorARMA",
    "CorCAR1",
    "CorCompSymm",
    "CorSymm",
    "CorrelationStructure",
    "covariate_values",
]

#: Values closer than this to an integer count as integers (times read from text).
INTEGER_TOL = 1e-8
#: Largest absolute unconstrained value: beyond it a correlation is within ~1e-13 of its
#: bound and the correlation matrices lose definiteness in double precision.
UNCONSTRAINED_MAX = 30.0


def covariate_values(expr: str, frame: pd.DataFrame, what: str) -> np.ndarray:
    """A covariate of a structure's form, as floats, with the structure named in errors.

    Parameters
    ----------
    expr : str
        Column name or numeric expression.
    frame : pandas.DataFrame
        The model frame.
    what : str
        The structure (``"cor_ar1(form='~ time | Subject')"``).

    Returns
    -------
    ndarray (n,)
    """
    values = evaluate_numeric(expr, frame, f"covariate of {what}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{what}: the covariate {expr!r} has {int(bad.sum())} missing or "
                        f"infinite values (first at row {frame.index[np.argmax(bad)]!r})")
    return values


def _batch_cholesky(C: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factors of the ``(G, s, s)`` matrices ``C``, or None where one is not
    positive definite. One matrix (a single group or pattern: a spatial model without
    groups) by LAPACK's ``dpotrf`` directly -- numpy's batched ``cholesky`` costs twice as
    much on one 80-row matrix -- several by numpy's."""
    if C.shape[0] == 1:
        L, info = dpotrf(C[0], lower=1, clean=1)
        return L[None] if info == 0 else None
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return None


@dataclass(frozen=True)
class CorrelationStructure:
    """Base of the correlation specs: a ``form`` and optional start / fixed values.

    Attributes
    ----------
    form : str
        nlme's ``form``: ``"~ time | Subject"``, ``"~ x + y"``, ``"~ 1 | g"``.
    value : tuple of float or None
        Starting values on the natural scale (nlme's ``value``); None for nlme's defaults.
    fixed : bool
        Hold the parameters at ``value`` instead of estimating them.
    """

    form: str = "~ 1"
    value: tuple[float, ...] | None = None
    fixed: bool = False

    #: nlme's class name, for display
    nlme_name: ClassVar[str] = ""
    #: our spelling, for error messages
    label: ClassVar[str] = ""
    #: the correlation has kinks in its parameters (``1 - d / range`` changes slope as the
    #: range passes each distance): the criterion is only piecewise smooth, and a
    #: quadratic-model optimizer can stall on a kink (the fit then restarts, see
    #: :func:`mixedmodels.fitting.rside._optimize`)
    kinked: ClassVar[bool] = False

    def parsed_form(self) -> StructureForm:
        """The form, read (see :func:`~mixedmodels.rside.form.parse_form`)."""
        parsed = parse_form(self.form, self.describe())
        if parsed.fitted:
            raise FormulaError(f"{self.describe()}: fitted(.) is not a covariate of a "
                               "correlation structure; name a time or position column")
        return parsed

    def describe(self) -> str:
        """``cor_ar1(form='~ time | Subject')``: how the user wrote it."""
        return f"{self.label}(form={self.form!r})"

    def bind(self, frame: pd.DataFrame, blocks: RowBlocks,
             form: StructureForm) -> BoundCorrelation:
        """The structure on the rows of ``frame`` grouped by ``blocks``.

        Parameters
        ----------
        frame : pandas.DataFrame
            The model frame.
        blocks : RowBlocks
            The groups of ``form``.
        form : StructureForm
            The form actually used (lmer fills in the grouping when none is written).

        Returns
        -------
        BoundCorrelation
        """
        raise NotImplementedError


class BoundCorrelation:
    """A correlation structure on data (see the module docstring).

    Subclasses set ``names`` (natural-scale parameter names), ``start`` (unconstrained) and
    implement :meth:`natural`, :meth:`unconstrained` and :meth:`batch_matrices`; they may
    override :meth:`whiten` with a closed form.
    """

    def __init__(self, spec: CorrelationStructure, blocks: RowBlocks, form: StructureForm,
                 names: tuple[str, ...], start: np.ndarray):
        self.spec = spec
        self.blocks = blocks
        self.form = form
        self.names = tuple(names)
        self.start = np.asarray(start, dtype=float)
        if spec.value is not None:
            value = np.atleast_1d(np.asarray(spec.value, dtype=float))
            if value.shape != (len(self.names),):
                raise ValueError(f"{spec.describe()}: value has {value.size} numbers; the "
                                 f"structure has {len(self.names)} ({', '.join(self.names)})")
            self.start = self.unconstrained(value)

    @property
    def n_par(self) -> int:
        """Number of estimated parameters (0 when ``fixed``)."""
        return 0 if self.spec.fixed else len(self.names)

    def full(self, u: np.ndarray) -> np.ndarray:
        """All unconstrained parameters: the estimated ones, or the fixed start."""
        return self.start if self.spec.fixed else np.asarray(u, dtype=float)

    def natural(self, u: np.ndarray) -> np.ndarray:
        """Natural-scale values (``phi``, ``rho``, ``range``) from unconstrained ``u``.

        Parameters
        ----------
        u : ndarray

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def unconstrained(self, nat: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`natural`.

        Parameters
        ----------
        nat : ndarray

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def kinks(self) -> np.ndarray:
        """Values of the first unconstrained parameter where the correlation's first
        derivative jumps (sorted; empty for a smooth structure; see
        :attr:`CorrelationStructure.kinked`)."""
        return np.zeros(0)

    # nlme's intervals use the unconstrained scale except for the general correlation
    # matrix, whose apVar uses each correlation's Fisher z (corNatural); see CorSymm.
    def to_interval_scale(self, u: np.ndarray) -> np.ndarray:
        """Parameters on the scale of nlme's approximate covariance (``apVar``)."""
        return np.asarray(u, dtype=float)

    def from_interval_scale(self, v: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_interval_scale`."""
        return np.asarray(v, dtype=float)

    def natural_from_interval_scale(self, v: np.ndarray) -> np.ndarray:
        """Natural values at a point of the interval scale (interval end points)."""
        return self.natural(self.from_interval_scale(v))

    def batch_matrices(self, u: np.ndarray) -> list[np.ndarray]:
        """``C_i`` for every batch of groups: ``(G_s, s, s)`` arrays."""
        raise NotImplementedError

    def band_storage(self, u: np.ndarray) -> np.ndarray | None:
        """The band storage of :meth:`batch_matrices` at full ``u`` in
        :class:`~.banded.BandedWhitening`'s layout (``self._banded``), where the structure
        builds it without the matrices; None (the default) to gather it from them."""
        return None

    def cholesky(self, u: np.ndarray) -> list[np.ndarray] | None:
        """Lower Cholesky factors of :meth:`batch_matrices` (None when one is not
        positive definite)."""
        out = []
        for C in self.batch_matrices(self.full(u)):
            L = _batch_cholesky(C)
            if L is None:
                return None
            out.append(L)
        return out

    def normalize(self, u: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``T_i r_i`` per group with ``T_i T_i' = C_i^{-1}``, the factor nlme's
        ``residuals(type = "normalized")`` applies: ``L_i^{-1}`` of the lower Cholesky
        factor of ``C_i`` with the rows in data order (compound symmetry overrides it
        with nlme's Helmert factor)."""
        out = r.copy()
        for rows, L in zip(self.blocks.batches, self.cholesky(u), strict=True):
            out[rows] = np.linalg.solve(L, r[rows][:, :, None])[:, :, 0]
        return out

    def whiten(self, u: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(L^{-1} M, log|C|)`` with rows in their original positions, or None when a
        ``C_i`` is not positive definite.

        Parameters
        ----------
        u : ndarray
            Unconstrained parameters.
        M : ndarray (n, k)

        Returns
        -------
        tuple or None
        """
        shared = self._shared()
        if shared is not None:
            return self._whiten_shared(self.full(u), M, *shared)
        if "_banded" not in self.__dict__:
            # several groups: one band factorization (.banded) where it pays, made once
            batches = self.blocks.batches
            self._banded = BandedWhitening(batches) if BandedWhitening.worthwhile(batches) \
                else None
        if self._banded is not None:
            ab = self.band_storage(self.full(u))
            if ab is not None:
                return self._banded.whiten_band(ab, M)
            return self._banded.whiten(self.batch_matrices(self.full(u)), M)
        factors = self.cholesky(u)
        if factors is None:
            return None
        out = np.empty_like(M)
        logdet = 0.0
        for rows, L in zip(self.blocks.batches, factors, strict=True):
            if rows.shape[1] == 1:
                out[rows[:, 0]] = M[rows[:, 0]]
                continue
            if L.shape[0] == 1:      # one group (one block): a triangular solve, not an LU
                # (LAPACK's dtrtrs directly, as scipy's solve_triangular calls it for a
                # C-ordered factor: its wrappers cost a fifth of a dense whitening)
                out[rows[0]] = solve_lower(L[0], M[rows[0]])
            else:
                out[rows] = np.linalg.solve(L, M[rows])
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        return out, logdet

    # -- derivatives (the analytic gradient of the fits' criteria) -----------------------
    @property
    def has_gradient(self) -> bool:
        """The structure provides :meth:`batch_derivatives` (or its own
        :meth:`whiten_vjp`), so the criteria have an analytic gradient in its
        parameters."""
        cls = type(self)
        return (cls.batch_derivatives is not BoundCorrelation.batch_derivatives
                or cls.whiten_vjp is not BoundCorrelation.whiten_vjp)

    def batch_derivatives(self, u: np.ndarray) -> list[np.ndarray]:
        """``dC_i / du_j`` for every batch of groups, at full ``u``: ``(n_u, G_s, s, s)``
        arrays (``n_u`` all parameters, estimated or not)."""
        raise NotImplementedError

    def whiten_vjp(self, u: np.ndarray, M: np.ndarray):
        r""":meth:`whiten` and its pullback: ``(L^{-1} M, log|C|, pullback)``, or None when
        a ``C_i`` is not positive definite.

        ``pullback(B)`` takes ``B = df / d(L^{-1} M)`` of a criterion ``f`` that depends on
        the whitened data only through their cross-products ``M' C^{-1} M`` and adds
        ``log|C|`` with coefficient 1 (both of the fits' criteria do), and returns
        ``(df/du, df/dM)``. With ``T_i = L_i^{-1}``, ``H_i = C_i^{-1} M_i = T_i' \tilde M_i``
        and ``G = df / d(M'C^{-1}M)`` (so ``B = 2 \tilde M G``):

        .. math:: \frac{df}{du_j} = \sum_i \langle C_i^{-1} - H_i G H_i',\;
                  \partial C_i / \partial u_j \rangle, \qquad
                  H_i G H_i' = \tfrac12 T_i' (B_i \tilde M_i') T_i, \qquad
                  \frac{df}{dM_i} = T_i' B_i,

        since ``d(M'C^{-1}M) = -M'C^{-1} dC C^{-1} M`` and ``d log|C| = tr(C^{-1} dC)``.
        This generic path factors every group (no shared factors); the Markov structures
        have a closed form.

        Parameters
        ----------
        u : ndarray
        M : ndarray (n, k)

        Returns
        -------
        tuple or None
        """
        uf = self.full(u)
        try:
            factors = [np.linalg.cholesky(C) for C in self.batch_matrices(uf)]
        except np.linalg.LinAlgError:
            return None
        out = np.empty_like(M)
        logdet = 0.0
        inverses = []
        for rows, L in zip(self.blocks.batches, factors, strict=True):
            T = np.linalg.inv(L) * np.tri(L.shape[-1])      # exactly lower triangular
            inverses.append(T)
            out[rows] = np.matmul(T, M[rows])
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))

        def pullback(B):
            grad = np.zeros(uf.size)
            dM = np.empty_like(B)
            for rows, T, dC in zip(self.blocks.batches, inverses,
                                   self.batch_derivatives(uf), strict=True):
                Tt = np.swapaxes(T, 1, 2)
                Bb = B[rows]
                dM[rows] = np.matmul(Tt, Bb)
                S = np.matmul(Bb, np.swapaxes(out[rows], 1, 2))
                S = 0.5 * (S + np.swapaxes(S, 1, 2))
                Q = np.matmul(Tt, T) - 0.5 * np.matmul(np.matmul(Tt, S), T)
                grad += np.einsum("jgab,gab->j", dC, Q)
            return (np.zeros(0) if self.spec.fixed else grad), dM

        return out, logdet, pullback

    # -- shared factors of groups at the same positions (see .patterns) ------------------
    def pattern_key(self) -> np.ndarray | None:
        """The covariate values ``C_i`` depends on, ``(n,)`` or ``(n, d)``; None when the
        structure has no such key (closed-form whitening, no shared factors)."""
        return None

    def geometry(self, rows: np.ndarray) -> np.ndarray:
        """What :meth:`matrices` needs of a ``(G, s)`` batch of rows (lags, distances)."""
        raise NotImplementedError

    def matrices(self, u: np.ndarray, geometries: list[np.ndarray]) -> list[np.ndarray]:
        """``C`` of each batch described by :meth:`geometry`, at full ``u``."""
        raise NotImplementedError

    def _shared(self):
        """``(classes, geometries)`` of :func:`~.patterns.shared_patterns`, computed once;
        None when the groups have too many distinct patterns."""
        if "_shared_plan" not in self.__dict__:
            key = self.pattern_key()
            plan = None if key is None else shared_patterns(self.blocks, key)
            self._shared_plan = None if plan is None else \
                (plan, [self.geometry(c.rep_rows) for c in plan])
        return self._shared_plan

    def _whiten_shared(self, u, M, classes, geometries):
        """:meth:`whiten` by one factor per pattern (module docstring of .patterns)."""
        out = np.empty_like(M)
        logdet = 0.0
        for cls, C in zip(classes, self.matrices(u, geometries), strict=True):
            L = _batch_cholesky(C)
            if L is None:
                return None
            Mb = M[cls.rows]                                   # (G, m, k)
            if L.shape[0] == 1:
                # one pattern: one triangular solve for all its groups side by side (row j
                # of the solution reads rows <= j only, so the padding slots of shorter
                # groups never reach their valid rows)
                g, m, k = Mb.shape
                X = solve_lower(L[0], Mb.transpose(1, 0, 2).reshape(m, g * k)) \
                    .reshape(m, g, k).transpose(1, 0, 2)
            else:
                # T = L^{-1}; tril drops the rounding an LU leaves above the diagonal, so
                # the padding slots of shorter groups never mix into their valid rows
                T = np.linalg.inv(L) * cls.lower
                X = np.matmul(T[cls.pattern], Mb)
            out[cls.rows[cls.valid]] = X[cls.valid]
            log_diag = np.cumsum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
            logdet += 2.0 * float(np.sum(log_diag[cls.pattern, cls.last]))
        return out, logdet


# -- helpers for the serial structures -----------------------------------------------------
def _positions(spec: CorrelationStructure, frame: pd.DataFrame, blocks: RowBlocks,
               form: StructureForm, integer: bool) -> np.ndarray:
    """The time covariate (or 1..n_i in data order), checked for duplicates in a group."""
    if not form.covariates:
        return blocks.position.astype(float) + 1.0
    # the covariate side is one expression, as nlme evaluates it ('~ t + 1': t + 1)
    expr = form.expression
    t = covariate_values(expr, frame, spec.describe())
    if integer:
        off = np.abs(t - np.round(t))
        if np.any(off > INTEGER_TOL):
            i = int(np.argmax(off))
            raise DataError(
                f"{spec.describe()}: the time covariate {expr!r} must hold whole numbers "
                f"(positions in a sequence, gaps allowed); row {frame.index[i]!r} has "
                f"{t[i]:g}. Use cor_car1 for continuous times")
        t = np.round(t)
    order = np.lexsort((t, blocks.codes))
    same = (np.diff(blocks.codes[order]) == 0) & (np.diff(t[order]) == 0)
    if same.any():
        dup = np.zeros(t.size, dtype=bool)
        dup[order[1:][same]] = True
        dup[order[:-1][same]] = True
        i = int(np.argmax(dup))
        where = (f" within group {_group_label(frame, form, i)!r}" if form.groups else "")
        raise DataError(
            f"{spec.describe()}: the time covariate {expr!r} has the value {t[i]:g} more "
            f"than once{where} ({int(dup.sum())} rows share a time with another row of "
            "their group); times must be unique within each group -- add the grouping "
            "factor after '|' if the series are separate")
    return t


def _group_label(frame: pd.DataFrame, form: StructureForm, row: int) -> str:
    return ":".join(str(frame[g].iloc[row]) for g in form.groups)


def _lag_batches(blocks: RowBlocks, t: np.ndarray) -> list[np.ndarray]:
    return [np.abs(t[rows][:, :, None] - t[rows][:, None, :]) for rows in blocks.batches]


class _MarkovMixin:
    """Closed-form whitening of a Markov correlation ``corr(t, t') = phi^{|t - t'|}``.

    Sorted by time within a group, row ``k`` becomes
    ``(m_k - r_k m_{k-1}) / sqrt(1 - r_k^2)`` with ``r_k = phi^{t_k - t_{k-1}}``, the first
    row of each group unchanged; ``log|C| = sum log(1 - r_k^2)``.
    """

    def _lag_matrices(self) -> list[np.ndarray]:
        """``|t - t'|`` within the groups of each batch, made on first use: the banded
        criteria (:class:`~.gram.BandedGram`) never need them."""
        if self._lags is None:
            self._lags = _lag_batches(self.blocks, self._t)
        return self._lags

    def _init_markov(self, t: np.ndarray) -> None:
        order = np.lexsort((t, self.blocks.codes))
        # (array methods and ufuncs in place of np.ones, np.flatnonzero and np.array_equal:
        # their wrappers cost more than this integer bookkeeping on a few hundred rows)
        follows = np.empty(order.size, dtype=bool)       # ~first: row follows another
        follows[:1] = False
        np.equal(self.blocks.codes[order[1:]], self.blocks.codes[order[:-1]],
                 out=follows[1:])
        at = follows.nonzero()[0]
        self._rows = order[at]
        self._prev = order[at - 1]
        self._lag = t[self._rows] - t[self._prev]
        # rows already in group-then-time order (the usual layout of longitudinal data):
        # every row follows its predecessor, and the whitening needs slices, not gathers
        self._in_order = bool((order == np.arange(order.size)).all())
        # one lag everywhere (equally spaced times, the usual case): r is one number, and
        # the whitening is three elementwise passes over M with scalars
        lag = self._lag
        self._one_lag = float(lag[0]) if lag.size and lag.min() == lag.max() else None
        if self._in_order and self._one_lag is not None:
            #: 1.0 where row k >= 1 follows its predecessor in its group, else 0.0
            self._follows = np.zeros(order.size - 1)
            self._follows[self._rows - 1] = 1.0

    def _markov_whiten(self, phi: float, M: np.ndarray):
        if self._one_lag is not None and self._in_order and M.shape[0] > 1:
            r = phi ** self._one_lag
            one_minus = 1.0 - r * r
            if not one_minus > 0.0:
                return None
            # row k -> (m_k - r m_{k-1}) / s on following rows, unchanged on first rows
            f = self._follows[:, None]
            out = M.copy()
            out[1:] -= (r * f) * M[:-1]
            out[1:] *= 1.0 + ((1.0 / math.sqrt(one_minus)) - 1.0) * f
            return out, self._rows.size * math.log(one_minus)
        r = phi ** self._lag
        one_minus = 1.0 - r * r
        if np.any(one_minus <= 0.0):
            return None
        out = M.copy()
        if self._in_order:
            # r = 0 and a unit scale on each group's first row leave it unchanged
            r_all = np.zeros(M.shape[0])
            s_all = np.ones(M.shape[0])
            r_all[self._rows] = r
            s_all[self._rows] = np.sqrt(one_minus)
            out[1:] -= r_all[1:, None] * M[:-1]
            out[1:] /= s_all[1:, None]
        else:
            out[self._rows] = (M[self._rows] - r[:, None] * M[self._prev]) \
                / np.sqrt(one_minus)[:, None]
        return out, float(np.sum(np.log(one_minus)))

    def _markov_vjp(self, phi: float, dphi_du: float, M: np.ndarray):
        r"""The whitening and its pullback (see :meth:`BoundCorrelation.whiten_vjp`) in
        closed form: with ``s_k = sqrt(1 - r_k^2)`` and ``w_k = (m_k - r_k m_{k-1}) / s_k``,
        ``dw_k / dr_k = (r_k w_k / s_k - m_{k-1}) / s_k``,
        ``d log(1 - r_k^2) / dr_k = -2 r_k / (1 - r_k^2)`` and
        ``dr_k / dphi = lag_k phi^{lag_k - 1}``; O(n) like the whitening."""
        res = self._markov_whiten(phi, M)
        if res is None:
            return None
        out, logdet = res
        lag, rows, prev = self._lag, self._rows, self._prev
        r = phi ** lag
        s = np.sqrt(1.0 - r * r)
        dr = lag * phi ** (lag - 1.0) * dphi_du

        def pullback(B):
            Bk = B[rows]
            dw = (r[:, None] * out[rows] / s[:, None] - M[prev]) / s[:, None]
            g = float(np.sum(dr * (np.sum(Bk * dw, axis=1) - 2.0 * r / (s * s))))
            dM = B.copy()
            dM[rows] = Bk / s[:, None]
            dM[prev] -= (r / s)[:, None] * Bk       # each row precedes at most one row
            return (np.zeros(0) if self.spec.fixed else np.array([g])), dM

        return out, logdet, pullback


# -- AR(1) -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorAR1(CorrelationStructure):
    """Autoregressive of order 1 at integer times: ``corr = phi^{|t - t'|}``
    (nlme's ``corAR1``; gaps in the times are allowed)."""

    nlme_name: ClassVar[str] = "corAR1"
    label: ClassVar[str] = "cor_ar1"

    def bind(self, frame, blocks, form):
        return _BoundAR1(self, frame, blocks, form)


class _BoundAR1(_MarkovMixin, BoundCorrelation):
    def __init__(self, spec, frame, blocks, form):
        self.blocks = blocks
        t = _positions(spec, frame, blocks, form, integer=True)
        self._t, self._lags = t, None        # (lag matrices made when first needed)
        self._init_markov(t)
        super().__init__(spec, blocks, form, ("phi",), np.zeros(1))

    def natural(self, u):
        return np.tanh(0.5 * np.asarray(u, dtype=float))

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        if np.any(np.abs(nat) >= 1.0):
            raise ValueError(f"{self.spec.describe()}: phi must lie in (-1, 1)")
        return np.log((1.0 + nat) / (1.0 - nat))

    def batch_matrices(self, u):
        phi = float(self.natural(u)[0])
        return [phi ** lag for lag in self._lag_matrices()]

    def markov_phi(self, u) -> tuple[float, float]:
        """``(phi, dphi/du)`` at (estimated) ``u``."""
        phi = float(self.natural(self.full(u))[0])
        return phi, 0.5 * (1.0 - phi * phi)

    def whiten(self, u, M):
        # tanh(u / 2) on a Python float (natural() on a 1-array costs more than this)
        return self._markov_whiten(math.tanh(0.5 * float(self.full(u)[0])), M)

    def whiten_vjp(self, u, M):
        return self._markov_vjp(*self.markov_phi(u), M)


# -- continuous-time AR(1) -------------------------------------------------------------------
@dataclass(frozen=True)
class CorCAR1(CorrelationStructure):
    """Continuous-time AR(1): ``corr = phi^{|t - t'|}``, ``0 < phi < 1``, any real times
    (nlme's ``corCAR1``)."""

    nlme_name: ClassVar[str] = "corCAR1"
    label: ClassVar[str] = "cor_car1"

    def bind(self, frame, blocks, form):
        return _BoundCAR1(self, frame, blocks, form)


class _BoundCAR1(_MarkovMixin, BoundCorrelation):
    def __init__(self, spec, frame, blocks, form):
        self.blocks = blocks
        t = _positions(spec, frame, blocks, form, integer=False)
        self._t, self._lags = t, None        # (lag matrices made when first needed)
        self._init_markov(t)
        # nlme's default start: phi = 0.2
        super().__init__(spec, blocks, form, ("phi",), np.array([np.log(0.2 / 0.8)]))

    def natural(self, u):
        return 1.0 / (1.0 + np.exp(-np.asarray(u, dtype=float)))

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        if np.any((nat <= 0.0) | (nat >= 1.0)):
            raise ValueError(f"{self.spec.describe()}: phi must lie in (0, 1)")
        return np.log(nat / (1.0 - nat))

    def batch_matrices(self, u):
        phi = float(self.natural(u)[0])
        return [phi ** lag for lag in self._lag_matrices()]

    def markov_phi(self, u) -> tuple[float, float]:
        """``(phi, dphi/du)`` at (estimated) ``u``."""
        phi = float(self.natural(self.full(u))[0])
        return phi, phi * (1.0 - phi)

    def whiten(self, u, M):
        return self._markov_whiten(float(self.natural(self.full(u))[0]), M)

    def whiten_vjp(self, u, M):
        return self._markov_vjp(*self.markov_phi(u), M)


# -- ARMA(p, q) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorARMA(CorrelationStructure):
    """ARMA(p, q) at integer times (nlme's ``corARMA``).

    Attributes
    ----------
    p, q : int
        Autoregressive and moving-average orders.
    """

    p: int = 0
    q: int = 0

    nlme_name: ClassVar[str] = "corARMA"
    label: ClassVar[str] = "cor_arma"

    def describe(self) -> str:
        return f"cor_arma(p={self.p}, q={self.q}, form={self.form!r})"

    def bind(self, frame, blocks, form):
        for name, k in (("p", self.p), ("q", self.q)):
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
                raise ValueError(f"{self.describe()}: {name} must be a whole number >= 0")
        if self.p + self.q == 0:
            raise ValueError(f"{self.describe()}: at least one of p and q must be > 0 "
                             "(cor_arma(p=1) is AR(1))")
        return _BoundARMA(self, frame, blocks, form)


class _BoundARMA(BoundCorrelation):
    def __init__(self, spec, frame, blocks, form):
        self.blocks = blocks
        t = _positions(spec, frame, blocks, form, integer=True)
        self._t = t
        self._lags = [self.geometry(rows) for rows in blocks.batches]
        self.max_lag = int(max((lag.max() for lag in self._lags), default=0))
        if max(spec.p, spec.q) > self.max_lag:
            raise DataError(f"{spec.describe()}: the order exceeds the largest lag in the "
                            f"data ({self.max_lag})")
        names = tuple(f"phi{i + 1}" for i in range(spec.p)) + \
            tuple(f"theta{i + 1}" for i in range(spec.q))
        super().__init__(spec, blocks, form, names, np.zeros(spec.p + spec.q))

    def natural(self, u):
        return arma_constrained(np.clip(u, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX),
                                self.spec.p)

    def unconstrained(self, nat):
        return arma_unconstrained(nat, self.spec.p)

    def pattern_key(self):
        return self._t

    def geometry(self, rows):
        t = self._t[rows]
        return np.abs(t[:, :, None] - t[:, None, :]).astype(np.int64)

    def matrices(self, u, geometries):
        if is_low_order(self.spec.p, self.spec.q):
            # AR(1), MA(1), ARMA(1, 1): closed form (the same numbers to rounding)
            uc = np.clip(np.asarray(u, dtype=float), -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX)
            acf = low_order_acf(uc.tolist(), self.spec.p, self.max_lag)
        else:
            coef = self.natural(u)
            acf = arma_acf(coef[:self.spec.p], coef[self.spec.p:], self.max_lag)
        return [acf[lag] for lag in geometries]

    def batch_matrices(self, u):
        return self.matrices(u, self._lags)

    def batch_derivatives(self, u):
        return self.matrix_derivatives(u, self._lags)

    def matrix_derivatives(self, u, geometries):
        """``dC / du`` of each batch described by :meth:`geometry`, at full ``u``:
        ``(n_u, G, s, s)`` arrays."""
        dacf = arma_acf_jacobian(np.clip(u, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX),
                                 self.spec.p, self.max_lag)          # (n_u, max_lag + 1)
        return [dacf[:, lag] for lag in geometries]

    def matrices_and_derivatives(self, u, geometries):
        """:meth:`matrices` and :meth:`matrix_derivatives` from the same complex-step
        passes (:func:`~.arma.arma_acf_and_jacobian`)."""
        acf, dacf = arma_acf_and_jacobian(np.clip(u, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX),
                                          self.spec.p, self.max_lag)
        return [acf[lag] for lag in geometries], [dacf[:, lag] for lag in geometries]


# -- compound symmetry -----------------------------------------------------------------------
@dataclass(frozen=True)
class CorCompSymm(CorrelationStructure):
    """Compound symmetry: one correlation ``rho`` between any two rows of a group
    (nlme's ``corCompSymm``); ``rho > -1 / (m - 1)`` for the largest group size ``m``."""

    nlme_name: ClassVar[str] = "corCompSymm"
    label: ClassVar[str] = "cor_comp_symm"

    def bind(self, frame, blocks, form):
        if form.covariates:
            raise FormulaError(f"{self.describe()}: compound symmetry has no covariate; "
                               "write '~ 1 | group'")
        return _BoundCompSymm(self, blocks, form)


class _BoundCompSymm(BoundCorrelation):
    def __init__(self, spec, blocks, form):
        self.spec, self.blocks = spec, blocks
        m = blocks.max_size
        self._inf = -1.0 / (m - 1) if m > 1 else -1.0
        # group sums by np.add.reduceat over the rows sorted by group (cheaper to set up
        # and to apply than a sparse indicator matrix on data of this size)
        self._by_group = np.argsort(blocks.codes, kind="stable")
        # rows already sorted by group: the sums read M as it is (no gathered copy)
        self._grouped = bool(np.array_equal(self._by_group, np.arange(blocks.n)))
        self._group_starts = np.concatenate([[0], np.cumsum(blocks.sizes)[:-1]])
        self._sizes = blocks.sizes.astype(float)
        self._equal_sizes = bool(np.all(blocks.sizes == blocks.sizes[0]))
        #: ``(M, its rows' group means)`` of the last whitening (:meth:`_row_means`)
        self._means_of: tuple[np.ndarray, np.ndarray] | None = None
        super().__init__(spec, blocks, form, ("rho",), self._start())

    def _start(self):
        return self.unconstrained(np.zeros(1))

    def natural(self, u):
        e = np.exp(np.clip(np.asarray(u, dtype=float), -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))
        return (e + self._inf) / (e + 1.0)

    def rho(self, u) -> float:
        """``natural(full(u))[0]`` on Python floats (numpy's exp: the same value, bit for
        bit; clip and array calls cost more than a small criterion's evaluation)."""
        x = min(max(float(self.full(u)[0]), -UNCONSTRAINED_MAX), UNCONSTRAINED_MAX)
        e = float(np.exp(np.float64(x)))
        return (e + self._inf) / (e + 1.0)

    def rho_slope(self, rho: float) -> float:
        """``d rho / du`` of the logistic scale at ``rho``: ``(rho - rho_min)(1 - rho) /
        (1 - rho_min)``."""
        inf = self._inf
        return (rho - inf) * (1.0 - rho) / (1.0 - inf)

    def unconstrained(self, nat):
        nat = np.asarray(nat, dtype=float)
        if np.any((nat <= self._inf) | (nat >= 1.0)):
            raise ValueError(f"{self.spec.describe()}: rho must lie in "
                             f"({self._inf:g}, 1) for groups of up to "
                             f"{self.blocks.max_size} rows")
        return np.log((nat - self._inf) / (1.0 - nat))

    def batch_matrices(self, u):
        rho = float(self.natural(u)[0])
        return [np.broadcast_to((1.0 - rho) * np.eye(r.shape[1]) + rho,
                                (r.shape[0], r.shape[1], r.shape[1])).copy()
                for r in self.blocks.batches]

    def normalize(self, u, r):
        r"""nlme's factor of compound symmetry (``corFactor.corCompSymm``), not the
        Cholesky one: in the eigenbasis of ``C = (1 - rho) I + rho J`` (size ``s``),
        ``T`` has the first row ``1 / sqrt(s (1 + (s - 1) rho))`` (the group mean) and
        row ``i = 1 .. s - 1`` the Helmert contrast ``(-1, .., -1, i, 0, ..) /
        sqrt((1 - rho) i (i + 1))``, so ``T' T = C^{-1}`` and the normalized residuals are
        nlme's, row for row."""
        rho = self.rho(u)
        out = r.copy()
        for rows in self.blocks.batches:
            s = rows.shape[1]
            T = np.zeros((s, s))
            T[0] = 1.0 / math.sqrt(s * (1.0 + (s - 1) * rho))
            for i in range(1, s):
                c = 1.0 / math.sqrt((1.0 - rho) * i * (i + 1))
                T[i, :i] = -c
                T[i, i] = i * c
            out[rows] = r[rows] @ T.T
        return out

    def batch_derivatives(self, u):
        # d rho / du = e (1 - inf) / (e + 1)^2, times J - I
        e = float(np.exp(np.clip(np.asarray(u, dtype=float)[0], -UNCONSTRAINED_MAX,
                                 UNCONSTRAINED_MAX)))
        drho = e * (1.0 - self._inf) / (e + 1.0) ** 2
        return [np.broadcast_to(drho * (1.0 - np.eye(r.shape[1])),
                                (1, r.shape[0], r.shape[1], r.shape[1]))
                for r in self.blocks.batches]

    def whiten(self, u, M):
        # rho on Python floats (natural() on a 1-array costs more than the whitening)
        e = math.exp(min(max(float(self.full(u)[0]), -UNCONSTRAINED_MAX), UNCONSTRAINED_MAX))
        rho = (e + self._inf) / (e + 1.0)
        if rho >= 1.0:
            return None
        row_means = self._row_means(M)
        scale = 1.0 / math.sqrt(1.0 - rho)
        if self._equal_sizes:
            # one group size m: c, log|V| = G ((m - 1) log(1 - rho) + log(1 + (m - 1) rho))
            m = float(self._sizes[0])
            big = 1.0 - rho + m * rho
            if big <= 0.0:
                return None
            c = 1.0 - math.sqrt((1.0 - rho) / big)
            out = (M - c * row_means) * scale
            logdet = self._sizes.size * ((m - 1.0) * math.log1p(-rho) + math.log(big))
            return out, logdet
        n_g = self._sizes
        big = 1.0 - rho + n_g * rho
        if np.any(big <= 0.0):
            return None
        c = 1.0 - np.sqrt((1.0 - rho) / big)
        out = (M - c[self.blocks.codes][:, None] * row_means) * scale
        logdet = float(np.sum((n_g - 1.0) * np.log1p(-rho) + np.log(big)))
        return out, logdet

    def _row_means(self, M: np.ndarray) -> np.ndarray:
        """Every row's group means of ``M``'s columns, ``(n, k)``. The whitening
        ``(M - c_g 1 mean_g(M)') / sqrt(1 - rho)`` is linear in ``M``, whose group means do
        not depend on ``rho``: the objectives whiten the same data at every evaluation, so
        the means of the last ``M`` are kept (by identity; the objectives never modify
        their data in place) and each evaluation is two elementwise passes."""
        cached = self._means_of
        if cached is not None and cached[0] is M:
            return cached[1]
        means = np.add.reduceat(M if self._grouped else M[self._by_group],
                                self._group_starts, axis=0) / self._sizes[:, None]
        row_means = means[self.blocks.codes]
        self._means_of = (M, row_means)
        return row_means


# -- general correlation matrix --------------------------------------------------------------
@dataclass(frozen=True)
class CorSymm(CorrelationStructure):
    """General (unstructured) correlation matrix over the positions ``1..m`` of the time
    covariate (nlme's ``corSymm``); ``m (m - 1) / 2`` correlations."""

    nlme_name: ClassVar[str] = "corSymm"
    label: ClassVar[str] = "cor_symm"

    def bind(self, frame, blocks, form):
        return _BoundSymm(self, frame, blocks, form)


#: Imaginary step of the complex-step derivatives (``Im f(x + ih) / h`` is ``f'(x)`` to
#: rounding: no difference is taken, so the step can be tiny).
COMPLEX_STEP = 1e-30


def _spherical_factor(u: np.ndarray, m: int) -> np.ndarray:
    """nlme's spherical parameterization: column ``i`` of the upper Cholesky factor is a
    unit vector with angles ``pi e^u / (1 + e^u)`` (complex ``u`` for complex-step
    derivatives: the clip applies to the real part)."""
    u = np.asarray(u)
    U = np.zeros((m, m), dtype=complex if np.iscomplexobj(u) else float)
    if np.iscomplexobj(u):
        u = np.clip(u.real, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX) + 1j * u.imag
    else:
        u = np.clip(u, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX)
    angles = np.pi / (1.0 + np.exp(-u))
    k = 0
    for i in range(m):
        rest = 1.0
        for j in range(i):
            U[j, i] = rest * np.cos(angles[k])
            rest *= np.sin(angles[k])
            k += 1
        U[i, i] = rest
    return U


def _spherical_factor_steps(u: np.ndarray, m: int, h: float) -> np.ndarray:
    """:func:`_spherical_factor` at ``u + i h e_j`` for every parameter ``j`` at once: the
    ``(n_u, m, m)`` stack of complex factors of the complex-step derivatives, entry by
    entry as there (the same operations on each step's values) but with one array
    operation per entry for all steps instead of one factor per step -- the per-step
    factors' Python loops were ~90 us of a ~330 us value and gradient of Orthodont's
    corSymm (m = 4, 6 parameters)."""
    n = u.size
    steps = np.tile(np.asarray(u, dtype=float).astype(complex), (n, 1))
    steps[np.arange(n), np.arange(n)] += 1j * h
    steps = np.clip(steps.real, -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX) + 1j * steps.imag
    angles = np.pi / (1.0 + np.exp(-steps))                  # (n_u, n_u): step, angle
    cos, sin = np.cos(angles), np.sin(angles)
    U = np.zeros((n, m, m), dtype=complex)
    k = 0
    for i in range(m):
        rest = np.ones(n, dtype=complex)
        for j in range(i):
            U[:, j, i] = rest * cos[:, k]
            rest = rest * sin[:, k]
            k += 1
        U[:, i, i] = rest
    return U


class _BoundSymm(BoundCorrelation):
    def __init__(self, spec, frame, blocks, form):
        self.blocks = blocks
        t = _positions(spec, frame, blocks, form, integer=True)
        values = np.unique(t)
        if values.size != values[-1] - values[0] + 1 or values[0] != 1:
            raise DataError(
                f"{spec.describe()}: the positions must be the consecutive whole numbers "
                f"1, 2, ..., m (found {values.size} distinct values from {values[0]:g} to "
                f"{values[-1]:g}); recode them, e.g. with a rank within the series")
        self.m = int(values[-1])
        n_cor = self.m * (self.m - 1) // 2
        if n_cor >= t.size:
            # e.g. form='~ 1' without a grouping factor: the whole data is one series and
            # the matrix has more correlations than there are rows (and its derivatives'
            # arrays grow as m^4)
            fix = ("give the grouping factor after '|' (form='~ time | subject') so that "
                   "each group is one series, or " if blocks.sizes.size == 1 else "")
            raise DataError(
                f"{spec.describe()}: a general correlation over {self.m} positions has "
                f"{n_cor} parameters but the data have only {t.size} rows; {fix}use a "
                "structured correlation (cor_ar1, cor_arma, cor_comp_symm)")
        self._t = t
        self._pos = [self.geometry(rows) for rows in blocks.batches]
        iu = np.triu_indices(self.m, 1)
        self._iu = iu
        names = tuple(f"cor({i + 1},{j + 1})" for i, j in zip(*iu, strict=True))
        super().__init__(spec, blocks, form, names, np.zeros(len(names)))

    def _full_matrix(self, u):
        U = _spherical_factor(np.asarray(u, dtype=float), self.m)
        return U.T @ U

    def natural(self, u):
        C = self._full_matrix(u)
        return C[self._iu]

    def unconstrained(self, nat):
        C = np.eye(self.m)
        C[self._iu] = nat
        C = C + np.triu(C, 1).T
        try:
            U = np.linalg.cholesky(C).T
        except np.linalg.LinAlgError:
            raise ValueError(f"{self.spec.describe()}: the values do not form a positive "
                             "definite correlation matrix") from None
        u = []
        for i in range(1, self.m):
            col = U[:i + 1, i]
            # angle_j from cos(angle_j) = U[j, i] / (norm of entries j..i)
            tail = np.sqrt(np.cumsum(col[::-1] ** 2)[::-1])
            ang = np.arccos(np.clip(col[:i] / tail[:i], -1.0, 1.0))
            u.extend(np.log(ang / (np.pi - ang)))
        return np.asarray(u, dtype=float)

    def to_interval_scale(self, u):
        r = self.natural(u)
        return np.log((1.0 + r) / (1.0 - r))

    def from_interval_scale(self, v):
        return self.unconstrained(np.tanh(0.5 * np.asarray(v, dtype=float)))

    def natural_from_interval_scale(self, v):
        # nlme's corNatural: each correlation's own Fisher z, mapped back one by one
        return np.tanh(0.5 * np.asarray(v, dtype=float))

    def pattern_key(self):
        return self._t

    def geometry(self, rows):
        return (self._t[rows] - 1).astype(np.int64)

    def matrices(self, u, geometries):
        C = self._full_matrix(u)
        return [C[pos[:, :, None], pos[:, None, :]] for pos in geometries]

    def batch_matrices(self, u):
        return self.matrices(u, self._pos)

    def batch_derivatives(self, u):
        # complex step on C = U'U (U' without conjugation: the step must stay analytic)
        U = _spherical_factor_steps(np.asarray(u, dtype=float), self.m, COMPLEX_STEP)
        dC = np.matmul(np.swapaxes(U, 1, 2), U).imag / COMPLEX_STEP
        return [dC[:, pos[:, :, None], pos[:, None, :]] for pos in self._pos]
