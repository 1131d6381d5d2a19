r"""A quasi-Newton search that has reached the objective's rounding noise: notice, stop.

Where the Laplace objective is evaluated to fewer digits than usual -- glmmTMB's
``dispformula = ~0`` fixes the residual sd at ~1.2e-4, so the inner Hessian ``H`` has
entries ~1e9 and a condition number to match, and ``log det H`` (a few thousand) carries
rounding of ~1e-7..1e-6 -- BFGS reaches the noise floor well before its gradient
tolerance: its line search then tries point after point, none lower than the best one
within the noise, until it reports a loss of precision (ar1_disp0's fixture: 14 useful
gradients, then 22 in failing line searches; toep_disp0's: 29, then 22).

:class:`NoiseWatch` wraps the search's ``(F, dF/dz)`` and stops it, by raising
:class:`StalledInNoiseError`, after :data:`STALL_EVALUATIONS` successive evaluations
within :data:`STALL_RTOL` (relative) of the best value, the first of them not below it:
a line search in the noise, whose "lower" points are lucky draws of the noise
(toep_disp0: 2e-8 below, among others 2e-8 above); not an overshoot (a trial point far
above the best resets the count), and not the tail of a converging search, whose iterates
each lower the best (a run starts only at a point that does not). The driver then takes
the best point and leaves the last digits to the Newton polish.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STALL_EVALUATIONS", "STALL_RTOL", "NoiseWatch", "StalledInNoiseError"]

#: Successive evaluations not below the best, within the noise band, that stop the search
#: (a Wolfe line search that works finds a lower point in one to three).
STALL_EVALUATIONS = 5
#: Width of the noise band, relative to ``max(1, |F|)``: ~1e-9 on the fixtures with
#: ``dispformula = ~0``; an overshooting trial point lies far above it.
STALL_RTOL = 1e-8


class StalledInNoiseError(Exception):
    """Raised by :class:`NoiseWatch`; :attr:`z`, :attr:`f` are the best point and value."""

    def __init__(self, z: np.ndarray, f: float):
        super().__init__("the search stalled in the objective's rounding noise")
        self.z, self.f = z, f


class NoiseWatch:
    """``fg`` (``z -> (F, dF/dz)``) that raises :class:`StalledInNoiseError` once the search is
    stuck in the noise (see the module docstring). :attr:`n_evals` counts the evaluations
    made through it."""

    def __init__(self, fg, rtol: float = STALL_RTOL, count: int = STALL_EVALUATIONS):
        self.fg, self.rtol, self.count = fg, rtol, count
        self.best_z: np.ndarray | None = None
        self.best_f = np.inf
        self.run = 0
        self.n_evals = 0

    def __call__(self, z: np.ndarray):
        f, g = self.fg(z)
        self.n_evals += 1
        band = self.rtol * max(1.0, abs(self.best_f))
        if f < self.best_f - band or f > self.best_f + band:
            # progress, or an overshoot: not the noise
            self.run = 0
        elif f >= self.best_f or self.run:
            # within the band: not lower, or lower by a noise-sized amount after a point
            # that was not (a lucky draw of the noise)
            self.run += 1
        if f < self.best_f:
            self.best_z, self.best_f = np.array(z, dtype=float), f
        if self.run >= self.count:
            raise StalledInNoiseError(self.best_z.copy(), self.best_f)
        return f, g
