"""The fast path of ``ModelDensity.evaluate``: sparse jets against the dense jets.

Both storages run the same log-density code, so they differ only by the order in which
products and sums of the chain rule are rounded. The dense jets are the oracle (they are
themselves checked against finite differences and scipy in test_families_jet.py and
test_families_density.py); here every family with ``supports_sparse`` is evaluated both
ways -- orders 0 to 3, with respect to all channels and to subsets in other orders, with
prior weights (zeros among them) and numbers of trials, zero and positive responses,
moderate and extreme parameters -- and every value and derivative entry is compared.

Tolerance: ``|sparse - dense| <= RTOL |dense| + ATOL_SCALE S``, with ``S`` the largest
value (for the values) or ``1 +`` the largest derivative entry of the evaluation (for the
derivatives). Entries that are small differences of large terms (third derivatives of a
negative binomial or beta-binomial in a large dispersion, for instance) carry the rounding
of those terms, ~1e-16 of the largest quantities, in either storage: ``ATOL_SCALE``
bounds that; ``RTOL`` the rounding of every other entry.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import special

from mixedmodels.families import ModelDensity, ZeroInflated, hurdle, make_response_family
from mixedmodels.families import jet as jt
from mixedmodels.families._special import (
    COUNT_SUM_MAX,
    lgamma_derivatives,
    lgamma_diff_counts,
    stirling_derivatives,
)
from mixedmodels.families.sparse_jet import SparseJet
from test_families_density import EXTREMES, WRAPPED, _wrapped, _wrapped_case, draw_case, etas_of
from test_families_jet import CASES as JET_CASES

RTOL = 1e-11
ATOL_SCALE = 1e-13
N = 40


def assert_same_jet(sparse, dense, what=""):
    """Values and every derivative entry within the module's tolerance."""
    assert sparse.order == dense.order and sparse.m == dense.m
    pairs = list(zip([sparse.v, sparse.d1, sparse.d2, sparse.d3],
                     [dense.v, dense.d1, dense.d2, dense.d3], strict=True))
    finite = [np.abs(b[np.isfinite(b)]) for _, b in pairs[1:] if b is not None]
    deriv_scale = 1.0 + max((float(np.max(f)) for f in finite if f.size), default=0.0)
    for lvl, (a, b) in enumerate(pairs):
        if b is None:
            assert a is None, f"{what}: order {lvl} present only in the sparse jet"
            continue
        assert a.shape == b.shape, (what, lvl, a.shape, b.shape)
        fin = np.isfinite(b)
        np.testing.assert_array_equal(np.isfinite(a), fin, err_msg=f"{what} order {lvl}")
        if not fin.any():
            continue
        scale = np.max(np.abs(b[fin])) if lvl == 0 else deriv_scale
        np.testing.assert_allclose(a[fin], b[fin], rtol=RTOL, atol=ATOL_SCALE * scale,
                                   err_msg=f"{what}, order {lvl}")


def _wrt_variants(channels):
    """All channels (None), the mean alone, and the channels in reverse order."""
    out = [None, ("mu",)]
    if len(channels) > 1:
        out.append(tuple(reversed(channels)))
        out.append(channels[1:])
    return out


def compare_engines(md, y, etas, size=None, weights=None):
    for order, wrt in itertools.product(range(4), _wrt_variants(md.channels)):
        with np.errstate(all="ignore"):
            dense = md.evaluate(y, etas, weights=weights, size=size, order=order, wrt=wrt,
                                engine="dense")
            fast = md.evaluate(y, etas, weights=weights, size=size, order=order, wrt=wrt)
        assert_same_jet(fast, dense, f"order {order}, wrt {wrt}")


# families with a sparse log-density, each with the links worth covering
SPARSE_FAMILIES = [
    ("poisson", "log"), ("poisson", "identity"), ("poisson", "sqrt"),
    ("nbinom1", "log"), ("nbinom2", "log"), ("nbinom2", "identity"), ("nbinom12", "log"),
    ("genpois", "log"), ("binomial", "logit"), ("binomial", "probit"),
    ("binomial", "cloglog"), ("binomial", "log"), ("betabinomial", "logit"),
    ("betabinomial", "probit"), ("gaussian", "identity"), ("gaussian", "log"),
    ("Gamma", "log"), ("Gamma", "inverse"), ("Gamma", "identity"), ("beta", "logit"),
    ("beta", "probit"), ("beta", "cloglog"), ("lognormal", "log"), ("t", "identity"),
]


def _case(name, link, rng, n=N):
    y, p, size = draw_case(name, n=n, rng=rng)
    if name == "binomial" and link == "log":
        p["mu"] = p["mu"] * 0.9
    if name == "gaussian" and link == "log":
        p["mu"] = np.abs(p["mu"]) + 0.1
    return y, p, size


