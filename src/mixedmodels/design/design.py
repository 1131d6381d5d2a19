"""The :class:`Design`: everything numeric a mixed model needs, materialized from data."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .._errors import DataError, FormulaError, FormulaWarning
from .._messages import user_stacklevel
from ..formula.spec import MixedModelSpec
from .components import LinearPredictor, build_component, cond_predictor
from .contrasts import resolve_contrasts
from .dot import expand_dot
from .fixed import FixedEffects, build_fixed, known_finite
from .frame import (
    ColumnFrame,
    ColumnSelection,
    DroppedRows,
    as_data_frame,
    build_model_frame,
    column_names,
    drop_more_rows,
    model_columns_frame,
)
from .random import RandomEffectsTerm, build_random_term, term_order
from .response import evaluate_numeric, is_numeric_column, numeric_response, per_row_values
from .variables import expression_variables

__all__ = [
    "Design",
    "check_lmm_identifiable",
    "check_lmm_sizes",
    "constant_response_message",
    "materialize",
    "model_columns",
    "nonfinite_rows",
]


class _FrameField:
    """The :class:`Design`'s ``frame``: a DataFrame, or a
    :class:`~mixedmodels.design.frame.ColumnSelection` that makes it on first read.

    A data descriptor, so that the dataclass's ``__init__`` (and ``dataclasses.replace``)
    store through it and every read of ``design.frame`` gives a DataFrame. Selecting the
    model's columns from the caller's data costs ~0.1-0.3 ms -- a tenth of a small fit --
    and most fits never read the frame (fitted values and residuals read its index)."""

    _slot = "_frame_value"

    def __get__(self, obj, owner=None):
        if obj is None:
            # no class-level default: the dataclass sees a required field
            raise AttributeError("frame")
        value = obj.__dict__[self._slot]
        return value.resolve() if isinstance(value, ColumnSelection) else value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self._slot] = value


@dataclass(frozen=True)
class Design:
    """Numeric design of a mixed model.

    Attributes
    ----------
    spec : MixedModelSpec
    y : ndarray (n,)
        Response (for binomial GLMMs: the proportion of successes).
    fixed : FixedEffects
        ``X`` (n x p) and its column names.
    terms : tuple of RandomEffectsTerm
        Random-effects terms in lme4's order: by decreasing number of levels (ties keep the
        order written). theta and the random-effects vector ``u`` follow this order.
    weights : ndarray (n,) or None
        Prior weights.
    offset : ndarray (n,)
        Sum of formula and argument offsets (zeros when none).
    frame : pandas.DataFrame
        Complete-case model frame (row labels of the rows used): the model's columns,
        selected from a snapshot of the caller's data when first read (see
        :class:`~mixedmodels.design.frame.ColumnSelection`).
    dropped : DroppedRows
        Rows left out and why.
    extra : dict
        Family-specific response information (binomial trial counts, ...).
    offset_column : str or None
        The column ``offset=`` named, which prediction on new data reads again.
    offset_array : bool
        True when ``offset=`` was given as values (an array or Series): prediction on new
        data cannot recompute it.
    extra_components : tuple of LinearPredictor
        Linear predictors besides the conditional one (``zi``, ``disp``), on the same rows.
    """

    spec: MixedModelSpec
    y: np.ndarray
    fixed: FixedEffects
    terms: tuple[RandomEffectsTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray
    frame: pd.DataFrame = _FrameField()
    dropped: DroppedRows
    extra: dict = field(default_factory=dict)
    offset_column: str | None = None
    offset_array: bool = False
    extra_components: tuple[LinearPredictor, ...] = ()

    @property
    def lookup_frame(self) -> pd.DataFrame:
        """A frame to read the model's columns from by name (the residual structures' groups
        and covariates): the frame the design was built from when it reads the caller's
        data directly -- it may hold other columns too, and its lookups are kept -- else
        :attr:`frame`. Same rows and row order as :attr:`frame` in both cases."""
        value = self.__dict__[_FrameField._slot]
        return value.source if isinstance(value, ColumnSelection) else value

    @property
    def components(self) -> dict[str, LinearPredictor]:
        """Every linear predictor by name, ``cond`` (``X``, ``terms``, ``offset``) first."""
        out = {"cond": cond_predictor(self.fixed, self.terms, self.offset)}
        out.update((c.name, c) for c in self.extra_components)
        return out

    def component_design(self, name: str) -> Design:
        """This design with another component in the place of the conditional one.

        Lets code written for one linear predictor (prediction on new data, varcorr,
        ranef) serve every component.

        Parameters
        ----------
        name : {"cond", "zi", "disp"}

        Returns
        -------
        Design
            The component's ``X``, terms, offset and formula parts, with the same rows
            and response.
        """
        if name == "cond":
            return self
        comps = self.components
        if name not in comps:
            raise KeyError(f"the model has no {name!r} component; components: "
                           f"{', '.join(comps)}")
        lp, cs = comps[name], self.spec.components[name]
        spec = replace(self.spec, fixed=cs.fixed, offsets=cs.offsets, random=cs.random,
                       extra_components=())
        return replace(self, spec=spec, fixed=lp.fixed, terms=lp.terms, offset=lp.offset,
                       extra_components=())

    @property
    def X(self) -> np.ndarray:
        """The conditional model's fixed-effects matrix (n x p)."""
        return self.fixed.X

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.y.shape[0]

    @property
    def p(self) -> int:
        """Number of fixed effects of the conditional model."""
        return self.fixed.X.shape[1]

    @property
    def q(self) -> int:
        """Number of random effects of the conditional model (levels x columns, summed
        over terms)."""
        return sum(t.q for t in self.terms)

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters of the conditional model's terms."""
        return sum(t.structure.n_theta for t in self.terms)

    def theta0(self) -> np.ndarray:
        """lme4's starting point of theta.

        Returns
        -------
        ndarray
            The identity relative covariance for every term, in the terms' order.
        """
        return np.concatenate([t.structure.theta0() for t in self.terms])

    def theta_lower(self) -> np.ndarray:
        """Lower bounds of theta.

        Returns
        -------
        ndarray
            0 for Cholesky diagonals, ``-inf`` for the other entries (lme4's bounds).
        """
        return np.concatenate([t.structure.lower_bounds() for t in self.terms])

    def theta_slices(self) -> list[slice]:
        """Position of each term's parameters in theta.

        Returns
        -------
        list of slice
            One per term, in the terms' order.
        """
        out, start = [], 0
        for t in self.terms:
            out.append(slice(start, start + t.structure.n_theta))
            start += t.structure.n_theta
        return out

    def scale_spherical(self, theta: np.ndarray, blocks: list, scale: float) -> list:
        """Covariances of the spherical random effects ``u`` on the scale of ``b``.

        Parameters
        ----------
        theta : ndarray
        blocks : list of ndarray
            Per term, per-level blocks ``B_k`` (l_k, p_k, p_k) of ``u``'s covariance.
        scale : float
            ``sigma^2`` for an LMM, the dispersion for a GLMM.

        Returns
        -------
        list of ndarray
            ``scale * Lambda_k B_k Lambda_k'`` per term.
        """
        out = []
        for t, sl, blk in zip(self.terms, self.theta_slices(), blocks, strict=True):
            lam = t.structure.lambda_(theta[sl])
            out.append(scale * np.matmul(np.matmul(lam, blk), lam.T))
        return out

    def with_response(self, y: np.ndarray) -> Design:
        """The same design with a new response (for simulation and refitting).

        Parameters
        ----------
        y : array-like
            One value per observation.

        Returns
        -------
        Design

        Raises
        ------
        DataError
            When ``y`` has another length.
        """
        y = np.asarray(y, dtype=float)
        if y.shape != self.y.shape:
            raise DataError(f"new response has shape {y.shape}, expected {self.y.shape}")
        return replace(self, y=y)


