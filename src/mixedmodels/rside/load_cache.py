"""The last few cross-products an R-side LMM criterion installed, by residual parameters.

:class:`~.objective.RSideLMMObjective` whitens the data for each new ``phi`` (the residual
parameters) and installs ``A = [Z X y]' V^{-1} [Z X y]`` in its LMM; an evaluation at the
same ``phi`` and another ``theta`` only refactors ``A`` -- on spatial_lme_lin_nugget ~100k
of ~630k instructions. Derivative-free searches come back to a ``phi`` they left a few
evaluations before: BOBYQA's initial design (``x0 - h e_theta`` after the residual
coordinates' own steps), the finite-difference convergence check (``theta``'s differences
around the centre), the kink search's scan points re-evaluated as starts. Keeping the last
:data:`LOAD_CACHE_SIZE` installations turns those into refactorizations: 15 of
spatial_lme_lin_nugget's 140 evaluations instead of 7 with the last one only, 8 of
serial_lme_arma11's 52 instead of 5. The values are the same arrays, so the criterion is
bit for bit what a fresh whitening gives.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOAD_CACHE_MAX_FLOATS", "LOAD_CACHE_SIZE", "RecentLoads"]

#: Installations kept (more gained nothing on the fixtures: 8 and 16 gave the same hits
#: as 4 on spatial_lme_lin_nugget, serial_lme_arma11, bw_gls_lin and field_gls_lin_nugget).
LOAD_CACHE_SIZE = 4
#: Largest cross-product kept (floats): ``(q + p + 1)^2``; a model with thousands of
#: random effects would hold megabytes per entry for a refactorization that costs far more
#: than the whitening it saves.
LOAD_CACHE_MAX_FLOATS = 1 << 16


class RecentLoads:
    """``phi -> (A, log|V|)`` for the last :data:`LOAD_CACHE_SIZE` ``phi`` put (copies
    of ``A``: the whitening's own array is reused by the next one)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[float, ...], tuple[np.ndarray, float]] = {}

    def get(self, key: tuple[float, ...]) -> tuple[np.ndarray, float] | None:
        """The entry of ``key`` (made the most recent), or None."""
        hit = self._entries.pop(key, None)
        if hit is not None:
            self._entries[key] = hit
        return hit

    def put(self, key: tuple[float, ...], A: np.ndarray, logdet: float) -> None:
        """Keep a copy of ``A`` and ``logdet`` under ``key`` (nothing for a large ``A``)."""
        if A.size > LOAD_CACHE_MAX_FLOATS:
            return
        entries = self._entries
        entries[key] = (A.copy(), logdet)
        if len(entries) > LOAD_CACHE_SIZE:
            del entries[next(iter(entries))]