@pytest.mark.parametrize(("name", "link"), SPARSE_FAMILIES)
def test_families_sparse_equals_dense(name, link):
    rng = np.random.default_rng(abs(hash((name, link))) % 2**32)
    fam = make_response_family(name, link=link)
    md = ModelDensity(fam)
    assert md.sparse
    y, p, size = _case(name, link, rng)
    etas = etas_of(md, p)
    compare_engines(md, y, etas, size=size)
    # prior weights with zeros; one repeated dispersion (the special-function shortcuts)
    w = rng.uniform(0.2, 3.0, y.size)
    w[::7] = 0.0
    if "phi" in etas:
        etas = dict(etas, phi=np.full(y.size, etas["phi"][0]))
    compare_engines(md, y, etas, size=size, weights=w)


@pytest.mark.parametrize("name", [k for k in EXTREMES if k not in ("tweedie", "compois")])
def test_extreme_parameters_sparse_equals_dense(name):
    y, p = EXTREMES[name]
    y = np.asarray(y, dtype=float)
    size = np.full(y.shape, 30.0) if name in ("binomial", "betabinomial") else None
    md = ModelDensity(make_response_family(name))
    compare_engines(md, y, etas_of(md, p), size=size)


@pytest.mark.parametrize(("kind", "base"), [w for w in WRAPPED
                                            if w[1] not in ("tweedie", "compois")])
def test_wrappers_sparse_equals_dense(kind, base):
    rng = np.random.default_rng(5)
    y, p, size = _wrapped_case(kind, base, rng)
    md = ModelDensity(_wrapped(kind, base))
    assert md.sparse
    compare_engines(md, y, etas_of(md, p), size=size)


@pytest.mark.parametrize("base", ["nbinom2", "nbinom1", "poisson", "betabinomial",
                                  "binomial", "genpois"])
