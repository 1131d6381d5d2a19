"""The general Laplace engine: any density, several linear predictors, exact gradient."""

from .objective import CHANNEL_OF_COMPONENT, LaplaceObjective, LaplaceSolution, ModesError

__all__ = ["CHANNEL_OF_COMPONENT", "LaplaceObjective", "LaplaceSolution", "ModesError"]
