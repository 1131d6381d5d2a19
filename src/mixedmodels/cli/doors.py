"""The front doors the command line can call, and the options each one takes.

The parser is built from two tables rather than from per-model branches: :data:`OPTIONS`
(every model option the ``fit`` command knows: its flag, help text and the keyword it
becomes) and :data:`FRONT_DOORS` (each fitting function and the options it accepts).
Adding a front door -- glmmTMB's, with ``--zi`` and ``--disp`` -- is one :class:`Option`
per new flag and one :class:`FrontDoor` row, e.g.::

    Option("zi", "--zi", "ziformula", "zero-inflation formula, e.g. '~ 1'",
           metavar="FORMULA"),
    Option("disp", "--disp", "dispformula", "dispersion formula, e.g. '~ x'",
           metavar="FORMULA"),
    FrontDoor("glmmtmb", "glmmTMB-style GLMM", ("family", "link", "zi", "disp", ...)),
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CLIError

__all__ = [
    "FRONT_DOORS",
    "NEGATIVE_BINOMIAL_NAMES",
    "OPTIONS",
    "FrontDoor",
    "Option",
    "check_family",
    "check_response",
    "choose_door",
    "fit_keywords",
]


@dataclass(frozen=True)
class Option:
    """One model option of ``mixedmodels fit``.

    Attributes
    ----------
    dest : str
        Name of the parsed attribute (and the key front doors list).
    flag : str
        The command-line flag, ``"--nagq"``.
    keyword : str
        Keyword argument of the fitting function it becomes (``"nAGQ"``).
    help : str
        Help text.
    metavar : str or None
        Placeholder shown in the help; None for a switch (a flag without a value).
    type : callable
        Converts the command-line string (switches: unused).
    to_keyword : callable
        Maps the parsed value to the keyword's value (``--ml`` -> ``REML=False``).
    """

    dest: str
    flag: str
    keyword: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] = str
    to_keyword: Callable[[Any], Any] = field(default=lambda value: value)

    @property
    def is_switch(self) -> bool:
        return self.metavar is None

    def argparse_kwargs(self) -> dict[str, Any]:
        """Arguments of ``ArgumentParser.add_argument`` (default None = not given)."""
        if self.is_switch:
            return {"dest": self.dest, "action": "store_true", "default": None,
                    "help": self.help}
        return {"dest": self.dest, "metavar": self.metavar, "type": self.type,
                "default": None, "help": self.help}


@dataclass(frozen=True)
class FrontDoor:
    """A fitting function of the package reachable from ``mixedmodels fit --model NAME``.

    Attributes
    ----------
    name : str
        The ``--model`` choice, which is also the function's name in ``mixedmodels``.
    help : str
        One line for ``--help``.
    options : tuple of str
        ``Option.dest`` of every option the function accepts; any other given option is an
        error naming the models that do take it.
    families : frozenset of str, optional
        For a door that knows its family (``glmer_nb``): the ``--family`` spellings it
        accepts; ``--family`` then only selects the door and is not passed on.
    counts_response : bool
        Takes a ``cbind(successes, failures)`` response (the GLMM doors; not lmer).
    """

    name: str
    help: str
    options: tuple[str, ...]
    families: frozenset[str] | None = None
    counts_response: bool = True

    def fitter(self) -> Callable[..., Any]:
        import mixedmodels

        return getattr(mixedmodels, self.name)


def _count(text: str) -> int:
    """A non-negative integer (argparse reports a ValueError as an invalid value)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_count.__name__ = "non-negative integer"   # argparse names the type in its message

#: The family names the help and the errors list (every spelling in FAMILIES is accepted).
_FAMILY_NAMES = "binomial, poisson, Gamma, inverse_gaussian, gaussian, negative_binomial"

OPTIONS: dict[str, Option] = {o.dest: o for o in (
    Option("ml", "--ml", "REML", "maximum likelihood instead of REML (lmer)",
           to_keyword=lambda given: not given),
    Option("family", "--family", "family",
           f"response family: {_FAMILY_NAMES} (which selects glmer_nb, estimating the "
           "shape)",
           metavar="NAME"),
    Option("link", "--link", "link",
           "link function overriding the family's default (logit, probit, cloglog, log, "
           "identity, inverse, sqrt, ...)", metavar="NAME"),
    Option("nagq", "--nagq", "nAGQ",
           "0: fast mode; 1: Laplace (default); 2-25: adaptive Gauss-Hermite quadrature",
           metavar="K", type=_count),
    Option("weights", "--weights", "weights", "column of prior weights", metavar="COLUMN"),
    Option("offset", "--offset", "offset", "column added to the linear predictor",
           metavar="COLUMN"),
    Option("zi", "--zi", "ziformula",
           "zero-inflation formula of glmmTMB's class, e.g. '~ 1' or '~ x + (1 | g)'",
           metavar="FORMULA"),
    Option("disp", "--disp", "dispformula",
           "dispersion formula of glmmTMB's class, e.g. '~ x' ('~ 0': fixed for gaussian)",
           metavar="FORMULA"),
    Option("reml", "--reml", "REML", "REML for glmmtmb (integrates the fixed effects)",
           to_keyword=lambda given: bool(given)),
)}

