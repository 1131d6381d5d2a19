r"""The No-U-Turn sampler (NUTS) in numpy, with Stan's warmup.

Hamiltonian Monte Carlo on ``H(x, p) = -log pi(x) + p' M^{-1} p / 2`` (``p ~ N(0, M)``),
integrated by leapfrog steps of size ``eps``. NUTS (Hoffman & Gelman 2014, in the
multinomial form of Betancourt 2017 that Stan uses) doubles the trajectory forwards or
backwards at random until it makes a U-turn,

.. math::

    (M^{-1} p^-)'\rho \le 0 \quad\text{or}\quad (M^{-1} p^+)'\rho \le 0,
    \qquad \rho = \textstyle\sum_{\text{trajectory}} p,

checked on every subtree and across the seams of merged subtrees (Stan's extra checks), and
draws the next state from the trajectory with weights ``exp(-H)``: uniformly inside each
subtree, biased towards the newer half at the top level. A step whose energy error exceeds
``MAX_ENERGY_ERROR`` is a *divergence*: the tree stops there (a sign of curvature the step
size cannot follow).

Warmup (Stan's windowed adaptation): a fast initial buffer adapts the step size only, a
series of doubling slow windows estimates the (dense) posterior covariance ``M^{-1}``,
regularized towards a small multiple of the identity, and a final buffer adapts the step
size to the last metric. The step size follows Nesterov dual averaging towards the target
mean acceptance statistic ``target_accept``.

The loop over leapfrog steps is Python (one log-density evaluation each); everything per
step is a small dense vector operation, so the cost is the density's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ChainOutput", "NutsSettings", "run_chain"]

#: An energy error above this ends the trajectory as a divergence (Stan's value).
MAX_ENERGY_ERROR = 1000.0
#: Dual averaging constants (Stan's): shrinkage gamma, stabilization t0, decay kappa.
DA_GAMMA, DA_T0, DA_KAPPA = 0.05, 10.0, 0.75
#: Stan's warmup windows: initial fast buffer, final fast buffer, first slow window.
INIT_BUFFER, TERM_BUFFER, BASE_WINDOW = 75, 50, 25
#: The metric estimate is shrunk towards ``METRIC_SHRINK_TO * I`` with weight 5 / (n + 5).
METRIC_SHRINK_TO = 1e-3
#: Bounds of the initial step-size search (doubling/halving).
STEP_SEARCH_BOUNDS = (1e-10, 1e7)

LogDensity = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class NutsSettings:
    """Tuning of the sampler.

    Parameters
    ----------
    target_accept : float
        Target of the mean acceptance statistic during warmup (Stan's ``adapt_delta``).
    max_depth : int
        Largest tree depth (at most ``2**max_depth`` leapfrog steps per draw).
    dense_metric : bool
        Adapt a dense (True) or diagonal inverse metric.
    """

    target_accept: float = 0.8
    max_depth: int = 10
    dense_metric: bool = True

    def __post_init__(self):
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept must lie in (0, 1); got {self.target_accept}")
        if int(self.max_depth) != self.max_depth or self.max_depth < 1:
            raise ValueError(f"max_depth must be a positive integer; got {self.max_depth}")


@dataclass(frozen=True)
class ChainOutput:
    """The draws of one chain and their sampler statistics (post-warmup only).

    ``x`` (draws x dim), ``logp``, ``accept`` (mean acceptance statistic of each
    trajectory), ``n_leapfrog``, ``depth``, ``diverging``, ``energy`` and the final
    ``step_size`` and inverse metric ``inv_metric``.
    """

    x: np.ndarray
    logp: np.ndarray
    accept: np.ndarray
    n_leapfrog: np.ndarray
    depth: np.ndarray
    diverging: np.ndarray
    energy: np.ndarray
    step_size: float
    inv_metric: np.ndarray


@dataclass
class _Point:
    x: np.ndarray
    p: np.ndarray
    g: np.ndarray
    logp: float
    v: np.ndarray       # velocity M^{-1} p (the U-turn checks' p-sharp)


@dataclass
class _Tree:
    minus: _Point
    plus: _Point
    sample: _Point
    log_w: float
    rho: np.ndarray
    n: int
    sum_accept: float
    turning: bool = False
    diverging: bool = False


class _Metric:
    """``M^{-1}`` (dense or diagonal) with momentum draws ``p = L^{-T} z``, ``L L' = M^{-1}``."""

    def __init__(self, inv: np.ndarray):
        self.inv = inv
        if inv.ndim == 1:
            self._chol = np.sqrt(inv)
        else:
            self._chol = np.linalg.cholesky(inv)

    def velocity(self, p: np.ndarray) -> np.ndarray:
        return self.inv * p if self.inv.ndim == 1 else self.inv @ p

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(self.inv.shape[0])
        if self.inv.ndim == 1:
            return z / self._chol
        return np.linalg.solve(self._chol.T, z)


class _Sampler:
    def __init__(self, logp_grad: LogDensity, metric: _Metric, eps: float,
                 settings: NutsSettings, rng: np.random.Generator):
        self.f = logp_grad
        self.metric = metric
        self.eps = eps
        self.settings = settings
        self.rng = rng

    def _eval(self, x) -> tuple[float, np.ndarray]:
        lp, g = self.f(x)
        if not math.isfinite(lp):
            return -math.inf, np.zeros_like(x)
        return float(lp), g

    def point(self, x, p, g, lp) -> _Point:
        return _Point(x, p, g, lp, self.metric.velocity(p))

    def energy(self, z: _Point) -> float:
        return -z.logp + 0.5 * float(z.p @ z.v) if math.isfinite(z.logp) else math.inf

    def leapfrog(self, z: _Point, eps: float) -> _Point:
        p = z.p + 0.5 * eps * z.g
        x = z.x + eps * self.metric.velocity(p)
        lp, g = self._eval(x)
        p_new = p + 0.5 * eps * g
        if not (math.isfinite(lp) and np.all(np.isfinite(p_new))):
            # outside the support, or a step so large the momentum overflowed (a far too
            # large trial step in warmup): a point of zero density, the trajectory diverges
            return _Point(x, p, np.zeros_like(x), -math.inf, p)
        return self.point(x, p_new, g, lp)

    @staticmethod
    def _no_uturn(minus: _Point, plus: _Point, rho: np.ndarray) -> bool:
        return float(minus.v @ rho) > 0.0 and float(plus.v @ rho) > 0.0

    def _merge_turning(self, left: _Tree, right: _Tree, rho: np.ndarray) -> bool:
        """U-turn of the merged tree: across its ends and across the seam (Stan)."""
        if not self._no_uturn(left.minus, right.plus, rho):
            return True
        if not self._no_uturn(left.minus, right.minus, left.rho + right.minus.p):
            return True
        return not self._no_uturn(left.plus, right.plus, left.plus.p + right.rho)

    def build(self, z: _Point, depth: int, direction: int, H0: float) -> _Tree:
        if depth == 0:
            new = self.leapfrog(z, direction * self.eps)
            H = self.energy(new)
            if math.isnan(H):
                H = math.inf
            log_w = H0 - H
            return _Tree(new, new, new, log_w, new.p.copy(), 1,
                         math.exp(min(0.0, log_w)), diverging=(H - H0) > MAX_ENERGY_ERROR)
        inner = self.build(z, depth - 1, direction, H0)
        if inner.turning or inner.diverging:
            return inner
        edge = inner.plus if direction > 0 else inner.minus
        outer = self.build(edge, depth - 1, direction, H0)
        n, acc = inner.n + outer.n, inner.sum_accept + outer.sum_accept
        if outer.turning or outer.diverging:
            outer.n, outer.sum_accept = n, acc
            return outer
        log_w = np.logaddexp(inner.log_w, outer.log_w)
        sample = outer.sample if math.log(self.rng.uniform()) < outer.log_w - log_w \
            else inner.sample
        left, right = (inner, outer) if direction > 0 else (outer, inner)
        rho = left.rho + right.rho
        tree = _Tree(left.minus, right.plus, sample, float(log_w), rho, n, acc)
        tree.turning = self._merge_turning(left, right, rho)
        return tree

    def transition(self, x: np.ndarray, lp: float, g: np.ndarray) -> tuple[_Point, dict]:
        p = self.metric.draw(self.rng)
        z0 = self.point(x, p, g, lp)
        H0 = self.energy(z0)
        tree = _Tree(z0, z0, z0, 0.0, p.copy(), 0, 0.0)
        depth, diverging = 0, False
        while depth < self.settings.max_depth:
            direction = 1 if self.rng.uniform() < 0.5 else -1
            start = tree.plus if direction > 0 else tree.minus
            sub = self.build(start, depth, direction, H0)
            tree.n += sub.n
            tree.sum_accept += sub.sum_accept
            depth += 1
            if sub.diverging:
                diverging = True
                break
            if sub.turning:
                break
            if math.log(self.rng.uniform()) < sub.log_w - tree.log_w:
                tree.sample = sub.sample
            tree.log_w = float(np.logaddexp(tree.log_w, sub.log_w))
            left, right = (tree, sub) if direction > 0 else (sub, tree)
            rho = left.rho + right.rho
            turning = self._merge_turning(left, right, rho)
            tree.minus, tree.plus, tree.rho = left.minus, right.plus, rho
            if turning:
                break
        s = tree.sample
        stats = {"accept": tree.sum_accept / max(tree.n, 1), "n_leapfrog": tree.n,
                 "depth": depth, "diverging": diverging,
                 "energy": self.energy(s)}
        return s, stats

    def find_step_size(self, x, lp, g) -> float:
        """Stan's heuristic: double or halve until one step's acceptance crosses 0.8."""
        eps = self.eps
        target = math.log(0.8)
        direction = 0
        lo, hi = STEP_SEARCH_BOUNDS
        while lo < eps < hi:
            z0 = self.point(x, self.metric.draw(self.rng), g, lp)
            H0 = self.energy(z0)
            H = self.energy(self.leapfrog(z0, eps))
            dH = H0 - H if math.isfinite(H) else -math.inf
            if direction == 0:
                direction = 1 if dH > target else -1
            if direction == 1 and not dH > target:
                break
            if direction == -1 and not dH < target:
                break
            eps = eps * 2.0 if direction == 1 else eps * 0.5
        return float(min(max(eps, lo), hi))


class _DualAveraging:
    def __init__(self, eps: float, target: float):
        self.mu = math.log(10.0 * eps)
        self.target = target
        self.s_bar = 0.0
        self.x_bar = 0.0
        self.count = 0

    def update(self, accept: float) -> float:
        self.count += 1
        eta = 1.0 / (self.count + DA_T0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept)
        x = self.mu - self.s_bar * math.sqrt(self.count) / DA_GAMMA
        w = self.count ** -DA_KAPPA
        self.x_bar = w * x + (1.0 - w) * self.x_bar
        return math.exp(x)

    @property
    def final(self) -> float:
        return math.exp(self.x_bar)


def _window_ends(warmup: int) -> tuple[int, int, list[int]]:
    """(initial buffer, final buffer, the iterations that end a slow window)."""
    init, term, base = INIT_BUFFER, TERM_BUFFER, BASE_WINDOW
    if init + term + base > warmup:
        init, term = int(0.15 * warmup), int(0.1 * warmup)
        base = warmup - init - term
    ends, start, size = [], init, base
    last = warmup - term
    while start < last:
        end = start + size
        if end + 2 * size > last:     # the next window would not fit: stretch this one
            end = last
        ends.append(end)
        start, size = end, 2 * size
    return init, term, ends


def _estimate_metric(xs: np.ndarray, dense: bool) -> np.ndarray:
    n, d = xs.shape
    w = n / (n + 5.0)
    shrink = METRIC_SHRINK_TO * 5.0 / (n + 5.0)
    if dense:
        return w * np.atleast_2d(np.cov(xs, rowvar=False)) + shrink * np.eye(d)
    return w * xs.var(axis=0, ddof=1) + shrink


def run_chain(logp_grad: LogDensity, x0: np.ndarray, draws: int, warmup: int,
              rng: np.random.Generator, settings: NutsSettings | None = None,
              inv_metric: np.ndarray | None = None) -> ChainOutput:
    """One NUTS chain with Stan's warmup.

    Parameters
    ----------
    logp_grad : callable
        ``x -> (log pi(x), grad)``; ``-inf`` outside the support.
    x0 : ndarray
        Starting point (finite log density).
    draws, warmup : int
        Kept draws and warmup iterations (warmup draws are discarded).
    rng : numpy.random.Generator
    settings : NutsSettings, optional
    inv_metric : ndarray, optional
        Starting inverse metric (dense ``d x d`` or diagonal ``d``); identity by default.
        Warmup re-estimates it from the draws of its slow windows.

    Returns
    -------
    ChainOutput
    """
    settings = settings or NutsSettings()
    x = np.asarray(x0, dtype=float).copy()
    d = x.size
    lp, g = logp_grad(x)
    if not math.isfinite(lp):
        raise ValueError("the starting point has no finite log density")
    if inv_metric is None:
        inv_metric = np.eye(d) if settings.dense_metric else np.ones(d)
    elif settings.dense_metric and inv_metric.ndim == 1:
        inv_metric = np.diag(inv_metric)
    elif not settings.dense_metric and inv_metric.ndim == 2:
        inv_metric = np.diagonal(inv_metric).copy()
    sampler = _Sampler(logp_grad, _Metric(inv_metric), 1.0, settings, rng)
    sampler.eps = sampler.find_step_size(x, lp, g)
    da = _DualAveraging(sampler.eps, settings.target_accept)
    init, _, ends = _window_ends(warmup)
    window: list[np.ndarray] = []
    window_start = init
    for it in range(warmup):
        z, st = sampler.transition(x, lp, g)
        x, lp, g = z.x, z.logp, z.g
        sampler.eps = da.update(st["accept"])
        if window_start <= it < (ends[-1] if ends else 0):
            window.append(x)
        if ends and it + 1 == ends[0]:
            ends.pop(0)
            if len(window) > 2:
                sampler.metric = _Metric(_estimate_metric(np.array(window),
                                                          settings.dense_metric))
            window = []
            window_start = it + 1
            sampler.eps = sampler.find_step_size(x, lp, g)
            da = _DualAveraging(sampler.eps, settings.target_accept)
    if warmup:
        sampler.eps = da.final
    out = {k: np.empty(draws, dtype=t) for k, t in
           (("accept", float), ("n_leapfrog", int), ("depth", int), ("diverging", bool),
            ("energy", float), ("logp", float))}
    xs = np.empty((draws, d))
    for i in range(draws):
        z, st = sampler.transition(x, lp, g)
        x, lp, g = z.x, z.logp, z.g
        xs[i] = x
        out["logp"][i] = lp
        for k in ("accept", "n_leapfrog", "depth", "diverging", "energy"):
            out[k][i] = st[k]
    return ChainOutput(xs, out["logp"], out["accept"], out["n_leapfrog"], out["depth"],
                       out["diverging"], out["energy"], float(sampler.eps),
                       sampler.metric.inv)