def model_columns(spec: MixedModelSpec, response_vars: list[str] | None = None,
                  columns=None) -> dict:
    """Data columns the model reads, each with its role (for errors and NA handling).

    ``columns`` (the data's column names) decides names formulaic also knows (``np``,
    ``Sum``): columns when the data has them (see :mod:`.variables`)."""
    roles: dict[str, str] = {}
    if columns is not None and not isinstance(columns, set | frozenset):
        columns = frozenset(columns)

    def add(names, role):
        for n in names:
            roles.setdefault(n, role)

    add(response_vars if response_vars is not None
        else expression_variables(spec.response, columns), "response")
    add(expression_variables(spec.fixed, columns), "fixed effects")
    for off in spec.offsets:
        add(expression_variables(off, columns), "offset")
    for term in spec.random:
        add(expression_variables(term.expr, columns), f"random-effects term {term.source}")
        add(term.group_vars, f"grouping factor of {term.source}")
    for comp in spec.extra_components:
        what = {"zi": "ziformula", "disp": "dispformula"}.get(comp.name, comp.name)
        add(expression_variables(comp.fixed, columns), what)
        for off in comp.offsets:
            add(expression_variables(off, columns), f"offset of the {what}")
        for term in comp.random:
            add(expression_variables(term.expr, columns),
                f"random-effects term {term.source} of the {what}")
            add(term.group_vars, f"grouping factor of {term.source} in the {what}")
    return roles


