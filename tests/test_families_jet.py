"""Jets: every operation and elementary function against finite differences.

The check is one level at a time: the central difference (step ``H``) of the value must
match the first derivatives, that of the first derivatives the second, and that of the
second the third. Central differences err by ``~H^2 f'''/6`` plus rounding
``~eps |f| / H``: with ``H = 1e-5`` and arguments of order 1 that is below ``1e-8``, so
``FD_RTOL = 1e-6`` (relative to ``1 + |derivative|``) has a wide margin yet catches any
wrong term (errors of order 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from mixedmodels.families import jet as jt
from mixedmodels.families._special import stirling_remainder

H = 1e-5
FD_RTOL = 1e-6
M = 3
N = 7


def _vars(x, order=3):
    return [jt.Jet.variable(x[i], i, M, order) for i in range(M)]


def fd_check(build, x0, h=H, rtol=FD_RTOL):
    """Central differences of each order against the next derivative order."""
    f = build(_vars(x0))
    for i in range(M):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += h
        xm[i] -= h
        fp, fm = build(_vars(xp)), build(_vars(xm))
        pairs = [(fp.v, fm.v, f.g1[i]), (fp.g1, fm.g1, f.g2[:, i]),
                 (fp.g2, fm.g2, f.g3[:, :, i])]
        for lvl, (a, b, an) in enumerate(pairs, start=1):
            fd = (a - b) / (2 * h)
            np.testing.assert_allclose(fd, an, rtol=0, atol=rtol * (1 + np.max(np.abs(an))),
                                       err_msg=f"order {lvl}, variable {i}")
    # symmetry of the Hessian and third-derivative tensors
    np.testing.assert_allclose(f.g2, np.swapaxes(f.g2, 0, 1), atol=1e-12)
    for perm in ((1, 0, 2), (0, 2, 1), (2, 1, 0)):
        np.testing.assert_allclose(f.g3, np.transpose(f.g3, (*perm, 3)), atol=1e-12)
    # lower orders are the same numbers without the higher arrays
    for k in range(3):
        g = build(_vars(x0, k))
        np.testing.assert_allclose(g.v, f.v)
        for a, b in zip(g.derivatives(), f.derivatives(), strict=False):
            np.testing.assert_allclose(a, b)
        assert len(g.derivatives()) == k
    return f


@pytest.fixture
def x0():
    return np.random.default_rng(42).uniform(0.4, 1.6, size=(M, N))


YC = np.array([0.0, 1.0, 3.0, 10.0, 0.5, 2.0, 7.0])

CASES = {
    "add_sub_neg": lambda a, b, c: a + b - c - (-a) + 2.0 - np.arange(N),
    "mul": lambda a, b, c: a * b * c * np.linspace(1, 2, N),
    "div": lambda a, b, c: a / b + 3.0 / c - b / 2.5,
    "pow": lambda a, b, c: a ** 1.7 + b ** 2 + c ** -1 + a ** 0.5 + b ** 3.5,
    "jet_pow": lambda a, b, c: a ** b + 2.0 ** c,
    "square_reciprocal": lambda a, b, c: (a * b).square() + (b - c + 3).reciprocal(),
    "exp_log": lambda a, b, c: jt.exp(a * b) + jt.log(b + c) + a.exp() * c.log(),
    "log1p_expm1": lambda a, b, c: jt.log1p(a * c) + jt.expm1(b - a),
    "sqrt": lambda a, b, c: jt.sqrt(a * b + c),
    "gammaln": lambda a, b, c: jt.gammaln(a * b + c) + jt.gammaln(0.1 * a),
    "stirling_rem": lambda a, b, c: jt.stirling_rem(a * b) + jt.stirling_rem(a * 12.0 + c),
    "softplus": lambda a, b, c: jt.softplus(3 * (a - b)) + jt.softplus(-20 * c),
    "log_sigmoid": lambda a, b, c: jt.log_sigmoid(a - 2 * b) + jt.log_sigmoid(-(a - 2 * b)),
    "sigmoid": lambda a, b, c: jt.sigmoid(a * c - b) * c,
    "log1mexp": lambda a, b, c: jt.log1mexp(-a * b) + jt.log1mexp(-(c * 0.05)),
    "ndtr": lambda a, b, c: jt.ndtr(a - 2 * b + c),
    "log_ndtr": lambda a, b, c: jt.log_ndtr(a - 3 * b) + jt.log_ndtr(4 * c - 10.0),
    "logaddexp": lambda a, b, c: jt.logaddexp(a, b * c) + jt.logaddexp(a * 30, c),
    "logaddexp_const": lambda a, b, c: jt.logaddexp(0.3, b) + jt.logaddexp(a, -np.inf),
    "where": lambda a, b, c: jt.where(np.arange(N) % 2 == 0, a * b, c.exp()),
    "xlogy": lambda a, b, c: jt.xlogy(YC, a * b) + jt.xlog1py(YC, c),
    "lgamma_diff": lambda a, b, c: jt.lgamma_diff(jt.exp(c * 3), YC) + jt.lgamma_diff(a, YC),
    "lgamma_diff_big": lambda a, b, c: jt.lgamma_diff(a * 1e3 + b * 30, YC),
}


@pytest.mark.parametrize("name", list(CASES))
def test_operations_match_finite_differences(name, x0):
    fd_check(lambda v: CASES[name](*v), x0)


def test_broadcasting_against_arrays_and_batches(x0):
    # a (n, 1) jet against an (n, 4) array, and numpy arrays on the left of operators
    grid = np.arange(4.0)[None, :] + 1.0

    def build(v):
        a, b, c = (u[:, None] for u in v)
        s = grid * a + b * grid - grid / c + np.ones((N, 4)) * b
        return jt.logsumexp(s, axis=-1) + jt.logsumexp(a * grid, axis=1)

    f = fd_check(build, x0)
    assert f.shape == (N,)
    assert f.d1.shape == (N, M) and f.d2.shape == (N, M, M) and f.d3.shape == (N, M, M, M)


def test_logsumexp_matches_direct_sum(x0):
    grid = np.linspace(-2, 3, 5)[None, :]
    mask = np.ones((N, 5), dtype=bool)
    mask[::2, -1] = False

    def direct(v):
        a, b, c = (u[:, None] for u in v)
        x = a * grid + jt.gammaln(b * grid + 4.0) - c * grid * grid
        return x, jt.where(mask, jt.exp(x), 0.0)

    v = _vars(x0)
    x, e = direct(v)
    total = e[:, 0]
    for j in range(1, 5):
        total = total + e[:, j]
    ref = jt.log(total)
    got = jt.logsumexp(x, axis=-1, mask=mask)
    for a, b in zip([got.v, *got.derivatives()], [ref.v, *ref.derivatives()], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_logsumexp_affine_matches_logsumexp():
    rng = np.random.default_rng(3)
    vals = rng.normal(size=(5, 9))
    slopes = rng.normal(size=(2, 5, 9))
    mask = rng.uniform(size=(5, 9)) < 0.8
    u = [jt.Jet.variable(np.zeros((5, 1)), i, 2, 3) for i in range(2)]
    x = u[0] * slopes[0] + u[1] * slopes[1] + vals
    ref = jt.logsumexp(x, mask=mask)
    got = jt.logsumexp_affine(vals, slopes, 3, mask=mask)
    for a, b in zip([got.v, *got.derivatives()], [ref.v, *ref.derivatives()], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_compose_equals_direct_chain(x0):
    # F(p, q) = p^2 q + exp(q) composed with jets p, q, against the jet expression itself
    def inner(v):
        a, b, c = v
        return jt.log(a + b), c * a

    v = _vars(x0)
    p, q = inner(v)
    pv, qv = p.v, q.v
    eq = np.exp(qv)
    f1 = np.stack([2 * pv * qv, pv * pv + eq])
    f2 = np.array([[2 * qv, 2 * pv], [2 * pv, eq]])
    f3 = np.zeros((2, 2, 2, N))
    f3[0, 0, 1] = f3[0, 1, 0] = f3[1, 0, 0] = 2.0
    f3[1, 1, 1] = eq
    got = jt.compose(pv * pv * qv + eq, f1, f2, f3, [p, q])
    ref = p * p * q + jt.exp(q)
    for a, b in zip([got.v, *got.derivatives()], [ref.v, *ref.derivatives()], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_stable_functions_in_extreme_ranges():
    big = jt.Jet.variable(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]), 0, 1, 3)
    sp = jt.softplus(big)
    np.testing.assert_allclose(sp.v, [0.0, np.exp(-40.0), np.log(2.0), 40.0, 800.0],
                               rtol=1e-15)
    assert np.all(np.isfinite(sp.g3))
    ls = jt.log_sigmoid(big)
    np.testing.assert_allclose(ls.v[1], -40.0 - np.exp(-40.0), rtol=1e-15)
    np.testing.assert_allclose(ls.g1[0][-1], np.exp(-800.0), rtol=1e-12, atol=0)
    # log(1 - exp(x)) near 0 and far below it
    x = jt.Jet.variable(np.array([-1e-12, -0.5, -50.0]), 0, 1, 2)
    lm = jt.log1mexp(x)
    np.testing.assert_allclose(lm.v, [np.log(1e-12), np.log(-np.expm1(-0.5)),
                                      -np.exp(-50.0)], rtol=1e-10)
    # log Phi far in the lower tail
    z = jt.Jet.variable(np.array([-40.0]), 0, 1, 1)
    np.testing.assert_allclose(jt.log_ndtr(z).g1[0], 40.0 + 1 / 40.0, rtol=1e-3)


@pytest.mark.parametrize("a", [0.3, 5.0, 9.99, 10.0, 50.0, 1e4, 1e8, 1e13])
def test_lgamma_diff_against_exact_sums(a):
    # lgamma(a + y) - lgamma(a) = sum_{i<y} log(a + i) for integer y; derivatives likewise
    y = np.array([0.0, 1.0, 2.0, 5.0, 17.0, 40.0])
    x = jt.Jet.variable(np.full(y.shape, a), 0, 1, 3)
    got = jt.lgamma_diff(x, y)
    for i, yi in enumerate(y.astype(int)):
        terms = [a + k for k in range(yi)]
        exact = [math.fsum(math.log(t) for t in terms), math.fsum(1 / t for t in terms),
                 -math.fsum(1 / t ** 2 for t in terms), math.fsum(2 / t ** 3 for t in terms)]
        for val, ref in zip([got.v[i], got.g1[0, i], got.g2[0, 0, i], got.g3[0, 0, 0, i]],
                            exact, strict=True):
            assert abs(val - ref) <= 1e-13 * max(1.0, abs(ref)) + 1e-300, (yi, val, ref)


def test_stirling_remainder_is_continuous_and_exact():
    x = np.array([0.01, 1.0, 5.0, 9.999999, 10.0, 10.000001, 37.0, 1e3])
    r = stirling_remainder(x)
    direct = special.gammaln(x) - (x - 0.5) * np.log(x) + x - 0.5 * np.log(2 * np.pi)
    # the direct difference loses ~1e-13 absolute at x = 1e3; the series does not
    np.testing.assert_allclose(r[:-1], direct[:-1], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(r[-1], 1 / 12e3 - 1 / 360e9 + 1 / 1260e15, rtol=1e-15)
    for k in (1, 2, 3):
        d = stirling_remainder(x, k)
        fd = (stirling_remainder(x * (1 + 1e-6), k - 1)
              - stirling_remainder(x * (1 - 1e-6), k - 1)) / (2e-6 * x)
        np.testing.assert_allclose(d, fd, rtol=1e-5)


def test_jets_over_different_variables_do_not_mix():
    a = jt.Jet.variable(np.ones(2), 0, 2, 1)
    b = jt.Jet.variable(np.ones(2), 0, 3, 1)
    with pytest.raises(ValueError, match="do not mix"):
        a + b
