"""Response families and link functions of generalized linear mixed models.

>>> import mixedmodels as mm
>>> fam = mm.families.Binomial(link="probit")
>>> fam.link.name
'probit'

Density-based families (glmmTMB's model class) are built by name with
:func:`make_response_family`; :class:`ModelDensity` evaluates their log-densities with
exact derivatives with respect to every channel's linear predictor.
"""

from .density import ModelDensity, Parameter, ResponseFamily, binomial_response
from .family import (
    FAMILIES,
    Binomial,
    Family,
    Gamma,
    Gaussian,
    InverseGaussian,
    NegativeBinomial,
    NonIntegerCountWarning,
    Poisson,
    make_family,
    nb_theta_ml,
)
from .jet import Jet
from .links import (
    LINKS,
    BoundedLogit,
    Cauchit,
    Cloglog,
    Identity,
    InverseLink,
    InverseSquare,
    Link,
    Logit,
    LogLink,
    Probit,
    Sqrt,
    make_link,
)
from .registry import RESPONSE_FAMILIES, make_response_family
from .wrappers import Truncated, ZeroInflated, hurdle

__all__ = [
    "FAMILIES",
    "LINKS",
    "RESPONSE_FAMILIES",
    "Binomial",
    "BoundedLogit",
    "Cauchit",
    "Cloglog",
    "Family",
    "Gamma",
    "Gaussian",
    "Identity",
    "InverseGaussian",
    "InverseLink",
    "InverseSquare",
    "Jet",
    "Link",
    "LogLink",
    "Logit",
    "ModelDensity",
    "NegativeBinomial",
    "NonIntegerCountWarning",
    "Parameter",
    "Poisson",
    "Probit",
    "ResponseFamily",
    "Sqrt",
    "Truncated",
    "ZeroInflated",
    "binomial_response",
    "hurdle",
    "make_family",
    "make_link",
    "make_response_family",
    "nb_theta_ml",
]
