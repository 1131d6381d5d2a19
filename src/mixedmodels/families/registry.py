"""The one registry of density-based response families, by glmmTMB's names.

>>> from mixedmodels.families import make_response_family
>>> make_response_family("truncated_nbinom2").name
'truncated_nbinom2'
>>> make_response_family("Beta_Family", link="probit").link.name
'probit'
"""

from __future__ import annotations

from collections.abc import Callable

from .._errors import FormulaError
from .compois import ComPois
from .continuous import Beta, Gamma, Gaussian, Lognormal, StudentT, ZiGamma
from .counts import BetaBinomial, Binomial, GenPois, NBinom1, NBinom2, NBinom12, Poisson
from .density import ResponseFamily
from .family import Family
from .tweedie import Tweedie
from .wrappers import Truncated

__all__ = ["RESPONSE_FAMILIES", "make_response_family"]


def _truncated(cls) -> Callable[..., ResponseFamily]:
    def make(link=None, **options):
        return Truncated(cls(link, **options))
    return make


#: glmmTMB family names -> constructors ``(link=None, **options)``.
RESPONSE_FAMILIES: dict[str, Callable[..., ResponseFamily]] = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "betabinomial": BetaBinomial,
    "poisson": Poisson,
    "genpois": GenPois,
    "compois": ComPois,
    "nbinom1": NBinom1,
    "nbinom2": NBinom2,
    "nbinom12": NBinom12,
    "truncated_poisson": _truncated(Poisson),
    "truncated_genpois": _truncated(GenPois),
    "truncated_compois": _truncated(ComPois),
    "truncated_nbinom1": _truncated(NBinom1),
    "truncated_nbinom2": _truncated(NBinom2),
    "gamma": Gamma,
    "zigamma": ZiGamma,
    "beta": Beta,
    "tweedie": Tweedie,
    "lognormal": Lognormal,
    "t": StudentT,
}
#: R spellings and common variants.
_ALIASES = {
    "beta_family": "beta",
    "t_family": "t",
    "student_t": "t",
    "beta_binomial": "betabinomial",
    "negative_binomial": "nbinom2",
    "normal": "gaussian",
    "com_poisson": "compois",
    "truncated_nbinom": "truncated_nbinom2",
}
#: Names of the deviance-based :class:`~mixedmodels.families.family.Family` classes.
_FROM_FAMILY = {"binomial": "binomial", "poisson": "poisson", "Gamma": "gamma",
                "gaussian": "gaussian", "negative_binomial": "nbinom2"}


def _key(name: str) -> str:
    key = name.strip().lower().replace(".", "_").replace("-", "_").replace(" ", "_")
    if key.endswith("()"):
        key = key[:-2]
    return _ALIASES.get(key, key)


def make_response_family(family, link=None, **options) -> ResponseFamily:
    """A density-based family from glmmTMB's name (case-insensitive; R spellings such as
    ``"beta_family"``, ``"t_family"``, ``"Gamma"`` accepted), a :class:`ResponseFamily`
    (returned, or rebuilt with ``link``) or a deviance-based
    :class:`~mixedmodels.families.family.Family` (its density counterpart).

    Parameters
    ----------
    family : str, ResponseFamily or Family
        The family.
    link : str or Link, optional
        Link of the mean (the family's default when omitted).
    **options
        Passed to the family's constructor (e.g. ``dispersion="sd"`` for the gaussian).

    Returns
    -------
    ResponseFamily

    Raises
    ------
    FormulaError
        For an unknown name (the message lists the choices) or a link the family does
        not accept.
    """
    if isinstance(family, ResponseFamily):
        if link is None and not options:
            return family
        family = family.name
    if isinstance(family, Family):
        link = family.link.name if link is None else link
        family = _FROM_FAMILY.get(family.name, family.name)
    if isinstance(family, str):
        key = _key(family)
        if key in RESPONSE_FAMILIES:
            return RESPONSE_FAMILIES[key](link, **options)
    names = ", ".join(sorted({"Gamma" if k == "gamma" else "ziGamma" if k == "zigamma"
                              else k for k in RESPONSE_FAMILIES}))
    raise FormulaError(f"unknown family {family!r}; choose one of {names}")
