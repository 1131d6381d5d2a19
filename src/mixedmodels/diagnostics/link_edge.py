r"""Fits held at the edge of a link's feasible region.

Some links do not map every linear predictor to a valid mean: the inverse link of a Gamma
model needs ``eta > 0``, a log link for probabilities ``eta < 0``, the identity link of a
Poisson model ``eta > 0``. Where the data pull the fitted line across that edge the
likelihood, not the data, decides the estimates: the optimizer stops against the boundary
(the Gamma deviance's ``-log(eta)`` barrier, or the region's wall) and reports a small
gradient. lme4's PIRLS fails there with an error; glmmTMB returns what it stopped at.

The feasible linear predictors form an interval (the links are monotone and the families'
ranges are intervals), so the fit is at an edge when its smallest or largest ``eta``, moved
outward by :data:`EDGE_REL_TOL` of the spread of ``eta``, leaves it.
"""

from __future__ import annotations

import numpy as np

from .._errors import ConvergenceWarning

__all__ = ["EDGE_REL_TOL", "LinkEdgeWarning", "link_edge_message", "range_keeping_link"]

#: Distance from the edge, as a fraction of the range of the fitted linear predictor, below
#: which a fit counts as held there. The issue's Gamma fit had min eta = 0.0011 with eta
#: spanning ~0.5 (0.2%); interior fits close to the edge sit at several percent.
EDGE_REL_TOL = 1e-2


class LinkEdgeWarning(ConvergenceWarning):
    """The fitted linear predictor sits at the edge of the link's feasible region."""


def _feasible(family, eta: float) -> bool:
    link = family.link
    e = np.array([eta])
    if not link.valid_eta(e):
        return False
    return bool(link.bounded or family.valid_mu(link.linkinv(e)))


def range_keeping_link(family) -> str | None:
    """The first of the family's links that maps every linear predictor to a valid mean
    (``"logit"`` for the binomial, ``"log"`` for counts and Gamma), or None."""
    for name in family.links:
        try:
            other = type(family)(link=name) if not hasattr(family, "theta") \
                else type(family)(family.theta, name)
        except (TypeError, ValueError):
            return None
        if all(_feasible(other, e) for e in (-50.0, -1.0, 0.0, 1.0, 50.0)):
            return name
    return None


def link_edge_message(family, eta: np.ndarray) -> str | None:
    """A warning text when the fitted ``eta`` sits at the link's feasible edge, else None."""
    eta = np.asarray(eta, dtype=float)
    if eta.size == 0 or not np.all(np.isfinite(eta)):
        return None
    lo, hi = float(np.min(eta)), float(np.max(eta))
    step = EDGE_REL_TOL * max(hi - lo, abs(lo), abs(hi), np.finfo(float).tiny)
    sides = []
    if not _feasible(family, lo - step):
        sides.append(f"the smallest linear predictor is {lo:.3g}")
    if not _feasible(family, hi + step):
        sides.append(f"the largest linear predictor is {hi:.3g}")
    if not sides:
        return None
    better = range_keeping_link(family)
    advice = (f"use a link that keeps the mean in range (the {better!r} link)" if better
              else "use another link")
    return (
        f"the fit sits at the edge of the feasible region of the {family.link.name} link of "
        f"the {family.name} family: {' and '.join(sides)}, within {EDGE_REL_TOL:.0%} of the "
        "range of the linear predictor from where the mean leaves the family's range. The "
        "estimates are held there by the constraint rather than by the data (lme4 stops with "
        f"an error); {advice}, or reconsider the model"
    )