def test_zero_inflation_in_every_regime(base):
    # zeros and positives; pi from 1e-12 to 1 - 1e-12; counts whose f(0) is ~1 and ~0
    rng = np.random.default_rng(9)
    y, p, size = draw_case(base, n=N, rng=rng)
    y[: N // 2] = 0.0
    md = ModelDensity(ZeroInflated(make_response_family(base)))
    etas = etas_of(md, dict(p, zi=np.full(y.size, 0.5)))
    etas["zi"] = np.linspace(-28.0, 28.0, y.size)
    etas["mu"] = etas["mu"] + np.tile([-8.0, 0.0, 4.0, 0.5], N // 4)[: y.size] \
        * (md.links["mu"].name == "log")
    compare_engines(md, y, etas, size=size)


def test_hurdle_and_large_sizes():
    # nbinom2 in its Poisson limit (Stirling branch), hurdle with a truncated base
    rng = np.random.default_rng(3)
    y = rng.poisson(4.0, N).astype(float)
    y[:10] = 0.0
    md = ModelDensity(hurdle(make_response_family("nbinom2")))
    etas = {"mu": rng.normal(1.3, 0.5, N), "zi": rng.normal(-1.0, 1.0, N),
            "phi": np.concatenate([np.full(N // 2, 13.0), np.linspace(-3.0, 25.0, N // 2)])}
    compare_engines(md, y, etas)
    compare_engines(md, y, dict(etas, phi=np.full(N, 13.0)))


def _focus_mask(m, focus, k):
    """Entries of a k-th derivative tensor with at most one index outside ``focus``."""
    return np.array([sum(i not in focus for i in idx) <= 1
                     for idx in itertools.product(range(m), repeat=k)]).reshape((m,) * k)


@pytest.mark.parametrize(("kind", "base"), [("zi", "nbinom2"), ("zi", "nbinom1"),
                                            ("zi", "poisson"), ("plain", "beta"),
                                            ("plain", "nbinom2"), ("hurdle", "nbinom2"),
                                            ("plain", "tweedie")])
def test_focus_keeps_the_entries_in_focus_exactly(kind, base):
    """Under ``focus`` the entries with at most one index outside it equal those of the
    full dense evaluation (both engines) and the others are zero; orders 2 and 3, every
    focus of one or two channels."""
    rng = np.random.default_rng(11)
    if kind == "plain":
        y, p, size = draw_case(base, n=N, rng=rng)
        md = ModelDensity(make_response_family(base))
    else:
        y, p, size = _wrapped_case(kind if kind == "zi" else "hurdle", base, rng)
        md = ModelDensity(_wrapped(kind if kind == "zi" else "hurdle", base))
    etas = etas_of(md, p)
    engines = ["dense", "sparse"] if md.sparse else ["dense"]
    m = len(md.channels)
    foci = [c for r in (1, 2) for c in itertools.combinations(md.channels, r) if r < m]
    for order, foc, engine in itertools.product((2, 3), foci, engines):
        with np.errstate(all="ignore"):
            full = md.evaluate(y, etas, size=size, order=order, engine="dense")
            got = md.evaluate(y, etas, size=size, order=order, engine=engine, focus=foc)
        idx = [md.channels.index(c) for c in foc]
        for k, (a, b) in enumerate([(got.d2, full.d2), (got.d3, full.d3)][:order - 1],
                                   start=2):
            keep = _focus_mask(m, idx, k)
            a, b = np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1)
            np.testing.assert_allclose(a[keep], b[keep], rtol=RTOL,
                                       atol=ATOL_SCALE * (1 + np.nanmax(np.abs(b))),
                                       err_msg=f"{engine}, order {order}, focus {foc}")
            assert not np.any(a[~keep]), (engine, order, foc)
        np.testing.assert_allclose(got.d1, full.d1, rtol=RTOL, atol=1e-300)
    with pytest.raises(ValueError, match="focus names channels"):
        md.evaluate(y, etas, size=size, order=3, wrt=("mu",), focus=md.channels[-1:])


def test_unsupported_families_use_the_dense_jets():
    for name in ("tweedie", "compois"):
        md = ModelDensity(make_response_family(name))
        assert not md.sparse
        y = np.array([0.0, 1.0, 2.5 if name == "tweedie" else 3.0])
        etas = {c: np.zeros(3) for c in md.channels}
        jet = md.evaluate(y, etas, order=2)
        assert isinstance(jet, jt.Jet)
        with pytest.raises(ValueError, match="no sparse-jet log-density"):
            md.evaluate(y, etas, order=2, engine="sparse")
        assert not ModelDensity(ZeroInflated(make_response_family(name))).sparse
    md = ModelDensity(make_response_family("poisson"))
    with pytest.raises(ValueError, match="engine must be"):
        md.evaluate(np.ones(2), {"mu": np.zeros(2)}, engine="fast")
    with pytest.raises(ValueError, match="wrt names channels"):
        md.evaluate(np.ones(2), {"mu": np.zeros(2)}, wrt=("phi",))


# -- the sparse storage itself ------------------------------------------------------------
M = 3


def _jets(x0, order, kind):
    return [kind.variable(x0[i], i, M, order) for i in range(M)]


@pytest.mark.parametrize("name", list(JET_CASES))
def test_every_jet_operation_sparse_equals_dense(name):
    x0 = np.random.default_rng(42).uniform(0.4, 1.6, size=(M, 7))
    for order in range(4):
        with np.errstate(all="ignore"):
            dense = JET_CASES[name](*_jets(x0, order, jt.Jet))
            sparse = JET_CASES[name](*_jets(x0, order, SparseJet))
        assert isinstance(sparse, SparseJet)
        assert_same_jet(sparse.to_jet(), dense, name)


def test_dense_round_trip_and_structural_zeros():
    rng = np.random.default_rng(1)
    a, b, c = _jets(rng.uniform(1, 2, (M, 5)), 3, SparseJet)
    f = jt.exp(a) * jt.log(b) + c * 2.0
    # f depends on c linearly and does not mix c with a or b: those entries are absent
    assert set(f.d) == {(0,), (1,), (2,), (0, 0), (0, 1), (1, 1), (0, 0, 0), (0, 0, 1),
                        (0, 1, 1), (1, 1, 1)}
    assert f.d[(2,)] == 2.0
    back = SparseJet.from_jet(f.to_jet())
    assert_same_jet(back.to_jet(), f.to_jet())
    dense = f.to_jet()
    assert dense.d3.shape == (5, M, M, M)
    np.testing.assert_array_equal(dense.d3, np.transpose(dense.d3, (0, 2, 3, 1)))
    with pytest.raises(TypeError, match="do not mix"):
        a + jt.Jet.variable(np.ones(5), 0, M, 3)
    with pytest.raises(TypeError, match="do not mix"):
        jt.Jet.variable(np.ones(5), 0, M, 3) * a
    with pytest.raises(ValueError, match="do not mix"):
        a + SparseJet.variable(np.ones(5), 0, 2, 3)


# -- special functions the fast path relies on -------------------------------------------
def test_lgamma_derivatives_against_scipy():
    x = np.concatenate([np.geomspace(1e-3, 1e5, 300), [9.999, 10.0, 10.001]])
    got = lgamma_derivatives(x, 3)
    ref = [special.gammaln(x), special.psi(x), special.polygamma(1, x),
           special.polygamma(2, x)]
    for k, (g, r) in enumerate(zip(got, ref, strict=True)):
        np.testing.assert_allclose(g, r, rtol=1e-13, atol=0, err_msg=f"order {k}")


def test_stirling_derivatives_are_the_remainder_derivatives():
    x = np.concatenate([np.geomspace(0.05, 9.9, 50), np.geomspace(10.0, 1e6, 50)])
    r = stirling_derivatives(x, 3)
    direct = special.gammaln(x) - (x - 0.5) * np.log(x) + x - 0.5 * np.log(2 * np.pi)
    # the direct differences cancel digits (~1e-16 of log Gamma(x)) as x grows
    small = x < 100.0
    np.testing.assert_allclose(r[0][small], direct[small], rtol=1e-10, atol=1e-13)
    exact = [special.psi(x) - np.log(x) + 0.5 / x,
             special.polygamma(1, x) - 1 / x - 0.5 / x ** 2,
             special.polygamma(2, x) + 1 / x ** 2 + 1 / x ** 3]
    for k in (1, 2, 3):
        tol = 1e-9 * np.abs(exact[k - 1][small]) + 1e-15
        assert np.all(np.abs(r[k][small] - exact[k - 1][small]) <= tol), k
    # series: leading terms 1/(12x), -1/(12x^2), 1/(6x^3), -1/(2x^4) at large x
    big = x[-1]
    lead = [1 / (12 * big), -1 / (12 * big ** 2), 1 / (6 * big ** 3), -1 / (2 * big ** 4)]
    for k in range(4):
        assert math.isclose(r[k][-1], lead[k], rel_tol=1e-10), k


@pytest.mark.parametrize("a", [0.01, 1.5, 9.99, 10.0, 400.0, 1e9])
def test_lgamma_diff_counts_are_the_exact_sums(a):
    y = np.array([0.0, 1.0, 2.0, 7.0, 60.0, 300.0])
    got = lgamma_diff_counts(a, y, 3)
    for i, yi in enumerate(y.astype(int)):
        t = [a + j for j in range(yi)]
        exact = [math.fsum(map(math.log, t)), math.fsum(1 / u for u in t),
                 -math.fsum(1 / u ** 2 for u in t), math.fsum(2 / u ** 3 for u in t)]
        for k in range(4):
            assert abs(got[k][i] - exact[k]) <= 1e-13 * max(1e-300, abs(exact[k])) \
                + 1e-300, (yi, k)
    # not counts, or too long a sum: None (the log-gamma forms are used)
    assert lgamma_diff_counts(a, np.array([0.5, 2.0]), 3) is None
    assert lgamma_diff_counts(a, np.array([-1.0, 2.0]), 3) is None
    assert lgamma_diff_counts(a, np.array([COUNT_SUM_MAX + 1.0]), 3) is None


@pytest.mark.parametrize("a", [0.7, 12.0, 3e4])
def test_lgamma_diff_one_size_equals_per_observation_sizes(a):
    # the finite-sum path (one size) and the log-gamma path agree
    y = np.arange(0.0, 40.0)
    one = jt.lgamma_diff(jt.Jet.variable(np.full(y.size, a), 0, 1, 3), y)
    jitter = np.full(y.size, a)
    jitter[0] = a * (1 + 1e-15)       # breaks the repetition: per-observation path
    each = jt.lgamma_diff(jt.Jet.variable(jitter, 0, 1, 3), y)
    for u, w in zip([one.v, *one.derivatives()], [each.v, *each.derivatives()],
                    strict=True):
        np.testing.assert_allclose(u[..., 1:], w[..., 1:], rtol=1e-12, atol=1e-300)


def test_remembered_log_factorials_follow_the_values():
    """The log-factorials remembered per response vector are recomputed when the values
    change (same shape, same object mutated, another array), and are read-only."""
    from mixedmodels.families.counts import LFACTORIAL_MEMORY, lfactorial

    y = np.arange(12.0)
    first = lfactorial(y)
    np.testing.assert_allclose(first, special.gammaln(y + 1.0), rtol=1e-15)
    assert not first.flags.writeable
    y[3] = 40.0                                 # mutated in place: not the stale value
    np.testing.assert_allclose(lfactorial(y), special.gammaln(y + 1.0), rtol=1e-15)
    for k in range(LFACTORIAL_MEMORY + 2):      # more vectors than remembered
        z = np.full(5, float(k))
        np.testing.assert_allclose(lfactorial(z), special.gammaln(z + 1.0), rtol=1e-15)
    grid = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(lfactorial(grid), special.gammaln(grid + 1.0), rtol=1e-15)
