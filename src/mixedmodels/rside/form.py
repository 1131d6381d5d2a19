"""nlme's one-sided ``form`` of a correlation or variance structure, read without data.

nlme writes where a structure lives as ``~ covariates | groups``:

* ``"~ time | Subject"`` -- covariate ``time``, one block per ``Subject``;
* ``"~ x + y"`` -- coordinates ``x`` and ``y``, one block for all the data;
* ``"~ 1 | Subject"`` -- no covariate (the order of the rows within the group);
* ``"~ 1 | a/b"`` -- groups are the combinations of ``a`` and ``b`` (nlme's innermost
  level of nesting); ``a * b`` and ``a:b`` mean the same for variance strata;
* ``"~ fitted(.)"`` -- the fitted values (variance functions only).

Covariates are column names or numeric expressions in formulaic's syntax (``log(dose)``);
grouping variables are column names. A structure with one covariate (a time, a variance
covariate) reads the whole covariate side as one expression, as nlme evaluates it:
``"~ Days + 1"`` is ``Days + 1``, not ``Days``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .._errors import FormulaError

__all__ = ["StructureForm", "parse_form"]

#: a grouping column: an R-style name (letters of any script, digits, '_' and '.', not
#: starting with a digit) or any name quoted in backticks (`plot id`)
_NAME = re.compile(r"^(?!\d)[\w.]+$")
_FITTED = re.compile(r"^fitted\s*\(\s*\.?\s*\)$")


@dataclass(frozen=True)
class StructureForm:
    """A parsed ``form``.

    Attributes
    ----------
    text : str
        The form as written.
    covariates : tuple of str
        Covariate expressions (empty for ``~ 1``).
    groups : tuple of str
        Grouping columns (empty when the structure spans all rows); several mean their
        interaction.
    fitted : bool
        The covariate is ``fitted(.)``: the model's fitted values.
    expression : str
        The covariate side as written (``"Days + 1"``; empty for ``~ 1`` and
        ``fitted(.)``): what a single-covariate structure evaluates, as nlme's
        ``getCovariate`` evaluates the form's right side as one R expression.
    """

    text: str
    covariates: tuple[str, ...]
    groups: tuple[str, ...]
    fitted: bool = False
    expression: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        """Grouping columns (covariate columns are found by the design's variable scan)."""
        return self.groups

    def with_groups(self, groups: tuple[str, ...]) -> StructureForm:
        """The same covariates within other groups (lme's default: the innermost
        random-effects grouping)."""
        cov = " + ".join(self.covariates) or ("fitted(.)" if self.fitted else "1")
        text = f"~ {cov} | {'/'.join(groups)}" if groups else f"~ {cov}"
        return StructureForm(text, self.covariates, tuple(groups), self.fitted,
                             self.expression)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_form(form: str, what: str) -> StructureForm:
    """Read ``form`` (see the module docstring).

    Parameters
    ----------
    form : str
        ``"~ covariates | groups"``.
    what : str
        The structure it belongs to, for error messages (``"cor_ar1"``).

    Returns
    -------
    StructureForm

    Raises
    ------
    FormulaError
        When ``form`` is not a one-sided formula of that shape.
    """
    if not isinstance(form, str):
        raise FormulaError(f"{what}: form must be a string such as '~ time | Subject', not "
                           f"{type(form).__name__}")
    return _parse(form, what)


@lru_cache(maxsize=256)
def _parse(form: str, what: str) -> StructureForm:
    """:func:`parse_form` on a string (cached: a fit reads its forms several times, and
    the result is a frozen value)."""
    text = form.strip()
    if not text.startswith("~"):
        raise FormulaError(f"{what}: form {form!r} must be a one-sided formula starting with "
                           "'~', such as '~ time | Subject' or '~ x + y'")
    body = text[1:].strip()
    pieces = _split_top(body, "|")
    if len(pieces) > 2:
        raise FormulaError(f"{what}: form {form!r} has more than one '|'; write "
                           "'~ covariates | groups'")
    cov_text = pieces[0].strip()
    if not cov_text:
        raise FormulaError(f"{what}: form {form!r} has nothing before '|'; write '~ 1 | g' "
                           "for no covariate")
    fitted = bool(_FITTED.match(cov_text))
    covariates: tuple[str, ...] = ()
    if not fitted and cov_text != "1":
        terms = [t.strip() for t in _split_top(cov_text, "+")]
        if any(not t for t in terms):
            raise FormulaError(f"{what}: form {form!r}: empty covariate term")
        terms = [t for t in terms if t != "1"]
        if any(t in ("0", "-1") for t in terms):
            raise FormulaError(f"{what}: form {form!r}: covariates have no intercept to drop")
        covariates = tuple(terms)
    groups: tuple[str, ...] = ()
    if len(pieces) == 2:
        group_text = pieces[1].strip()
        raw = [g.strip() for g in re.split(r"[/*:]", group_text)]
        quoted = [len(g) > 2 and g[0] == g[-1] == "`" for g in raw]
        names = [g[1:-1] if q else g for g, q in zip(raw, quoted, strict=True)]
        bad = [g for g, q in zip(names, quoted, strict=True) if not (q or _NAME.match(g))]
        if not group_text or bad:
            raise FormulaError(
                f"{what}: form {form!r}: the grouping after '|' must be column names "
                "(joined by '/' for nested groups), e.g. '~ time | Subject'")
        groups = tuple(dict.fromkeys(names))
    return StructureForm(text, covariates, groups, fitted, cov_text if covariates else "")
