r"""The optimizer's scale for log-parameters whose limit 0 is a valid model.

A parameter kept on the log scale, ``u = log c``, cannot reach ``c = 0``; where ``c -> 0``
is itself a model (varConstPower's constant: the limit is varPower) and the data prefer it,
the criterion in ``u`` is ``f(u) ~ f_0 + a e^u``: gradient and curvature both vanish like
``c``, a derivative-free optimizer's steps shrink with them, and it stops on a small change
far from the limit (at ``c = 9e-4`` with the deviance still ``5e-4`` above its limit, where
nlme's quasi-Newton steps of constant length in ``u`` reach ``c = 5e-7``). Optimizing ``c``
itself, with the finite lower bound 0, makes the limit an ordinary active bound: the
optimizer reaches it, the boundary snap puts it there, and the convergence check treats it
as active. The natural scale is not scale-free (a constant of 200 from the start 0.1 took
BOBYQA's small first steps nowhere), so the fit (:mod:`mixedmodels.fitting.rside`) runs on
the log scale first and, where some mapped parameter's limit comes near the optimum found
there (``fitting.rside._limit_competitive``; elsewhere no plateau exists and the log-scale
optimum stands), continues on this one from there, then tries each mapped parameter at 0.

The map applies to the optimizer only; results, ``start`` and intervals stay on the log
scale, where ``c = 0`` is ``u = -``:data:`~mixedmodels.rside.correlation.UNCONSTRAINED_MAX`
(the structures clip there, so the model is the same to machine precision).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..rside.correlation import UNCONSTRAINED_MAX

__all__ = ["LimitScale"]


class LimitScale:
    """``z -> fun(u(z))`` with ``u_i = log z_i`` on the masked coordinates (``z_i >= 0``)
    and ``u_i = z_i`` elsewhere.

    Parameters
    ----------
    fun : callable
        The criterion on the model's scale.
    mask : ndarray of bool
        The coordinates optimized on the natural scale.
    """

    def __init__(self, fun: Callable[[np.ndarray], float], mask: np.ndarray):
        self.fun = fun
        self.mask = np.asarray(mask, dtype=bool)
        # attributes the optimizer wrappers read from the criterion
        self.residual = getattr(fun, "residual", None)

    @property
    def active(self) -> bool:
        """Some coordinate is mapped."""
        return bool(self.mask.any())

    def to_model(self, z: np.ndarray) -> np.ndarray:
        u = np.array(z, dtype=float)
        m = self.mask
        with np.errstate(divide="ignore"):
            u[m] = np.maximum(np.log(np.maximum(u[m], 0.0)), -UNCONSTRAINED_MAX)
        return u

    def from_model(self, u: np.ndarray) -> np.ndarray:
        z = np.array(u, dtype=float)
        z[self.mask] = np.exp(np.clip(z[self.mask], -UNCONSTRAINED_MAX, UNCONSTRAINED_MAX))
        return z

    def lower(self, lower: np.ndarray) -> np.ndarray:
        """The bounds on the optimizer's scale: 0 on the mapped coordinates."""
        out = np.array(lower, dtype=float)
        out[self.mask] = 0.0
        return out

    def __call__(self, z) -> float:
        return self.fun(self.to_model(z))

    def value_and_gradient(self, z) -> tuple[float, np.ndarray]:
        r"""The criterion and its gradient in ``z`` from ``fun.value_and_gradient``:
        ``df/dz_i = e^{-u_i} df/du_i`` on the mapped coordinates. At ``z_i = 0`` (``u_i``
        clipped at ``-UNCONSTRAINED_MAX``) this is the limit of ``df/dz_i``, finite
        where ``f(u) ~ f_0 + a e^u`` flattens towards 0 -- the plateau this scale is
        for, which the log scale's gradient ``a e^u`` cannot see."""
        u = self.to_model(z)
        f, g = self.fun.value_and_gradient(u)
        g = np.array(g, dtype=float)
        m = self.mask
        g[m] *= np.exp(-u[m])
        return f, g
