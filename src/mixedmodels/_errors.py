"""Exceptions and warnings raised by mixedmodels.

Every error names what is wrong and what to do about it; the classes let callers catch
our problems separately from bugs (``except mixedmodels.FormulaError``).
"""

from __future__ import annotations

import re

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DroppedRowsWarning",
    "FormulaError",
    "FormulaWarning",
    "MixedModelsError",
    "MixedModelsWarning",
    "RankDeficiencyWarning",
    "SingularFitWarning",
    "plain_message",
]


class MixedModelsError(ValueError):
    """Base class of the errors this package raises for bad input."""


class FormulaError(MixedModelsError):
    """The model formula cannot be parsed or does not describe a mixed model."""


class DataError(MixedModelsError):
    """The data do not fit the model: missing columns, wrong types, too few rows."""


class MixedModelsWarning(UserWarning):
    """Base class of this package's warnings.

    An instance reports itself to the per-fit collectors of the current context when it is
    created (:mod:`mixedmodels._messages`): that is how a fit's ``messages`` hold its own
    warnings, and only those, even when fits run in several threads at once.

    Parameters
    ----------
    *args
        The message (as for any warning).
    """

    def __init__(self, *args):
        super().__init__(*args)
        from ._messages import report

        report(self)


class FormulaWarning(MixedModelsWarning):
    """The formula was read differently from how it is written, as R reads it (the response
    dropped from the right-hand side, a one-level factor left out)."""


class DataWarning(MixedModelsWarning):
    """A column was converted to be usable (numbers stored as text objects), or an argument
    cannot be carried over to new data."""


class DroppedRowsWarning(MixedModelsWarning):
    """Rows were dropped because of missing or non-finite values."""


class RankDeficiencyWarning(MixedModelsWarning):
    """Aliased fixed-effect columns were dropped, as lme4 does."""


class SingularFitWarning(MixedModelsWarning):
    """The fit is on the boundary of the parameter space (a variance is zero or a
    correlation is +-1)."""


class ConvergenceWarning(MixedModelsWarning):
    """The optimizer stopped where the gradient says it could still improve."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_message(exc: BaseException) -> str:
    """``str(exc)`` without terminal colour codes (formulaic colours the offending operator
    in its syntax errors; the ``⧛ ⧚`` markers around it stay)."""
    return _ANSI.sub("", str(exc)).strip()