#: ``--family`` spellings that mean a negative binomial with its shape to be estimated.
NEGATIVE_BINOMIAL_NAMES = frozenset({"negative_binomial", "negative.binomial", "nbinom2"})

FRONT_DOORS: dict[str, FrontDoor] = {d.name: d for d in (
    FrontDoor("lmer", "linear mixed model, REML or ML (lme4's lmer)",
              ("ml", "weights", "offset"), counts_response=False),
    FrontDoor("glmer", "generalized linear mixed model (lme4's glmer)",
              ("family", "link", "nagq", "weights", "offset")),
    FrontDoor("glmer_nb", "negative binomial GLMM with the shape estimated (glmer.nb)",
              ("family", "link", "nagq", "weights", "offset"),
              families=NEGATIVE_BINOMIAL_NAMES),
    FrontDoor("glmmtmb", "glmmTMB's class: zero-inflation, hurdles, dispersion models and "
              "its families (nbinom1, tweedie, beta, truncated_*, ...)",
              ("family", "link", "zi", "disp", "reml", "weights", "offset")),
)}

#: The options that make ``--model`` default to glmmtmb.
_GLMMTMB_OPTIONS = ("zi", "disp", "reml")

#: The options that make ``--model`` default to a GLMM front door.
_GLMM_OPTIONS = ("family", "link", "nagq")


def _glmmtmb_family(name: str) -> bool:
    """Whether ``name`` is one of glmmTMB's families (which :func:`mixedmodels.glmmtmb`
    fits)."""
    from .._errors import FormulaError
    from ..families import make_response_family

    try:
        make_response_family(name)
    except FormulaError:
        return False
    return True


def check_family(name: str, door: str = "glmer") -> str:
    """The family name, or a :class:`CLIError` listing the accepted ones."""
    from ..families import FAMILIES

    if door == "glmmtmb":
        if _glmmtmb_family(name):
            return name
        from ..families import RESPONSE_FAMILIES

        raise CLIError(f"unknown family {name!r} for --model glmmtmb; choose one of "
                       f"{', '.join(sorted(RESPONSE_FAMILIES))}")
    if name.strip().lower() in FAMILIES:
        return name
    close = difflib.get_close_matches(name.lower(), list(FAMILIES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CLIError(f"unknown family {name!r}{hint}; choose one of {_FAMILY_NAMES}")


def choose_door(model: str | None, given: dict[str, Any]) -> FrontDoor:
    """The front door for ``--model`` (None: chosen from the options given).

    Without ``--model``: ``glmmtmb`` when ``--zi``, ``--disp`` or ``--reml`` is given or
    the family is one only glmmTMB's class has (``nbinom1``, ``tweedie``, ...),
    ``glmer_nb`` for a negative binomial family, ``glmer`` when a GLMM option
    (``--family``, ``--link``, ``--nagq``) is given, else ``lmer``.
    """
    from ..families import FAMILIES

    if model is not None:
        return FRONT_DOORS[model]
    family = given.get("family")
    if any(k in given for k in _GLMMTMB_OPTIONS) or (
            family is not None and family.strip().lower() not in FAMILIES
            and _glmmtmb_family(family)):
        return FRONT_DOORS["glmmtmb"]
    if family is not None and family.strip().lower() in NEGATIVE_BINOMIAL_NAMES:
        return FRONT_DOORS["glmer_nb"]
    if any(k in given for k in _GLMM_OPTIONS):
        return FRONT_DOORS["glmer"]
    return FRONT_DOORS["lmer"]


def check_response(door: FrontDoor, formula: str) -> None:
    """A :class:`CLIError` for a ``cbind()`` response given to a door that cannot take it."""
    response = formula.split("~", 1)[0].strip() if "~" in formula else ""
    if not door.counts_response and response.replace(" ", "").startswith("cbind("):
        raise CLIError(f"the response {response!r} counts successes and failures: add "
                       "--family binomial (--model " + door.name + " fits a Gaussian "
                       "response)")


def fit_keywords(door: FrontDoor, given: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the door's function from the options given on the command line.

    Raises :class:`CLIError` for an option the door does not take, naming the doors that do.
    """
    for dest in given:
        if dest not in door.options:
            takers = [d.name for d in FRONT_DOORS.values() if dest in d.options]
            raise CLIError(f"{OPTIONS[dest].flag} does not apply to --model {door.name}; "
                           f"it is an option of --model {' / '.join(takers)}")
    passed = dict(given)
    family = passed.get("family")
    if family is not None and door.families is None:
        check_family(family, door.name)
    elif family is not None:
        if family.strip().lower() not in door.families:
            raise CLIError(f"--model {door.name} fits {', '.join(sorted(door.families))} "
                           f"only; --family {family} needs --model glmer")
        del passed["family"]
    return {OPTIONS[dest].keyword: OPTIONS[dest].to_keyword(value)
            for dest, value in passed.items()}
