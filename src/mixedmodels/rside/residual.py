r"""The residual model of a fit: correlation x variance function x prior weights (x sigma).

``Var(e) = sigma^2 V`` with ``V = D C D``: ``C`` block diagonal by the correlation's groups
(:mod:`.correlation`), ``D = diag(g_j / sqrt(w_j))`` from the variance function
(:mod:`.variance`) and the prior weights. Whitening by ``W = C^{-1/2} D^{-1}`` (block by
block) makes the residuals of the transformed model independent with variance ``sigma^2``,
and the log-likelihood of the original data is that of the transformed data minus
``log|V| / 2`` -- the Jacobian of the transformation:

.. math:: \log|V| = 2 \sum_j \log(g_j / \sqrt{w_j}) + \sum_i \log|C_i|.

The random-effects model matrix can be whitened with the same ``W`` only when each block of
``C`` lies within one level of every grouping factor (a row of ``W Z`` then still hits one
level per term): nlme requires the correlation's groups to be nested in the random effects'
groups, and so do we. With no grouping in a correlation's form, ``lmer`` uses the innermost
random-effects grouping, as ``lme`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import FormulaError
from ..design.random import grouping_codes
from .blocks import RowBlocks
from .correlation import BoundCorrelation, CorrelationStructure
from .form import StructureForm
from .variance import BoundVariance, VarComb, VarianceFunction

__all__ = ["BoundResidual", "ResidualSpec", "bind_residual", "residual_columns"]


@dataclass(frozen=True)
class ResidualSpec:
    """What the user asked for: a correlation, a variance function, a known sigma.

    Attributes
    ----------
    correlation : CorrelationStructure or None
    variance : VarianceFunction or None
        Several functions given as a list become one :class:`VarComb`.
    sigma : float or None
        A known residual standard deviation.
    """

    correlation: CorrelationStructure | None = None
    variance: VarianceFunction | None = None
    sigma: float | None = None

    @classmethod
    def make(cls, correlation=None, variance=None, sigma=None) -> ResidualSpec:
        """Check and normalize the front doors' ``correlation=``, ``variance=``, ``sigma=``.

        Parameters
        ----------
        correlation : CorrelationStructure or None
        variance : VarianceFunction, list of them, or None
        sigma : float or None

        Returns
        -------
        ResidualSpec
        """
        if correlation is not None and not isinstance(correlation, CorrelationStructure):
            raise TypeError(
                "correlation= must be a correlation structure such as "
                f"mm.cor_ar1(form='~ time | Subject'), not {type(correlation).__name__}")
        if isinstance(variance, list | tuple):
            if not all(isinstance(v, VarianceFunction) for v in variance):
                raise TypeError("variance= as a list must hold variance functions such as "
                                "mm.var_ident(form='~ 1 | Sex')")
            variance = VarComb(functions=tuple(variance)) if len(variance) > 1 else \
                (variance[0] if variance else None)
        if variance is not None and not isinstance(variance, VarianceFunction):
            raise TypeError("variance= must be a variance function such as "
                            "mm.var_power(form='~ age'), or a list of them, not "
                            f"{type(variance).__name__}")
        if sigma is not None:
            if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.number) \
                    or not np.isfinite(sigma) or sigma <= 0:
                raise ValueError(f"sigma= must be a positive number (a known residual "
                                 f"standard deviation), not {sigma!r}")
            sigma = float(sigma)
        return cls(correlation, variance, sigma)

    @property
    def structured(self) -> bool:
        """A correlation or a variance function is present (not only a known sigma)."""
        return self.correlation is not None or self.variance is not None

    @property
    def empty(self) -> bool:
        return not self.structured and self.sigma is None


def _forms(spec: ResidualSpec) -> list[tuple[str, StructureForm]]:
    out = []
    if spec.correlation is not None:
        out.append((spec.correlation.describe(), spec.correlation.parsed_form()))
    if spec.variance is not None:
        out += [(p.describe(), p.parsed_form()) for p in spec.variance.parts()]
    return out


def residual_columns(spec: ResidualSpec) -> dict[str, str]:
    """Data columns the residual model reads, each with its role (for the model frame:
    missing values are dropped with the model's other columns; absent ones are named).

    Parameters
    ----------
    spec : ResidualSpec

    Returns
    -------
    dict of str -> str
    """
    from ..design.variables import expression_variables

    out: dict[str, str] = {}
    for what, form in _forms(spec):
        for expr in form.covariates:
            for v in expression_variables(expr, None):
                out.setdefault(v, f"covariate of {what}")
        for g in form.groups:
            out.setdefault(g, f"grouping of {what}")
    return out


class BoundResidual:
    """A :class:`ResidualSpec` on the rows of a design (see the module docstring).

    Attributes
    ----------
    spec : ResidualSpec
    correlation : BoundCorrelation or None
    variance : BoundVariance or None
    log_w : ndarray (n,) or None
        log prior weights.
    """

    def __init__(self, spec: ResidualSpec, correlation: BoundCorrelation | None,
                 variance: BoundVariance | None, weights: np.ndarray | None, n: int):
        self.spec = spec
        self.correlation = correlation
        self.variance = variance
        self.n = n
        self.log_w = None if weights is None else np.log(np.asarray(weights, dtype=float))
        self.n_cor = 0 if correlation is None else correlation.n_par
        self.n_var = 0 if variance is None else variance.n_par

    @property
    def n_par(self) -> int:
        """Number of estimated residual parameters."""
        return self.n_cor + self.n_var

    @property
    def start(self) -> np.ndarray:
        """Unconstrained starting values (nlme's defaults or the specs' ``value``)."""
        parts = []
        if self.n_cor:
            parts.append(self.correlation.start)
        if self.n_var:
            parts.append(self.variance.start)
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def zero_limits(self) -> np.ndarray:
        """Which residual parameters are logs of a quantity that may reach 0
        (:attr:`~.variance.BoundVariance.zero_limits`); bool (n_par,)."""
        var = np.zeros(0, dtype=bool) if not self.n_var else self.variance.zero_limits
        return np.concatenate([np.zeros(self.n_cor, dtype=bool), var])

    def split(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correlation and variance parts of the unconstrained vector."""
        phi = np.asarray(phi, dtype=float)
        return phi[:self.n_cor], phi[self.n_cor:self.n_cor + self.n_var]

    def log_sd(self, phi: np.ndarray) -> np.ndarray | None:
        """``log(g_j / sqrt(w_j))`` per row (None when all are 0), read-only.

        The last ``phi``'s values are kept: an R-side LMM's optimizer coordinates ask for
        them (the typical standard deviation) right before the whitening at the same
        ``phi`` does (a power of a covariate: ~5 us of a ~40 us evaluation)."""
        key = np.asarray(phi, dtype=float).tolist()
        memo = self.__dict__.get("_log_sd_memo")
        if memo is not None and memo[0] == key:
            return memo[1]
        _, uv = self.split(phi)
        out = None if self.variance is None else self.variance.log_sd(uv)
        if self.log_w is not None:
            out = -0.5 * self.log_w if out is None else out - 0.5 * self.log_w
        if out is not None:
            out.setflags(write=False)       # shared by the callers at this phi
        self._log_sd_memo = (key, out)
        return out

    def whiten(self, phi: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(W M, log|V|)``; None when a correlation matrix is not positive definite.

        Parameters
        ----------
        phi : ndarray
            Unconstrained residual parameters.
        M : ndarray (n, k)

        Returns
        -------
        tuple or None
        """
        uc, _ = self.split(phi)
        log_d = self.log_sd(phi)
        logdet = 0.0
        if log_d is not None:
            M = M * np.exp(-log_d)[:, None]
            logdet = 2.0 * float(np.sum(log_d))
        if self.correlation is not None:
            res = self.correlation.whiten(uc, M)
            if res is None:
                return None
            M, ld_c = res
            logdet += ld_c
        return M, logdet

    @property
    def has_gradient(self) -> bool:
        """The criteria have an analytic gradient in ``phi``: every part gives its
        derivatives, and the correlation is smooth (not :attr:`kinked`)."""
        cor_ok = self.correlation is None or (self.correlation.has_gradient
                                              and not self.kinked)
        return cor_ok and (self.variance is None or self.variance.has_jacobian)

    def whiten_vjp(self, phi: np.ndarray, M: np.ndarray):
        r""":meth:`whiten` and its pullback: ``(W M, log|V|, pullback)``, or None.

        ``pullback(B)`` turns ``B = df / d(W M)`` of a criterion that depends on the
        whitened data through their cross-products and adds ``log|V|`` (see
        :meth:`~.correlation.BoundCorrelation.whiten_vjp`) into ``df / d phi``. With
        ``M_D = D^{-1} M`` (``D = diag(e^{l_j})``, ``l_j = log(g_j / sqrt(w_j))``) and
        ``B_D = df / dM_D`` from the correlation's pullback,

        .. math:: \frac{df}{dl_j} = 2 - \sum_c (M_D)_{jc} (B_D)_{jc}, \qquad
                  \frac{df}{du_k} = \sum_j \frac{df}{dl_j} \frac{dl_j}{du_k}.

        Parameters
        ----------
        phi : ndarray
        M : ndarray (n, k)

        Returns
        -------
        tuple or None
        """
        uc, uv = self.split(phi)
        log_d = self.log_sd(phi)
        logdet = 0.0
        Md = M
        if log_d is not None:
            Md = M * np.exp(-log_d)[:, None]
            logdet = 2.0 * float(np.sum(log_d))
        cor_pullback = None
        Mw = Md
        if self.correlation is not None:
            res = self.correlation.whiten_vjp(uc, Md)
            if res is None:
                return None
            Mw, ld_c, cor_pullback = res
            logdet += ld_c

        def pullback(B):
            if cor_pullback is None:
                g_c, B_d = np.zeros(0), B
            else:
                g_c, B_d = cor_pullback(B)
            if not self.n_var:
                return g_c
            dl = 2.0 - np.sum(Md * B_d, axis=1)
            return np.concatenate([g_c, self.variance.log_sd_jacobian(uv).T @ dl])

        return Mw, logdet, pullback

    def normalize(self, phi: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``T_i D^{-1} r`` with nlme's factor ``T_i`` of each group's correlation matrix,
        rows in data order (:meth:`~.correlation.BoundCorrelation.normalize`): nlme's
        normalized residuals, before dividing by sigma."""
        uc, _ = self.split(phi)
        log_d = self.log_sd(phi)
        r = np.asarray(r, dtype=float)
        if log_d is not None:
            r = r * np.exp(-log_d)
        if self.correlation is None:
            return r
        return self.correlation.normalize(uc, r)

    def draw(self, phi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``V^{1/2} z``, ``z ~ N(0, I)`` (residuals with sigma = 1).

        Parameters
        ----------
        phi : ndarray
        rng : numpy.random.Generator

        Returns
        -------
        ndarray (n,)
        """
        z = rng.standard_normal(self.n)
        uc, _ = self.split(phi)
        if self.correlation is not None:
            e = z.copy()
            for rows, L in zip(self.correlation.blocks.batches,
                               self.correlation.cholesky(uc), strict=True):
                e[rows] = np.matmul(L, z[rows][:, :, None])[:, :, 0]
            z = e
        log_d = self.log_sd(phi)
        return z if log_d is None else z * np.exp(log_d)

    def with_weights(self, weights: np.ndarray | None) -> BoundResidual:
        """The same residual model with other prior weights (the binding -- groups,
        positions, strata -- depends on the rows only, not on the weights: PQL refits its
        working model with new weights at every iteration)."""
        new = object.__new__(BoundResidual)
        new.__dict__.update(self.__dict__)
        new.log_w = None if weights is None else np.log(np.asarray(weights, dtype=float))
        new._log_sd_memo = None
        return new

    def with_fitted(self, fitted: np.ndarray) -> BoundResidual:
        """The same residual model with ``fitted(.)`` covariates set to ``fitted``."""
        if self.variance is None or not self.variance.needs_fitted:
            return self
        new = object.__new__(BoundResidual)
        new.__dict__.update(self.__dict__)
        new.variance = self.variance.with_fitted(fitted)
        new._log_sd_memo = None
        return new

    @property
    def kinked(self) -> bool:
        """The criterion is only piecewise smooth in the correlation parameters
        (:attr:`~.correlation.CorrelationStructure.kinked`)."""
        return self.correlation is not None and self.spec.correlation.kinked

    @property
    def compact_support(self) -> bool:
        """The correlation vanishes beyond its range (its second derivatives jump)."""
        return self.correlation is not None and bool(
            getattr(self.spec.correlation, "range_above_min", False))

    @property
    def needs_fitted(self) -> bool:
        """A variance covariate is ``fitted(.)``."""
        return self.variance is not None and self.variance.needs_fitted

    # -- reporting ---------------------------------------------------------------------------
    def cor_params(self, phi: np.ndarray) -> dict[str, float]:
        """Correlation parameters on nlme's natural scale, by name."""
        if self.correlation is None:
            return {}
        uc, _ = self.split(phi)
        nat = self.correlation.natural(self.correlation.full(uc))
        return dict(zip(self.correlation.names, nat.tolist(), strict=True))

    def var_params(self, phi: np.ndarray) -> dict[str, float]:
        """Variance-function parameters on nlme's natural scale, by name (varIdent: every
        stratum's ratio, the reference's 1)."""
        if self.variance is None:
            return {}
        _, uv = self.split(phi)
        return self.variance.display_values(uv)

    def names(self) -> list[str]:
        """Names of the estimated parameters, ``cor:phi``, ``var:Female``."""
        out = []
        if self.n_cor:
            out += [f"cor:{n}" for n in self.correlation.names]
        if self.n_var:
            out += [f"var:{n}" for n in self.variance.names]
        return out


# -- binding ---------------------------------------------------------------------------------
def _innermost(design) -> tuple[str, ...] | None:
    """Grouping variables of the random-effects term whose groups lie within every other
    term's (lme's default grouping of a correlation); None when there is none."""
    terms = list(design.terms)
    for t in sorted(terms, key=lambda t: -t.nlevels):
        codes = t.grouping.codes
        # (a term's codes are constant within its own groups: not tested)
        if all(o is t or _constant_within(codes, o.grouping.codes) for o in terms):
            return tuple(t.term.group_vars)
    return None


def _constant_within(blocks: np.ndarray, codes: np.ndarray) -> bool:
    """``codes`` takes one value within each block."""
    blocks = np.asarray(blocks, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    if blocks.size == 0:
        return True
    # one integer per (block, code) pair: fewer distinct pairs than the 1-D unique of an
    # (n, 2) array costs (np.unique with axis=0 sorts rows as structured records)
    lo = int(codes.min())
    pairs = (blocks - int(blocks.min())) * (int(codes.max()) - lo + 1) + (codes - lo)
    return np.unique(pairs).size == np.unique(blocks).size


def _correlation_form(spec: ResidualSpec, design) -> StructureForm:
    form = spec.correlation.parsed_form()
    if form.groups or not design.terms:
        return form
    inner = _innermost(design)
    if inner is None:
        raise FormulaError(
            f"{spec.correlation.describe()}: the form names no grouping and the random "
            "effects have no innermost grouping factor (crossed factors); write the "
            "grouping after '|', e.g. form='~ time | Subject'")
    return form.with_groups(inner)


def _reading_order(design, cor_codes: np.ndarray | None) -> np.ndarray:
    """The row order nlme works in: sorted by the random-effects groups (outer first) in
    ``lme``, by the correlation groups in ``gls`` (stable: data order within)."""
    keys = []
    if design.terms:
        keys = [t.grouping.codes for t in sorted(design.terms, key=lambda t: -t.nlevels)]
    elif cor_codes is not None:
        keys = [cor_codes]
    if not keys:
        return np.arange(design.nobs)
    return np.lexsort(keys)      # last key sorts first: the term with the fewest levels


def bind_residual(spec: ResidualSpec, design) -> BoundResidual:
    """Bind ``spec`` to the rows of ``design`` (see the module docstring).

    Parameters
    ----------
    spec : ResidualSpec
    design : Design

    Returns
    -------
    BoundResidual

    Raises
    ------
    FormulaError, DataError
        A form naming no usable grouping, correlation groups not nested in the random
        effects' groups, bad covariates (see the structures).
    """
    frame: pd.DataFrame = design.lookup_frame   # (reads columns by name only)
    cor = None
    cor_codes = None
    if spec.correlation is not None:
        form = _correlation_form(spec, design)
        same = None
        if form.groups:
            # grouped as a random-effects term (lme's default, or written out): its codes,
            # coded on the same rows by the same rule, are the correlation's groups
            same = next((t for t in design.terms
                         if tuple(t.term.group_vars) == tuple(form.groups)), None)
            cor_codes = (same.grouping.codes if same is not None else
                         grouping_codes(form.groups, frame))
            blocks = RowBlocks.from_codes(cor_codes)
        else:
            blocks = RowBlocks.single(design.nobs)
        for t in design.terms:
            if t is not same and not _constant_within(blocks.codes, t.grouping.codes):
                raise FormulaError(
                    f"{spec.correlation.describe()}: its groups "
                    f"({'/'.join(form.groups) or 'all rows in one group'}) are not nested in "
                    f"the levels of the random-effects grouping {t.group!r}; a correlation "
                    "acts within groups of rows that share every random-effects level (as "
                    "in nlme) -- group it by the innermost random-effects factor, e.g. "
                    f"form='~ ... | {t.group}'")
        cor = spec.correlation.bind(frame, blocks, form)
    var = None
    if spec.variance is not None:
        var = spec.variance.bind(frame, _reading_order(design, cor_codes))
    return BoundResidual(spec, cor, var, design.weights, design.nobs)
