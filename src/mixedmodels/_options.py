"""Package options: how results are presented (not how models are fitted).

``coef_names``: ``"python"`` (default: formulaic's names, ``Intercept``, ``period[T.2]``) or
``"r"`` (R's, as lme4 and glmmTMB print them: ``(Intercept)``, ``period2``) for the labels
of fixed effects in ``fixef``, ``vcov``, ``se``, coefficient tables, intervals and summaries.
``tidy()`` has its own ``names=`` argument (R's by default, as broom.mixed).

Settings are per context (a ``contextvars`` variable): :func:`options` changes them for a
block in this thread only, :func:`set_options` for the rest of the program.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["OPTION_VALUES", "get_options", "options", "set_options"]

#: Every option and its accepted values (the first is the default).
OPTION_VALUES: dict[str, tuple[str, ...]] = {"coef_names": ("python", "r")}

_DEFAULTS = {k: v[0] for k, v in OPTION_VALUES.items()}
_global: dict[str, str] = dict(_DEFAULTS)
_local: ContextVar[dict | None] = ContextVar("mixedmodels_options", default=None)


def _checked(values: dict) -> dict:
    for key, value in values.items():
        if key not in OPTION_VALUES:
            raise ValueError(f"unknown option {key!r}; options: {', '.join(OPTION_VALUES)}")
        if value not in OPTION_VALUES[key]:
            raise ValueError(f"option {key!r} must be one of "
                             f"{', '.join(map(repr, OPTION_VALUES[key]))}, got {value!r}")
    return values


def get_options() -> dict[str, str]:
    """The options in effect here.

    Returns
    -------
    dict
        Option name -> value.
    """
    local = _local.get()
    return {**_global, **(local or {})}


def set_options(**values: str) -> None:
    """Set options for the rest of the program (``mm.set_options(coef_names="r")``).

    Parameters
    ----------
    **values : str
        Options and their values (:data:`OPTION_VALUES`).
    """
    _global.update(_checked(values))


@contextmanager
def options(**values: str) -> Iterator[None]:
    """Set options for a ``with`` block, in this thread only.

    Parameters
    ----------
    **values : str
        Options and their values (:data:`OPTION_VALUES`).

    Returns
    -------
    contextlib.AbstractContextManager
        Restores the previous options when the block ends.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> with mm.options(coef_names="r"):
    ...     list(m.fixef.index)
    ['(Intercept)', 'Days']
    """
    token = _local.set({**(_local.get() or {}), **_checked(values)})
    try:
        yield
    finally:
        _local.reset(token)
