"""Response families and link functions of generalized linear mixed models.

>>> import mixedmodels as mm
>>> fam = mm.families.Binomial(link="probit")
>>> fam.link.name
'probit'
"""

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
from .links import (
    LINKS,
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
from .response import make_response, response_variables, split_cbind

__all__ = [
    "FAMILIES",
    "LINKS",
    "Binomial",
    "Cauchit",
    "Cloglog",
    "Family",
    "Gamma",
    "Gaussian",
    "Identity",
    "InverseGaussian",
    "InverseLink",
    "InverseSquare",
    "Link",
    "LogLink",
    "Logit",
    "NegativeBinomial",
    "NonIntegerCountWarning",
    "Poisson",
    "Probit",
    "Sqrt",
    "make_family",
    "make_link",
    "make_response",
    "nb_theta_ml",
    "response_variables",
    "split_cbind",
]
