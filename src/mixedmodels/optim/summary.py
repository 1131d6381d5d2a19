"""What the optimizer did: every setting, the result and a log of evaluations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["OptSummary"]


@dataclass(frozen=True, repr=False)
class OptSummary:
    """Record of one optimization.

    Attributes
    ----------
    optimizer : str
        Backend and algorithm (``"nlopt:LN_BOBYQA"``).
    x0, lower, upper : ndarray
        Start and bounds.
    x, fval : ndarray, float
        Solution and objective there.
    n_evals : int
        Objective evaluations used by the optimizer (not counting the final one at the
        optimum or the derivative checks).
    settings : dict
        Tolerances and limits used (``xtol_abs``, ``ftol_abs``, ``maxeval``).
    return_code : str
        Backend's termination reason.
    seconds : float
        Wall time in the optimizer.
    log : tuple
        Per evaluation ``(x, f)`` when ``keep_log=True`` was requested, else empty.
    """

    optimizer: str
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    x: np.ndarray
    fval: float
    n_evals: int
    settings: dict
    return_code: str
    seconds: float
    log: tuple = field(default=(), repr=False)

    def __repr__(self) -> str:
        return (f"<OptSummary {self.optimizer}: {self.n_evals} evaluations, "
                f"{self.return_code}, fval={self.fval:.10g}, {self.seconds:.3g} s>")

    @property
    def converged(self) -> bool:
        """True when the backend stopped on a tolerance, not on a limit or a failure."""
        return self.return_code in {"FTOL_REACHED", "XTOL_REACHED", "SUCCESS",
                                    "STOPVAL_REACHED", "converged",
                                    "converged (no further decrease)",
                                    "log phase left near a bound"}
