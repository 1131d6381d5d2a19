"""Formula parsing: lme4/glmmTMB syntax -> frozen :class:`MixedModelSpec`."""

from .parse import COVARIANCE_KEYWORDS, parse_formula
from .spec import MixedModelSpec, RandomTerm

__all__ = ["COVARIANCE_KEYWORDS", "MixedModelSpec", "RandomTerm", "parse_formula"]