def _check_weights(label: str, w: np.ndarray) -> None:
    """Prior weights must be non-negative (lme4 refuses negative weights too)."""
    negative = np.flatnonzero(w < 0)
    if negative.size:
        first = ", ".join(str(i) for i in negative[:5])
        raise DataError(
            f"{label}: prior weights must be non-negative; {negative.size} are negative "
            f"(at row positions {first}{'...' if negative.size > 5 else ''})"
        )


@dataclass(frozen=True)
class _Parts:
    """Everything evaluated on the model frame, before the check for non-finite values."""

    y: np.ndarray
    extra: dict
    fixed: FixedEffects
    formula_offset: np.ndarray
    terms: list


def _evaluate(spec: MixedModelSpec, frame: pd.DataFrame, response, contrasts,
              matrices=None) -> _Parts:
    out = response(spec.response, frame)
    y, extra = out if isinstance(out, tuple) else (out, {})
    fixed = build_fixed(spec.fixed, frame, contrasts)
    off = np.zeros(len(frame))
    for expr in spec.offsets:
        off = off + evaluate_numeric(expr, frame, "offset")
    groupings: dict = {}        # one coding per grouping factor, shared by its terms
    terms = [build_random_term(t, frame, matrices, groupings) for t in spec.random]
    return _Parts(np.asarray(y, dtype=float), extra, fixed, off, terms)


def nonfinite_rows(spec: MixedModelSpec, parts) -> tuple[np.ndarray, dict[str, int]]:
    """Rows where a transformation produced a missing or infinite value, by expression.

    ``parts`` has ``y``, ``fixed`` (``X``, ``names``), ``formula_offset`` and ``terms``
    (``Z`` and ``term.source`` each). Returns the mask and the count per expression."""
    n = parts.y.shape[0]
    # (an X the rank check already found finite is not scanned again)
    blocks = [parts.y, *(() if known_finite(parts.fixed) else (parts.fixed.X,)),
              *(t.Z for t in parts.terms)]
    if spec.offsets:
        blocks.append(parts.formula_offset)
    for b in blocks:         # (a loop, not all() over a generator: a few blocks)
        if not np.isfinite(b).all():
            break
    else:
        return np.zeros(n, dtype=bool), {}     # the common case, without a mask per column
    checks = [(spec.response, ~np.isfinite(parts.y))]
    X = parts.fixed.X
    if X.shape[1]:
        bad_cols = ~np.isfinite(X)
        checks += [(name, bad_cols[:, j]) for j, name in enumerate(parts.fixed.names)]
    if spec.offsets:
        label = " + ".join(f"offset({e})" for e in spec.offsets)
        checks.append((label, ~np.isfinite(parts.formula_offset)))
    checks += [(t.term.source, ~np.isfinite(t.Z).all(axis=1)) for t in parts.terms]
    bad = np.zeros(n, dtype=bool)
    reasons: dict[str, int] = {}
    for label, mask in checks:
        if mask.any():
            reasons[label] = reasons.get(label, 0) + int(mask.sum())
            bad |= mask
    return bad, reasons


