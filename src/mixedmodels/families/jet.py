r"""Forward-mode "jets": values with their derivatives up to third order, vectorized.

A :class:`Jet` holds a batch of values ``v`` (any shape ``B``, usually ``(n,)``: one value
per observation) and their first, second and third derivatives with respect to ``m``
variables (the linear predictors of a model's channels). Arithmetic and the elementary
functions below propagate all of them by the chain rule, so a log-density written once in
terms of jets yields its exact gradient, Hessian and third-derivative tensor per
observation.

For a univariate ``f`` applied to a jet ``g`` (derivatives ``g_a, g_ab, g_abc``):

.. math::

    (f \circ g)_a &= f' g_a, \\
    (f \circ g)_{ab} &= f'' g_a g_b + f' g_{ab}, \\
    (f \circ g)_{abc} &= f''' g_a g_b g_c
        + f'' (g_a g_{bc} + g_b g_{ac} + g_c g_{ab}) + f' g_{abc};

products follow Leibniz's rule and :func:`compose` the multivariate chain rule
(Faà di Bruno to third order). Every operation computes derivatives only up to the jet's
``order``, so order 0/1/2 evaluations never pay for order 3.

Storage is variable-first: ``g1`` is ``(m, *B)``, ``g2`` ``(m, m, *B)``, ``g3``
``(m, m, m, *B)``, so that every elementwise operation runs over contiguous batch rows
(``m`` is at most a handful). The properties ``d1`` ``(*B, m)``, ``d2`` ``(*B, m, m)`` and
``d3`` ``(*B, m, m, m)`` are views in observation-first order. Jets are immutable: the
arrays may be shared between jets (adding a constant reuses the derivative arrays), so
nothing may write into them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from ._special import (
    LOG_2PI,
    STIRLING_SERIES_MIN,
    expit_pair,
    lgamma_derivatives,
    lgamma_diff_counts,
    logistic_parts,
    softplus_value,
    stirling_derivatives,
)

__all__ = [
    "Jet",
    "JetBase",
    "compose",
    "cumulant_jet",
    "expm1",
    "gammaln",
    "lgamma_diff",
    "log1mexp",
    "log_ndtr",
    "log_sigmoid",
    "logaddexp",
    "logsumexp",
    "logsumexp_affine",
    "ndtr",
    "sigmoid",
    "softplus",
    "stirling_rem",
    "where",
    "xlog1py",
    "xlogy",
]

MAX_ORDER = 3
_LOG_SQRT_2PI = 0.5 * LOG_2PI


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _expand(a: np.ndarray | None, nvar: int, batch: tuple[int, ...]) -> np.ndarray | None:
    """Broadcast a derivative array with ``nvar`` leading variable axes to ``batch``."""
    if a is None:
        return None
    shape = a.shape[:nvar] + batch
    if a.shape == shape:
        return a
    old = a.shape[nvar:]
    a = a.reshape(a.shape[:nvar] + (1,) * (len(batch) - len(old)) + old)
    return np.broadcast_to(a, shape)


def _variables_last(g: np.ndarray, k: int) -> np.ndarray:
    """The view of ``g`` with its ``k`` leading variable axes moved last (``moveaxis``
    without its argument checks: the engine reads these views many times per fit)."""
    nd = g.ndim
    return g.transpose((*range(k, nd), *range(k)))


def _sym3(x2: np.ndarray, y1: np.ndarray) -> np.ndarray:
    r"""``y_a x_bc + y_b x_ac + y_c x_ab`` (a symmetric ``x2`` and a vector ``y1``)."""
    t = y1[:, None, None] * x2[None, :, :]
    rest = tuple(range(3, t.ndim))
    return t + t.transpose((1, 0, 2, *rest)) + t.transpose((1, 2, 0, *rest))


class JetBase:
    """What every jet type shares: the operators and elementary functions written in
    terms of :meth:`chain`, ``+``, ``*`` and unary ``-``, which each storage implements
    (:class:`Jet` dense; :class:`~mixedmodels.families.sparse_jet.SparseJet` symmetric and
    sparse). Module functions (``exp``, ``where``, ``lgamma_diff``...) accept either."""

    __slots__ = ()
    #: numpy defers binary operations with a jet to the jet's reflected methods
    __array_ufunc__ = None
    v: np.ndarray
    m: int
    order: int

    def chain(self, f1, f2=None, f3=None, f0=None):
        """``f(self)`` for a univariate ``f`` from its derivatives at ``self.v`` (the chain
        rule of the module docstring); each storage implements it.

        Parameters
        ----------
        f1, f2, f3 : array_like
            First, second and third derivatives of ``f`` at ``self.v`` (those above the
            jet's order may be None).
        f0 : array_like
            ``f(self.v)``.

        Returns
        -------
        JetBase
            A jet of the same storage.
        """
        raise NotImplementedError

    @classmethod
    def _where(cls, mask, a, b):
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        """Batch shape ``B`` (the shape of ``v``)."""
        return self.v.shape

    @property
    def active_order(self) -> int:
        """The derivative order of ``f`` that :meth:`chain` needs for ``f(self)``:
        ``order``, or 0 for a jet known to have no derivatives (expensive ``f`` 's skip
        their derivatives then)."""
        return self.order

    def __pos__(self):
        return self

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __truediv__(self, other):
        if isinstance(other, JetBase):
            return self * other.reciprocal()
        return self * (1.0 / _arr(other))

    def __rtruediv__(self, other):
        return self.reciprocal() * other

    def __pow__(self, p):
        if isinstance(p, JetBase):
            return exp(p * self.log())
        p = float(p)
        if p == 1.0:
            return self
        if p == 2.0:
            return self.square()
        if p == -1.0:
            return self.reciprocal()
        if p == 0.5:
            return self.sqrt()
        x = self.v
        with np.errstate(all="ignore"):
            return self.chain(p * x ** (p - 1.0), p * (p - 1.0) * x ** (p - 2.0),
                              p * (p - 1.0) * (p - 2.0) * x ** (p - 3.0), f0=x ** p)

    def __rpow__(self, base):
        return exp(self * np.log(_arr(base)))

    # -- elementary functions as methods --------------------------------------------
    def square(self):
        """``x^2``.

        Returns
        -------
        JetBase
        """
        x = self.v
        return self.chain(2.0 * x, 2.0, 0.0, f0=x * x)

    def reciprocal(self):
        """``1 / x``.

        Returns
        -------
        JetBase
        """
        with np.errstate(all="ignore"):
            r = 1.0 / self.v
            r2 = r * r
        return self.chain(-r2, 2.0 * r2 * r, -6.0 * r2 * r2, f0=r)

    def exp(self):
        """``exp(x)``.

        Returns
        -------
        JetBase
        """
        return exp(self)

    def log(self):
        """``log(x)`` (linked parameters override it with the link's accurate form).

        Returns
        -------
        JetBase
        """
        return log(self)

    def log1p(self):
        """``log(1 + x)``.

        Returns
        -------
        JetBase
        """
        return log1p(self)

    def sqrt(self):
        """``sqrt(x)``.

        Returns
        -------
        JetBase
        """
        return sqrt(self)

    def log1m(self):
        """``log(1 - x)`` (linked parameters override it with a stable form).

        Returns
        -------
        JetBase
        """
        return log1p(-self)

    def complement(self):
        """``1 - x`` (linked parameters override it with a stable form).

        Returns
        -------
        JetBase
        """
        return 1.0 - self

    def logit(self):
        """``log(x / (1 - x))``.

        Returns
        -------
        JetBase
        """
        return self.log() - self.log1m()

    def above(self, lower: float):
        """``x - lower`` (linked parameters with that bound override it).

        Parameters
        ----------
        lower : float
            The bound.

        Returns
        -------
        JetBase
        """
        return self - lower

    def below(self, upper: float):
        """``upper - x`` (linked parameters with that bound override it).

        Parameters
        ----------
        upper : float
            The bound.

        Returns
        -------
        JetBase
        """
        return upper - self


class Jet(JetBase):
    """Values and derivatives up to ``order`` with respect to ``m`` variables.

    Parameters
    ----------
    v : array_like
        Values, batch shape ``B``.
    g1, g2, g3 : ndarray or None
        Derivatives in variable-first layout ``(m, *B)``, ``(m, m, *B)``,
        ``(m, m, m, *B)``; None above ``order``.
    m : int
        Number of variables.
    order : int
        Highest derivative order carried (0 to 3).
    """

    __slots__ = ("g1", "g2", "g3", "m", "order", "v")

    def __init__(self, v, g1=None, g2=None, g3=None, *, m: int, order: int):
        self.v = _arr(v)
        self.m = int(m)
        self.order = int(order)
        self.g1 = g1 if order >= 1 else None
        self.g2 = g2 if order >= 2 else None
        self.g3 = g3 if order >= 3 else None

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def variable(cls, values, index: int, m: int, order: int) -> Jet:
        """The independent variable number ``index`` of ``m``, at ``values``.

        Parameters
        ----------
        values : array_like
            Values of the variable (batch shape ``B``).
        index : int
            Which of the ``m`` variables it is.
        m : int
            Number of variables.
        order : int
            Derivative order carried (0 to 3).

        Returns
        -------
        Jet
            First derivative ``e_index``, higher derivatives zero.
        """
        return cls.univariate(values, (1.0, 0.0, 0.0), index, m, order)

    @classmethod
    def constant(cls, values, m: int, order: int) -> Jet:
        """A jet with zero derivatives.

        Parameters
        ----------
        values : array_like
            Its values.
        m : int
            Number of variables.
        order : int
            Derivative order carried.

        Returns
        -------
        Jet
        """
        v = _arr(values)
        z = [np.zeros((m,) * k + v.shape) if order >= k else None for k in (1, 2, 3)]
        return cls(v, *z, m=m, order=order)

    @classmethod
    def univariate(cls, f0, derivs: Sequence, index: int, m: int, order: int) -> Jet:
        """``f(x_index)`` from its value ``f0`` and derivatives ``(f', f'', f''')``.

        Cheaper than composing with a variable: only the diagonal entries are set.

        Parameters
        ----------
        f0 : array_like
            ``f`` at the variable's values.
        derivs : sequence of array_like
            Its first, second and third derivatives there (those above ``order`` are
            ignored).
        index : int
            The variable ``f`` depends on.
        m : int
            Number of variables.
        order : int
            Derivative order carried.

        Returns
        -------
        Jet
        """
        v = _arr(f0)
        out = [None, None, None]
        for k in range(1, order + 1):
            g = np.zeros((m,) * k + v.shape)
            g[(index,) * k] = derivs[k - 1]
            out[k - 1] = g
        return cls(v, *out, m=m, order=order)

    # -- observation-first views ------------------------------------------------------
    @property
    def d1(self) -> np.ndarray | None:
        """First derivatives, shape ``(*B, m)`` (a view)."""
        return None if self.g1 is None else _variables_last(self.g1, 1)

    @property
    def d2(self) -> np.ndarray | None:
        """Second derivatives, shape ``(*B, m, m)`` (a view)."""
        return None if self.g2 is None else _variables_last(self.g2, 2)

    @property
    def d3(self) -> np.ndarray | None:
        """Third derivatives, shape ``(*B, m, m, m)`` (a view)."""
        return None if self.g3 is None else _variables_last(self.g3, 3)

    def derivatives(self) -> list[np.ndarray]:
        """The derivative arrays carried.

        Returns
        -------
        list of ndarray
            ``[g1, g2, g3]`` up to the jet's order (variable-first layout).
        """
        return [g for g in (self.g1, self.g2, self.g3) if g is not None]

    def __repr__(self) -> str:
        return f"Jet(shape={self.shape}, m={self.m}, order={self.order})"

    # -- batch manipulation -----------------------------------------------------------
    def broadcast_to(self, batch: tuple[int, ...]) -> Jet:
        """The jet broadcast to another batch shape (views, no copies).

        Parameters
        ----------
        batch : tuple of int
            Target batch shape (numpy broadcasting rules).

        Returns
        -------
        Jet
        """
        batch = tuple(batch)
        if batch == self.shape:
            return self
        return Jet(np.broadcast_to(self.v, batch),
                   *[_expand(g, k, batch) for k, g in ((1, self.g1), (2, self.g2),
                                                          (3, self.g3))],
                   m=self.m, order=self.order)

    def __getitem__(self, idx) -> Jet:
        """Index the batch (numpy indexing on the batch axes only)."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        out = [None if g is None else g[(slice(None),) * k + idx]
               for k, g in ((1, self.g1), (2, self.g2), (3, self.g3))]
        return Jet(self.v[idx], *out, m=self.m, order=self.order)

    # -- helpers ----------------------------------------------------------------------
    def _with_value(self, v) -> Jet:
        """The same derivatives with other values (a more accurate form of the value)."""
        return Jet(v, self.g1, self.g2, self.g3, m=self.m, order=self.order)

    def _other(self, other):
        """(other as Jet-compatible, joint batch shape, joint order)."""
        if isinstance(other, JetBase) and not isinstance(other, Jet):
            raise TypeError(f"a Jet and a {type(other).__name__} do not mix")
        if isinstance(other, Jet):
            if other.m != self.m:
                raise ValueError(f"jets over {self.m} and {other.m} variables do not mix")
            return other, np.broadcast_shapes(self.shape, other.shape), \
                min(self.order, other.order)
        c = _arr(other)
        return c, np.broadcast_shapes(self.shape, c.shape), self.order

    def chain(self, f1, f2=None, f3=None, f0=None) -> Jet:
        """``f(self)`` for a univariate ``f`` (the chain rule of the module docstring).

        Parameters
        ----------
        f1, f2, f3 : array_like
            First, second and third derivatives of ``f`` at ``self.v`` (those above the
            jet's order may be None).
        f0 : array_like
            ``f(self.v)``.

        Returns
        -------
        Jet
        """
        k = self.order
        v = f0
        g1 = g2 = g3 = None
        if k >= 1:
            g1 = f1 * self.g1
        if k >= 2:
            o11 = self.g1[:, None] * self.g1[None, :]
            g2 = f2 * o11 + f1 * self.g2
        if k >= 3:
            g3 = (f3 * (o11[:, :, None] * self.g1[None, None, :])
                  + f2 * _sym3(self.g2, self.g1) + f1 * self.g3)
        return Jet(v, g1, g2, g3, m=self.m, order=k)

    # -- arithmetic -------------------------------------------------------------------
    def __neg__(self) -> Jet:
        return Jet(-self.v, *[None if g is None else -g for g in (self.g1, self.g2, self.g3)],
                   m=self.m, order=self.order)

    def __add__(self, other) -> Jet:
        o, batch, k = self._other(other)
        if not isinstance(o, Jet):
            return Jet(self.v + o, *[_expand(g, i, batch) for i, g in
                                     ((1, self.g1), (2, self.g2), (3, self.g3))],
                       m=self.m, order=k)
        a, b = self.broadcast_to(batch), o.broadcast_to(batch)
        gs = [a.g1 + b.g1 if k >= 1 else None, a.g2 + b.g2 if k >= 2 else None,
              a.g3 + b.g3 if k >= 3 else None]
        return Jet(self.v + o.v, *gs, m=self.m, order=k)

    def __mul__(self, other) -> Jet:
        o, batch, k = self._other(other)
        if not isinstance(o, Jet):
            a = self.broadcast_to(batch) if o.ndim > self.v.ndim else self
            return Jet(self.v * o, *[None if g is None else g * o
                                     for g in (a.g1, a.g2, a.g3)],
                       m=self.m, order=k)
        f, g = self.broadcast_to(batch), o.broadcast_to(batch)
        v = f.v * g.v
        g1 = g2 = g3 = None
        if k >= 1:
            g1 = f.g1 * g.v + f.v * g.g1
        if k >= 2:
            c = f.g1[:, None] * g.g1[None, :]
            g2 = f.g2 * g.v + f.v * g.g2 + c + np.swapaxes(c, 0, 1)
        if k >= 3:
            g3 = (f.g3 * g.v + f.v * g.g3 + _sym3(f.g2, g.g1) + _sym3(g.g2, f.g1))
        return Jet(v, g1, g2, g3, m=self.m, order=k)

    @classmethod
    def _where(cls, mask, a, b) -> Jet:
        k = min(x.order for x in (a, b) if isinstance(x, Jet))
        jet = a if isinstance(a, Jet) else b
        batch = np.broadcast_shapes(mask.shape, _value(a).shape, _value(b).shape)
        out = [np.where(mask, _value(a), _value(b))]
        for i in range(1, k + 1):
            ga = a.derivatives()[i - 1] if isinstance(a, Jet) else 0.0
            gb = b.derivatives()[i - 1] if isinstance(b, Jet) else 0.0
            g = np.where(mask, ga, gb)
            out.append(_expand(g, i, batch) if g.ndim else np.zeros((jet.m,) * i + batch))
        return Jet(out[0], *out[1:], m=jet.m, order=k)


# -- univariate elementary functions ------------------------------------------------
def _chain(x: JetBase, f0, f1=None, f2=None, f3=None) -> JetBase:
    return x.chain(f1, f2, f3, f0=f0)


def exp(x: Jet) -> Jet:
    """``exp(x)``."""
    with np.errstate(over="ignore"):
        e = np.exp(x.v)
    return _chain(x, e, e, e, e)


def expm1(x: Jet) -> Jet:
    """``exp(x) - 1`` (accurate near 0)."""
    with np.errstate(over="ignore"):
        e = np.exp(x.v)
        return _chain(x, np.expm1(x.v), e, e, e)


def log(x: Jet) -> Jet:
    """``log(x)``."""
    with np.errstate(all="ignore"):
        r = 1.0 / x.v
        return _chain(x, np.log(x.v), r, -r * r, 2.0 * r * r * r)


def log1p(x: Jet) -> Jet:
    """``log(1 + x)`` (accurate near 0)."""
    with np.errstate(all="ignore"):
        r = 1.0 / (1.0 + x.v)
        return _chain(x, np.log1p(x.v), r, -r * r, 2.0 * r * r * r)


def sqrt(x: Jet) -> Jet:
    """``sqrt(x)``."""
    with np.errstate(all="ignore"):
        s = np.sqrt(x.v)
        r = 1.0 / s
        r2 = r * r
        return _chain(x, s, 0.5 * r, -0.25 * r * r2, 0.375 * r * r2 * r2)


def gammaln(x: Jet) -> Jet:
    """``log Gamma(x)``, ``x > 0``; derivatives digamma, trigamma, tetragamma."""
    return _chain(x, *_once(lgamma_derivatives, x.v, x.active_order))


def _once(fn, v: np.ndarray, order: int) -> list:
    """``fn(v, order)``, evaluated at one element when ``v`` repeats one value (the
    derivatives then stay of shape (1,), which broadcasts; the value gets ``v`` 's
    shape)."""
    with np.errstate(all="ignore"):
        if not _repeats_one_value(v):
            return fn(v, order)
        res = fn(v.reshape(-1)[:1], order)
    return [np.full(v.shape, res[0][0]), *res[1:]]


def stirling_rem(x: Jet) -> Jet:
    r"""Stirling remainder ``log Gamma(x) - (x - 1/2) log x + x - log(2 pi)/2`` (small for
    large ``x``; see :mod:`mixedmodels.families._special`)."""
    return _chain(x, *_once(stirling_derivatives, x.v, x.active_order))


def softplus(x: Jet) -> Jet:
    r"""``log(1 + exp(x))``, stable for all ``x``; derivatives ``s, s(1-s), ...`` with
    ``s = expit(x)`` and ``1 - s`` computed as ``expit(-x)`` (no cancellation)."""
    v = x.v
    if x.active_order == 0:
        return _chain(x, softplus_value(v), None)
    s, sm, tail = logistic_parts(v)
    f2 = s * sm
    return _chain(x, np.maximum(v, 0.0) + tail, s, f2, f2 * (sm - s))


def log_sigmoid(x: Jet) -> Jet:
    r"""``log(expit(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))``; derivatives
    ``1 - s``, ``-s(1 - s)``, ``s(1 - s)(2s - 1)`` with ``s = expit(x)``."""
    v = x.v
    if x.active_order == 0:
        return _chain(x, -softplus_value(-v), None)
    s, sm, tail = logistic_parts(v)
    f2 = sm * s
    return _chain(x, np.minimum(v, 0.0) - tail, sm, -f2, f2 * (s - sm))


def sigmoid(x: Jet) -> Jet:
    """``expit(x) = 1 / (1 + exp(-x))``."""
    s, sm = expit_pair(x.v)
    f1 = s * sm
    return _chain(x, s, f1, f1 * (sm - s), f1 * (1.0 - 6.0 * f1))


def log1mexp(x: Jet) -> Jet:
    r"""``log(1 - exp(x))`` for ``x <= 0`` (Mächler's two-branch rule); with
    ``q = 1 / expm1(-x)`` the derivatives are ``-q, -q(1+q), -q(1+q)(1+2q)``."""
    v = x.v
    with np.errstate(all="ignore"):
        f0 = np.where(v > -np.log(2.0), np.log(-np.expm1(v)), np.log1p(-np.exp(v)))
        q = 1.0 / np.expm1(-v)
        f2 = -q * (1.0 + q)
        return _chain(x, f0, -q, f2, f2 * (1.0 + 2.0 * q))


def ndtr(x: Jet) -> Jet:
    """Standard normal cdf ``Phi(x)``."""
    v = x.v
    d = np.exp(-0.5 * v * v - _LOG_SQRT_2PI)
    return _chain(x, special.ndtr(v), d, -v * d, (v * v - 1.0) * d)


def log_ndtr(x: Jet) -> Jet:
    r"""``log Phi(x)``, accurate far in the lower tail; with the inverse Mills ratio
    ``r = phi(x) / Phi(x)``: ``f' = r``, ``f'' = -r (x + r)``,
    ``f''' = -f'' (x + r) - r (1 + f'')``."""
    v = x.v
    f0 = special.log_ndtr(v)
    r = np.exp(-0.5 * v * v - _LOG_SQRT_2PI - f0)
    f2 = -r * (v + r)
    return _chain(x, f0, r, f2, -f2 * (v + r) - r * (1.0 + f2))


# -- combinations -------------------------------------------------------------------
def _value(x):
    return x.v if isinstance(x, JetBase) else _arr(x)


def where(mask, a, b) -> JetBase:
    """Elementwise ``a`` where ``mask`` else ``b`` (jets or arrays; at least one jet, and
    jets of one storage type)."""
    jet = a if isinstance(a, JetBase) else b
    if not isinstance(jet, JetBase):
        raise TypeError("where() needs at least one Jet")
    other = b if jet is a else a
    if isinstance(other, JetBase) and type(other)._where != type(jet)._where:
        raise TypeError(f"where() of a {type(a).__name__} and a {type(b).__name__}")
    return type(jet)._where(np.asarray(mask, dtype=bool), a, b)


def logaddexp(a, b, diff=None) -> JetBase:
    r"""``L = log(exp(a) + exp(b))`` without overflow (jets or arrays).

    With ``d = b - a`` and the weights ``p_a = expit(-d)``, ``p_b = expit(d)`` (each
    computed without cancellation), the derivatives are those of ``a + softplus(d)``
    arranged as

    .. math::

        L_K = p_a a_K + p_b b_K + [\text{the } f'' \text{ and } f''' \text{ terms of }
        \mathrm{softplus}(d)]_K, \qquad f'' = p_a p_b, \quad f''' = p_a p_b (p_a - p_b),

    a weighted mean of the two terms' derivatives (no cancellation whichever dominates);
    the value is ``max(a, b) + softplus(-|d|)``.

    Parameters
    ----------
    a, b : Jet or array_like
        The terms (at least one a jet).
    diff : Jet, optional
        ``b - a`` when a form of it is known that is exact or cheaper (e.g.
        ``log(1 - pi) - log(pi) = -eta`` for the logit link).

    Returns
    -------
    Jet
    """
    av, bv = _value(a), _value(b)
    with np.errstate(invalid="ignore"):
        d = b - a if diff is None else diff
        hi = np.maximum(av, bv)
        if not np.isfinite(hi).all():
            # both -inf: the sum is -inf; keep the softplus argument finite
            both_inf = ~np.isfinite(hi) & (hi < 0)
            if both_inf.any():
                d = where(both_inf, np.full(d.shape, -np.inf), d)
        pb, pa, tail = logistic_parts(d.v)
        f2 = pa * pb
        out = a * pa + b * pb + d.chain(0.0, f2, f2 * (pa - pb), f0=0.0)
        return out._with_value(hi + tail)


def _x_times(f, x, y: Jet, neutral: float) -> Jet:
    """``x f(y)`` with 0 where the constant ``x`` is 0 (``y`` replaced there by a point
    where ``f`` is finite, so no ``0 * inf``)."""
    x = _arr(x)
    zero = x == 0
    if np.any(zero):
        y = where(zero, neutral, y)
    return f(y) * x


def xlogy(x, y: Jet) -> Jet:
    """``x log(y)`` with the value 0 (and zero derivatives) where the constant ``x`` is 0."""
    return _x_times(log, x, y, 1.0)


def xlog1py(x, y: Jet) -> Jet:
    """``x log(1 + y)``, 0 where the constant ``x`` is 0."""
    return _x_times(log1p, x, y, 0.0)


def lgamma_diff(a: Jet, y) -> Jet:
    r"""``log Gamma(a + y) - log Gamma(a)`` for a jet ``a > 0`` and constants ``y >= 0``.

    For large ``a`` the two log-gammas nearly cancel (negative binomial sizes in the
    Poisson limit); there the difference is rewritten as

    .. math::

        (a - \tfrac12)\,\mathrm{log1p}(y/a) + y \log(a + y) - y + r(a + y) - r(a),

    with ``r`` the Stirling remainder, whose derivatives stay accurate too.
    """
    y = _arr(y)
    k = a.active_order
    av = a.v
    with np.errstate(all="ignore"):
        d = None
        if _repeats_one_value(av) and y.shape == av.shape:
            # a single size (no dispersion model) and counts: finite sums
            d = lgamma_diff_counts(float(av.flat[0]), y, k)
        if d is None:
            d = _lgamma_diff_values(av, y, k)
    d += [None] * (4 - len(d))
    return a.chain(d[1], d[2], d[3], f0=d[0])


#: Arrays at least this long are checked for repeating one value (a size or precision
#: without a dispersion model), whose special functions are then evaluated once.
UNIFORM_CHECK_MIN = 16


def _repeats_one_value(x: np.ndarray) -> bool:
    return x.size >= UNIFORM_CHECK_MIN and bool((x == x.flat[0]).all())


def _both(fn, hi: np.ndarray, lo: np.ndarray, order: int):
    """``fn(hi, order)`` and ``fn(lo, order)`` from one vectorized call (``lo`` evaluated
    at one element when it repeats one value; its results then broadcast)."""
    if _repeats_one_value(lo):
        lo = lo.reshape(-1)[:1]
        shape = (1,)
    else:
        shape = lo.shape
    res = fn(np.concatenate([hi.reshape(-1), lo.reshape(-1)]), order)
    cut = hi.size
    return ([r[:cut].reshape(hi.shape) for r in res],
            [r[cut:].reshape(shape) for r in res])


def _lgamma_diff_values(av: np.ndarray, y: np.ndarray, k: int) -> list[np.ndarray]:
    """Value and derivative coefficients of :func:`lgamma_diff` at ``a = av``."""
    big = av >= STIRLING_SERIES_MIN
    n_big = np.count_nonzero(big)
    parts = []
    if n_big:
        p = np.where(big, av, STIRLING_SERIES_MIN) if n_big < av.size else av
        parts.append(_lgamma_diff_stirling(p, y, k))
    if n_big < av.size:
        x = np.where(big, 1.0, av) if n_big else av
        hi, lo = _both(lgamma_derivatives, x + y, x, k)
        parts.append([u - w for u, w in zip(hi, lo, strict=True)])
    if len(parts) == 1:
        return parts[0]
    return [np.where(big, u, w) for u, w in zip(*parts, strict=True)]


def _lgamma_diff_stirling(p: np.ndarray, y: np.ndarray, order: int) -> list[np.ndarray]:
    r"""Value and ``p``-derivatives of ``log Gamma(p + y) - log Gamma(p)`` for ``p >= 10``
    through the Stirling remainder ``r`` (:func:`lgamma_diff`); with ``q = p + y``:

    .. math::

        D_1 &= \mathrm{log1p}(y/p) + \frac{y}{2pq} + r'(q) - r'(p), \\
        D_2 &= -\frac{y}{pq} - \frac{y (p + q)}{2 (pq)^2} + r''(q) - r''(p), \\
        D_3 &= \frac{y (p + q - 1)}{(pq)^2} + \frac{y (p + q)^2}{(pq)^3}
            + r'''(q) - r'''(p):

    the derivatives of the rewritten difference with its rational terms collected (the
    term-by-term derivatives cancel to these).
    """
    q = p + y
    lp = np.log1p(y * (1.0 / p))
    rq, rp = _both(stirling_derivatives, q, p, order)
    out = [(p - 0.5) * lp + special.xlogy(y, q) - y + rq[0] - rp[0]]
    if order >= 1:
        pq = p * q
        out.append(lp + 0.5 * y / pq + rq[1] - rp[1])
    if order >= 2:
        s = p + q
        ipq = 1.0 / pq
        ipq2 = ipq * ipq
        out.append(-y * ipq - 0.5 * y * s * ipq2 + rq[2] - rp[2])
    if order >= 3:
        out.append(y * (s - 1.0) * ipq2 + y * s * s * ipq2 * ipq + rq[3] - rp[3])
    return out


# -- series and compositions ----------------------------------------------------------
def logsumexp(x: Jet, axis: int = -1, mask=None) -> Jet:
    r"""``log sum_j exp(x_j)`` over a batch axis, with exact derivatives.

    With weights ``p_j = exp(x_j - L)`` and centred gradients ``c_j = x_j' - L'``:
    ``L_a = sum p x_a``, ``L_ab = sum p (x_ab + c_a c_b)``,
    ``L_abc = sum p (x_abc + c_a x_bc + c_b x_ac + c_c x_ab + c_a c_b c_c)``.
    Terms where ``mask`` is False are left out (they must still be finite).
    """
    ax = axis if axis < 0 else axis - x.v.ndim
    v = x.v
    if mask is not None:
        v = np.where(mask, v, -np.inf)
    vmax = np.max(v, axis=ax, keepdims=True)
    vmax = np.where(np.isfinite(vmax), vmax, 0.0)
    with np.errstate(under="ignore"):
        w = np.exp(v - vmax)
    s = np.sum(w, axis=ax, keepdims=True)
    with np.errstate(divide="ignore"):
        val = np.squeeze(vmax + np.log(s), axis=ax)
    k = x.order
    if k == 0:
        return Jet(val, m=x.m, order=0)
    p = w / s
    l1 = np.sum(p * x.g1, axis=ax, keepdims=True)
    out = [np.squeeze(l1, axis=ax)]
    if k >= 2:
        c = x.g1 - l1
        cc = c[:, None] * c[None, :]
        out.append(np.sum(p * (x.g2 + cc), axis=ax))
    if k >= 3:
        out.append(np.sum(p * (x.g3 + _sym3(x.g2, c) + cc[:, :, None] * c[None, None]),
                          axis=ax))
    return Jet(val, *out, m=x.m, order=k)


def logsumexp_affine(values: np.ndarray, slopes: np.ndarray, order: int,
                     mask=None) -> Jet:
    r"""``L(u) = log sum_j exp(values_j + sum_p slopes_pj u_p)`` and its derivatives at
    ``u = 0``: the cumulants of the slopes under ``p_j = exp(values_j - L)``.

    ``values`` has shape ``(*B, J)`` (series along the last axis), ``slopes``
    ``(k, *B, J)``; the result is a jet over the ``k`` variables ``u`` with batch ``B``.
    Cheaper than :func:`logsumexp` when the terms are affine in the variables.
    """
    v = values if mask is None else np.where(mask, values, -np.inf)
    vmax = np.max(v, axis=-1, keepdims=True)
    vmax = np.where(np.isfinite(vmax), vmax, 0.0)
    with np.errstate(under="ignore"):
        w = np.exp(v - vmax)
    s = np.sum(w, axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        val = (vmax + np.log(s))[..., 0]
    return cumulant_jet(val, w / s, slopes, order)


def cumulant_jet(value: np.ndarray, p: np.ndarray, slopes: np.ndarray, order: int) -> Jet:
    """The jet of a log-sum-exp of affine terms from its value and normalized weights
    ``p`` ``(*B, J)``: mean, covariance and third central moments of ``slopes``."""
    k = slopes.shape[0]
    if order == 0:
        return Jet(value, m=k, order=0)
    mean = np.sum(p * slopes, axis=-1, keepdims=True)
    out = [mean[..., 0]]
    if order >= 2:
        c = slopes - mean
        pc = p * c
        # symmetric moments, each distinct entry once (k is 2 or 3: loops beat einsum here)
        g2 = np.empty((k, k, *value.shape))
        for a in range(k):
            for b in range(a, k):
                g2[a, b] = g2[b, a] = np.sum(pc[a] * c[b], axis=-1)
        out.append(g2)
    if order >= 3:
        g3 = np.empty((k, k, k, *value.shape))
        for a in range(k):
            for b in range(a, k):
                pcc = pc[a] * c[b]
                for d in range(b, k):
                    t = np.sum(pcc * c[d], axis=-1)
                    for idx in {(a, b, d), (a, d, b), (b, a, d), (b, d, a), (d, a, b),
                                (d, b, a)}:
                        g3[idx] = t
        out.append(g3)
    return Jet(value, *out, m=k, order=order)


def compose(value, f1, f2, f3, inner: Sequence[Jet]) -> Jet:
    r"""``F(u_1, ..., u_k)`` for jets ``u_p`` from ``F`` 's derivatives at their values.

    ``f1`` ``(k, *B)``, ``f2`` ``(k, k, *B)``, ``f3`` ``(k, k, k, *B)`` (None above the
    order needed):

    .. math::

        F_a &= F_p u_{p,a}, \qquad
        F_{ab} = F_{pq} u_{p,a} u_{q,b} + F_p u_{p,ab}, \\
        F_{abc} &= F_{pqr} u_{p,a} u_{q,b} u_{r,c}
            + \mathrm{sym}_3(F_{pq} u_{p,ab} u_{q,c}) + F_p u_{p,abc}

    (sums over repeated ``p, q, r``).
    """
    k = min(u.order for u in inner)
    m = inner[0].m
    batch = np.broadcast_shapes(*(u.shape for u in inner), np.shape(value))
    us = [u.broadcast_to(batch) for u in inner]
    out = [None, None, None]
    if k >= 1:
        u1 = np.stack([u.g1 for u in us])
        out[0] = np.einsum("p...,pa...->a...", f1, u1)
    if k >= 2:
        u2 = np.stack([u.g2 for u in us])
        out[1] = (np.einsum("pq...,pa...,qb...->ab...", f2, u1, u1)
                  + np.einsum("p...,pab...->ab...", f1, u2))
    if k >= 3:
        u3 = np.stack([u.g3 for u in us])
        w = np.einsum("pq...,pab...,qc...->abc...", f2, u2, u1)
        rest = tuple(range(3, w.ndim))
        out[2] = (np.einsum("pqr...,pa...,qb...,rc...->abc...", f3, u1, u1, u1)
                  + w + w.transpose((0, 2, 1, *rest)) + w.transpose((2, 0, 1, *rest))
                  + np.einsum("p...,pabc...->abc...", f1, u3))
    return Jet(np.broadcast_to(value, batch), *out, m=m, order=k)


def compose_jet(outer: Jet, inner: Sequence[Jet]) -> Jet:
    """:func:`compose` with ``F`` given as a jet over ``k`` variables (its ``g`` arrays
    are ``F`` 's derivatives at the inner jets' values)."""
    k = min(outer.order, *(u.order for u in inner))
    gs = outer.derivatives() + [None] * 3
    inner = [u if u.order == k else _truncate(u, k) for u in inner]
    return compose(outer.v, gs[0], gs[1], gs[2], inner)


def _truncate(u: Jet, k: int) -> Jet:
    return Jet(u.v, u.g1, u.g2, u.g3, m=u.m, order=k)
