"""One linear-predictor component of a fit, seen as an lme4-style result.

:class:`ComponentView` gives a component (``cond``, ``zi``) of a multi-component fit the
accessors every mixed-model result has -- ``fixef``, ``vcov``, ``varcorr``, ``ranef``,
``coef``, ``is_singular``, linear predictors on new data -- by presenting the component's
own design, estimates and conditional variances to :class:`MixedModelResultBase`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import MixedModelResultBase

__all__ = ["ComponentSolution", "ComponentView"]


@dataclass(frozen=True)
class ComponentSolution:
    """What :class:`MixedModelResultBase` reads from a solution: theta, beta and the random
    effects per term (levels x p)."""

    theta: np.ndarray
    beta: np.ndarray
    b: list


class ComponentView(MixedModelResultBase):
    """A component of a fit as a result (see the module docstring).

    Parameters
    ----------
    design : Design
        The component's design (``Design.component_design(name)``).
    solution : ComponentSolution
    vcov : ndarray (p, p)
        Covariance of the component's fixed effects.
    cond_var : list of ndarray, or a callable returning it
        Conditional covariance blocks of the random effects per term (levels, p, p).
    objective, df : float, int
        Of the whole fit (for the shared information-criterion accessors).
    messages : tuple of str
    residual_sd : float or None
        The Residual line of the component's VarCorr (glmmTMB prints sigma there for
        Gaussian fits, NaN when the dispersion has covariates); None for none.
    """

    def __init__(self, design, solution: ComponentSolution, vcov: np.ndarray, cond_var: list,
                 objective: float, df: int, messages: tuple = (),
                 residual_sd: float | None = None):
        self.residual_sd = residual_sd
        self.design = design
        self.solution = solution
        self._vcov = vcov
        self._cv = cond_var
        self.objective = objective
        self.df = df
        self.messages = messages

    def _re_scale(self) -> float:
        return 1.0          # glmmTMB's Lambda is absolute

    def _vcov_matrix(self) -> np.ndarray:
        return self._vcov

    def _cond_var_blocks(self) -> list:
        # a callable is evaluated on first use (its blocks may cost a mode Jacobian)
        if callable(self._cv):
            self._cv = self._cv()
        return self._cv

    def is_singular(self, tol: float | None = None) -> bool:
        """A variance (nearly) zero or a correlation +-1 in this component."""
        from ..diagnostics import SINGULAR_TOL, singular_groups

        if not self.design.terms:
            return False
        return bool(singular_groups(self.design.terms, self.design.theta_slices(),
                                    self.theta, SINGULAR_TOL if tol is None else tol))