def materialize(
    spec: MixedModelSpec,
    data: pd.DataFrame,
    *,
    weights=None,
    offset=None,
    response=numeric_response,
    response_vars: list[str] | None = None,
    require_random: bool = True,
    contrasts: dict | None = None,
    covariance_matrices: dict | None = None,
    extra_columns: dict[str, str] | None = None,
) -> Design:
    """Build the :class:`Design` of ``spec`` on ``data``.

    Rows are used when every value the model reads is present and finite: first the data
    columns (and ``weights``/``offset`` values), then what transformations make of them
    (``log(x)`` of a non-positive ``x``). Left-out rows are reported with a
    :class:`~mixedmodels.DroppedRowsWarning` giving the count per column or expression;
    rows with zero prior weight are left out too (they carry no information; lme4 returns
    an infinite criterion for them instead). Stateful transforms (``scale(x)``,
    ``center(x)``) use the rows that are fitted.

    Parameters
    ----------
    spec : MixedModelSpec
    data : pandas.DataFrame
        Not modified.
    weights, offset : str or array-like, optional
        Prior weights / offset: a column name or one value per row.
    response : callable
        ``response(expr, frame) -> (y, extra)`` or ``-> y``; the LMM default requires a
        numeric response.
    response_vars : list of str, optional
        Columns the response reads, when the response syntax is not a plain expression
        (``cbind(...)``).
    require_random : bool
        Raise when the formula has no random-effects term.
    contrasts : dict, optional
        Column name -> contrasts for that categorical predictor of the fixed part:
        ``"treatment"``, ``"sum"``, ``"helmert"``, ``"poly"``, ``"SAS"``, ``"diff"`` (R's
        ``"contr.sum"`` spelling too), a formulaic ``Contrasts`` object or a coding matrix
        (lme4's ``contrasts = list(x = "contr.sum")``). Ordered categoricals default to
        ``"poly"``, others to ``"treatment"``, as in R.
    covariance_matrices : dict, optional
        Known matrices of ``propto`` and ``equalto`` terms by the name the formula gives
        them (``propto(1 | species, K)`` with ``{"K": K}``): numpy arrays, or DataFrames
        whose index and columns name the levels they belong to (see
        :mod:`mixedmodels.design.structured`).
    extra_columns : dict, optional
        Further columns the model reads outside the formula (the covariates and groups of
        a residual correlation or variance structure), each with its role for error
        messages: they are part of the model frame, and rows where they are missing are
        dropped with the others.

    Returns
    -------
    Design
        Every component's linear predictor on the complete-case rows, the response, the
        weights and offset, and the report of dropped rows.

    Notes
    -----
    ``.`` in the fixed part stands for every column of ``data`` that the response does not
    read, grouping columns included (lme4's rule; see :mod:`.dot`).

    Raises
    ------
    FormulaError, DataError
        Naming the term, column or argument at fault.
    """
    if require_random and not spec.random:
        raise FormulaError(
            f"formula {spec.formula!r} has no random-effects term such as (1 | group); for "
            "a model without random effects use mm.lm() (an ordinary linear model)"
        )
    data = as_data_frame(data)
    # the column names as a set, once (iterating pandas' text column index costs ~15 us a
    # pass, and each lookup below would make one)
    names = column_names(data)
    spec = expand_dot(spec, data.columns,
                      response_vars if response_vars is not None
                      else expression_variables(spec.response, names))
    columns = model_columns(spec, response_vars, names)
    for name, role in (extra_columns or {}).items():
        columns.setdefault(name, role)
    contrasts = _checked_contrasts(resolve_contrasts(contrasts), columns, data)
    per_row = {}
    for name, value in (("weights", weights), ("offset", offset)):
        resolved = per_row_values(value, data, name)
        if resolved is not None:
            per_row[name] = resolved
    if "weights" in per_row:
        _check_weights(*per_row["weights"])
    mf = build_model_frame(data, columns, {label: v for label, v in per_row.values()})
    frame, dropped = mf.frame, mf.dropped
    rows = mf.mask.nonzero()[0]  # positions in data of the rows in frame (1-d mask)

    w = per_row["weights"][1][rows] if "weights" in per_row else None
    if w is not None and np.any(w == 0):
        zero = w == 0
        frame = model_columns_frame(frame, mf.selection)   # (rows dropped from it below)
        frame, dropped = drop_more_rows(dropped, frame, zero,
                                        {"zero prior weight": int(zero.sum())},
                                        "zero prior weight")
        rows, w = rows[~zero], w[~zero]

    if covariance_matrices is not None and not isinstance(covariance_matrices, dict):
        raise DataError("covariance_matrices must be a dict mapping the names used in the "
                        "formula (propto(... , K)) to matrices, e.g. {'K': K}; got "
                        f"{type(covariance_matrices).__name__}")
    parts = _evaluate(spec, frame, response, contrasts, covariance_matrices)
    bad, reasons = nonfinite_rows(spec, parts)
    if bad.any():
        frame = model_columns_frame(frame, mf.selection)
        frame, dropped = drop_more_rows(
            dropped, frame, bad, reasons,
            "a missing or infinite value from a transformation")
        rows = rows[~bad]
        w = None if w is None else w[~bad]
        # re-evaluate on the rows kept: stateful transforms (scale) must not see the others
        parts = _evaluate(spec, frame, response, contrasts, covariance_matrices)
        still, reasons = nonfinite_rows(spec, parts)
        if still.any():
            raise DataError(
                "transformations give missing or infinite values on the rows kept: "
                + ", ".join(f"{k!r}: {v} rows" for k, v in reasons.items())
                + "; check them (for example scale() of a constant column)"
            )

    off = parts.formula_offset
    if "offset" in per_row:
        off = off + per_row["offset"][1][rows]
    if w is not None and np.all(w == 1.0):
        w = None  # unit weights: the unweighted code path gives identical numbers
    # lme4 order: decreasing number of levels, stable for ties
    terms = parts.terms
    order = term_order(terms)
    extra = tuple(build_component(c, frame, contrasts, covariance_matrices)
                  for c in spec.extra_components)
    if mf.selection is not None and frame is mf.selection.source:
        frame = mf.selection        # the model's columns, selected when first read
    elif isinstance(frame, ColumnFrame):
        # (its kept columns served the building only)
        frame = frame.plain() if mf.plain is None else mf.plain
    return Design(spec, np.ascontiguousarray(parts.y), parts.fixed,
                  tuple(terms[i] for i in order), w, off, frame, dropped, parts.extra,
                  offset_column=offset if isinstance(offset, str) else None,
                  offset_array=offset is not None and not isinstance(offset, str),
                  extra_components=extra)


