"""Named parameter blocks mapped to one flat vector (see :mod:`.layout`)."""

from .layout import ROLES, TRANSFORMS, ParameterBlock, ParameterLayout

__all__ = ["ROLES", "TRANSFORMS", "ParameterBlock", "ParameterLayout"]