def _checked_contrasts(contrasts: dict | None, columns: dict, data: pd.DataFrame):
    """Contrasts for columns the fixed part uses as factors; a numeric column is refused
    (R: contrasts apply only to factors), one the model does not use is reported."""
    if not contrasts:
        return None
    for name in contrasts:
        if name not in columns:
            warnings.warn(
                f"contrasts names {name!r}, which the model does not use; it is ignored "
                f"(the model's columns: {', '.join(map(repr, columns))})",
                FormulaWarning, stacklevel=user_stacklevel())
        elif is_numeric_column(data[name]) and not pd.api.types.is_bool_dtype(
                data[name].dtype):
            raise DataError(
                f"contrasts[{name!r}]: column {name!r} is numeric; contrasts apply to "
                f"categorical predictors only -- write C({name}) in the formula, or convert "
                f"the column with .astype('category'), to use it as a factor"
            )
    return contrasts


def _check_magnitudes(design: Design, shifted: np.ndarray | None = None) -> None:
    """Sums of squares must be finite: the cross-products are built from them.

    ``shifted`` is the response less the offset, when the caller has it. Each block is
    tested by the sum of all its squares first (one BLAS dot; the squares being
    non-negative, every column's sum is finite when it is), its columns only when that
    overflows."""
    if shifted is None:
        shifted = design.y - design.offset
    blocks = [(f"response {design.spec.response!r}", ("",), shifted[:, None]),
              ("fixed effect", design.fixed.names, design.X)]
    blocks += [(f"random-effects term {t.term.source!r}", t.names, t.Z)
               for t in design.terms]
    with np.errstate(over="ignore"):      # (entered once: ~1 us a time)
        for label, names, block in blocks:
            flat = block.ravel()          # (the method: np.ravel's wrapper costs more)
            if math.isfinite(flat @ flat):
                continue
            bad = ~np.isfinite(np.einsum("ij,ij->j", block, block))
            if bad.any():
                column = names[int(np.argmax(bad))]
                raise DataError(
                    f"the values of the {label}{f' {column!r}' if column else ''} are too "
                    "large: their squares overflow double precision; rescale them (e.g. "
                    "divide by a power of 10)"
                )


def check_lmm_identifiable(design: Design, sigma_fixed: bool = False) -> None:
    """lme4's checks for linear mixed models (``lmerControl`` defaults that stop).

    * every grouping factor needs at least 2 levels;
    * fewer levels than observations (otherwise the random effect is confounded with the
      residual) -- unless the residual standard deviation is known (``sigma_fixed``: the
      meta-analysis model, one observation per study);
    * more observations than random effects in each term (same exception);

    and two of ours, where lme4 would return NaN or a degenerate fit: the response must vary
    (after subtracting the offset), and sums of squares must not overflow.
    """
    check_lmm_sizes(design.terms, design.nobs, design.p, sigma_fixed)
    shifted = design.y - design.offset
    _check_magnitudes(design, shifted)
    if shifted.max() == shifted.min():       # (np.ptp's wrapper costs more than this)
        raise DataError(constant_response_message(design.spec.response, shifted[0],
                                                  bool(np.any(design.offset))))


def constant_response_message(response: str, value: float, offset: bool) -> str:
    """The error text for a response without variation."""
    return (f"the response {response!r} is constant"
            f"{' after subtracting the offset' if offset else ''} (every value "
            f"is {value:g}): with no variation the residual variance is zero and the "
            "likelihood has no maximum")


def check_lmm_sizes(terms, n: int, p: int, sigma_fixed: bool = False) -> None:
    """lme4's size checks of :func:`check_lmm_identifiable`, from sizes alone.

    Parameters
    ----------
    terms : sequence of RandomEffectsTerm
        Only ``structured``, ``group``, ``nlevels``, ``q``, ``p``, ``names`` and
        ``term.source`` are read.
    n : int
        Observations used.
    p : int
        Fixed effects.
    sigma_fixed : bool
        The residual standard deviation is known: the level and size checks against ``n``
        are skipped (see :func:`check_lmm_identifiable`).
    """
    for t in terms:
        if t.structured:
            continue      # a structured covariance is identified by its structure
        if t.nlevels < 2:
            raise DataError(
                f"grouping factor {t.group!r} has only {t.nlevels} level; a random effect "
                "needs at least 2 groups (drop the term or use a fixed effect)"
            )
        if sigma_fixed:
            continue
        if t.nlevels >= n:
            raise DataError(
                f"grouping factor {t.group!r} has {t.nlevels} levels for {n} observations; "
                "the number of levels of each grouping factor must be less than the number of "
                "observations, or the random effect cannot be told apart from the residual"
            )
        if t.q >= n:
            shown = ", ".join(t.names[:4]) + (", ..." if t.p > 4 else "")
            raise DataError(
                f"term {t.term.source!r} has {t.q} random effects ({t.nlevels} levels x "
                f"{t.p} column{'s' if t.p > 1 else ''}: {shown}) for {n} observations; the "
                "random-effects parameters and the residual variance are probably "
                "unidentifiable (number of observations must exceed the number of random "
                "effects)"
            )
    if p >= n:
        raise DataError(f"{p} fixed effects for {n} observations: too few observations")
