"""The factorizations against an independent dense oracle.

The oracle computes the profiled deviance straight from the marginal model
``y ~ N(X beta, sigma^2 (W^{-1} + Z Lambda Lambda' Z'))`` with generalized least squares, no
penalized least squares, no Cholesky blocks -- so agreement checks the algebra, not just the
code path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels.linalg.blockdiag import BlockDiagonal
from mixedmodels.linalg.product import BlockProductPattern, ProductPattern

ORACLE_RTOL = 1e-9
GRAD_RTOL = 1e-5


def _Z_and_lambda(design, theta):
    blocks, lams = [], []
    for t, sl in zip(design.terms, design.theta_slices(), strict=True):
        n, p, lev = design.nobs, t.p, t.nlevels
        Zk = np.zeros((n, lev * p))
        for a in range(p):
            Zk[np.arange(n), t.grouping.codes * p + a] = t.Z[:, a]
        blocks.append(Zk)
        lam = t.structure.lambda_(theta[sl])
        lams.append(np.kron(np.eye(lev), lam))
    Z = np.hstack(blocks)
    from scipy.linalg import block_diag

    return Z, block_diag(*lams)


def oracle_objective(design, theta, reml):
    """-2 (restricted) log-likelihood at the GLS beta and profiled sigma."""
    Z, Lam = _Z_and_lambda(design, theta)
    n, p = design.nobs, design.p
    w = np.ones(n) if design.weights is None else design.weights
    V = np.diag(1.0 / w) + Z @ Lam @ Lam.T @ Z.T         # covariance / sigma^2
    Vi = np.linalg.inv(V)
    X, y = design.X, design.y - design.offset
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    rss = float(r @ Vi @ r)
    _, logdetV = np.linalg.slogdet(V)
    dof = n - p if reml else n
    out = logdetV + dof * (1 + np.log(2 * np.pi * rss / dof))
    if reml:
        out += np.linalg.slogdet(XtViX)[1]
    return out


def _simulated(seed=1, n=300):
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, 25, n)
    g2 = rng.integers(0, 8, n)
    g3 = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=25)[g1] + rng.normal(size=8)[g2] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    z = rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g1": g1, "g2": g2, "g3": g3, "w": w})


MODELS = [
    ("y ~ x + (1 | g1)", None),
    ("y ~ x + (x | g1)", None),
    ("y ~ x + (1 | g1) + (1 | g2)", None),
    ("y ~ x + (1 | g1) + (1 | g2) + (1 | g3)", "w"),
    ("y ~ x + (x | g1) + (1 | g2)", None),
    ("y ~ x + (1 | g1) + (x | g2)", "w"),
    ("y ~ x + (x | g1) + (x | g2)", None),
    # vector-valued rest terms between scalar ones (the gradient scales only their rows)
    ("y ~ x + (1 | g1) + (x | g2) + (1 | g3)", None),
    ("y ~ x + (1 | g1) + (1 | g3) + (x + z | g2)", "w"),
    ("y ~ x + (1 | g2/g3)", None),
    # terms sharing a grouping factor: one merged block (linalg.merged) in blocked/sparse
    ("y ~ x + (x || g1)", None),
    ("y ~ x + (1 | g1) + (0 + x | g1) + (0 + z | g1) + (x || g2)", "w"),
    ("y ~ x + (0 + x | g1) + (1 | g2) + (1 | g1)", None),
    ("y ~ x + (1 | g2) + (0 + x | g2) + (1 | g1)", None),
    ("y ~ x + (1 | g1) + diag(0 + x + z | g1)", None),
    ("y ~ x + (1 | g1) + cs(0 + x + z | g1) + (1 | g2)", "w"),
]


@pytest.mark.parametrize("formula,weights", MODELS)
@pytest.mark.parametrize("method", ["dense", "blocked", "sparse"])
@pytest.mark.parametrize("reml", [True, False])
def test_objective_matches_oracle(formula, weights, method, reml):
    data = _simulated()
    design = mm.materialize(mm.parse_formula(formula), data, weights=weights)
    obj = mm.LMMObjective(design, reml=reml, method=method)
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = design.theta0() + rng.uniform(-0.4, 0.6, design.n_theta)
        theta = np.maximum(theta, design.theta_lower())
        assert obj(theta) == pytest.approx(oracle_objective(design, theta, reml),
                                           rel=ORACLE_RTOL)


@pytest.mark.parametrize("formula,weights", MODELS)
@pytest.mark.parametrize("other", ["blocked", "sparse"])
def test_solutions_agree_across_methods(formula, weights, other):
    data = _simulated()
    design = mm.materialize(mm.parse_formula(formula), data, weights=weights)
    theta = design.theta0() * 0.7 + 0.05
    a = mm.LMMObjective(design, method="dense")
    b = mm.LMMObjective(design, method=other)
    sa, sb = a.solve(theta), b.solve(theta)
    np.testing.assert_allclose(sa.beta, sb.beta, rtol=1e-10)
    np.testing.assert_allclose(sa.u, sb.u, rtol=1e-8, atol=1e-10)
    for ca, cb in zip(a.cond_var(sa), b.cond_var(sb), strict=True):
        np.testing.assert_allclose(ca, cb, rtol=1e-8, atol=1e-12)


def _central_differences(obj, theta, h=1e-6):
    return np.array([(obj(theta + h * e) - obj(theta - h * e)) / (2 * h)
                     for e in np.eye(theta.size)])


@pytest.mark.parametrize("formula,weights", MODELS)
@pytest.mark.parametrize("reml", [True, False])
def test_analytic_gradient_matches_finite_differences(formula, weights, reml):
    # scalar terms take the fast path, vector-valued ones the general gradient (any Lambda)
    data = _simulated()
    design = mm.materialize(mm.parse_formula(formula), data, weights=weights)
    obj = mm.LMMObjective(design, reml=reml, method="blocked")
    assert obj.has_gradient
    # off-diagonal (correlation) parameters of negative sign too
    theta = np.linspace(0.4, 1.3, design.n_theta) * np.where(design.theta_lower() == 0, 1, -1)
    f, g = obj.value_and_gradient(theta)
    assert f == pytest.approx(obj(theta), rel=1e-14)
    np.testing.assert_allclose(g, _central_differences(obj, theta), rtol=GRAD_RTOL, atol=1e-6)


@pytest.mark.parametrize("formula", ["y ~ x + (x | g1) + (1 | g2)",
                                     "y ~ x + (1 | g1) + (x | g2)",
                                     "y ~ x + (x | g1) + (x | g2)",
                                     "y ~ x + (1 | g1) + (x | g2) + (1 | g3)"])
def test_general_gradient_without_product_pattern(formula, monkeypatch):
    # designs whose pair count exceeds the pattern's memory cap take the chunked path
    import mixedmodels.linalg.blocked as blocked

    monkeypatch.setattr(blocked, "PRODUCT_PATTERN_MAX_NNZ", 0)
    data = _simulated(seed=3)
    design = mm.materialize(mm.parse_formula(formula), data, weights="w")
    obj = mm.LMMObjective(design, method="blocked")
    theta = np.linspace(0.3, 1.1, design.n_theta)
    _, g = obj.value_and_gradient(theta)
    assert obj.system._product is None
    np.testing.assert_allclose(g, _central_differences(obj, theta), rtol=GRAD_RTOL, atol=1e-6)


def test_general_gradient_at_a_singular_vector_term():
    # lambda's diagonal entry at 0 (a singular fit): the factor is never inverted, so the
    # gradient stays exact; one-sided differences into the feasible region
    data = _simulated(seed=4)
    design = mm.materialize(mm.parse_formula("y ~ x + (x | g1) + (x | g2)"), data)
    obj = mm.LMMObjective(design, method="blocked")
    theta = np.array([0.7, 0.2, 0.0, 0.5, -0.3, 0.4])
    _, g = obj.value_and_gradient(theta)
    h = 1e-6
    fd = np.array([(obj(theta + h * e) - obj(theta)) / h if theta[i] == 0.0
                   else (obj(theta + h * e) - obj(theta - h * e)) / (2 * h)
                   for i, e in enumerate(np.eye(theta.size))])
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-4)


def test_gradient_is_zero_on_the_boundary():
    # the profiled objective depends on a scalar theta only through theta^2
    data = _simulated()
    design = mm.materialize(mm.parse_formula("y ~ x + (1 | g1) + (1 | g2)"), data)
    obj = mm.LMMObjective(design, method="blocked")
    _, g = obj.value_and_gradient(np.array([0.0, 0.8]))
    assert g[0] == 0.0


def test_product_pattern_matches_sparse_product():
    rng = np.random.default_rng(0)
    A = sp.random(30, 50, density=0.15, random_state=1, format="csr")
    c = rng.uniform(0.1, 2.0, 50)
    pat = ProductPattern(A, keep_refresh=True)
    dense = np.zeros((30, 30))
    pat.subtract_from(dense, c)
    expected = -np.tril((A @ sp.diags(c) @ A.T).toarray())
    np.testing.assert_allclose(np.tril(dense), expected, atol=1e-14)
    # new values, same pattern
    A2 = A.copy()
    A2.data = rng.normal(size=A2.nnz)
    pat.refresh(A2.data)
    dense[:] = 0.0
    pat.subtract_from(dense, c)
    expected = -np.tril((A2 @ sp.diags(c) @ A2.T).toarray())
    np.testing.assert_allclose(np.tril(dense), expected, atol=1e-13)


def test_product_pattern_built_in_chunks(monkeypatch):
    import mixedmodels.linalg.product as product

    monkeypatch.setattr(product, "PAIRS_PER_CHUNK", 7)
    A = sp.random(40, 60, density=0.2, random_state=2, format="csr")
    c = np.random.default_rng(0).uniform(size=60)
    pat = product.ProductPattern(A)
    assert len(pat._chunks) > 10
    dense = np.zeros((40, 40))
    pat.subtract_from(dense, c)
    np.testing.assert_allclose(np.tril(dense), -np.tril((A @ sp.diags(c) @ A.T).toarray()),
                               atol=1e-14)


@pytest.mark.parametrize("chunk", [5, 4_000_000])
def test_product_pattern_unsorted_rows_empty_lines_and_refresh(monkeypatch, chunk):
    """Unsorted CSR rows, empty rows and columns, chunks of one row or all of them: P is
    canonical CSR (sorted, no duplicates), its rows are the lower-triangle positions in
    order, and refresh() reads new values at A's own (unsorted) CSR positions."""
    import mixedmodels.linalg.product as product

    monkeypatch.setattr(product, "PAIRS_PER_CHUNK", chunk)
    rng = np.random.default_rng(3)
    dense = rng.normal(size=(35, 45)) * (rng.uniform(size=(35, 45)) < 0.2)
    dense[[4, 17], :] = 0.0
    dense[:, [0, 30]] = 0.0
    A = sp.csr_matrix(dense)
    for r in range(A.shape[0]):                      # shuffle the entries within each row
        s = slice(A.indptr[r], A.indptr[r + 1])
        p = rng.permutation(s.stop - s.start)
        A.indices[s], A.data[s] = A.indices[s][p], A.data[s][p]
    A.has_sorted_indices = False
    pat = product.ProductPattern(A, keep_refresh=True)
    assert pat.P.has_canonical_format
    assert np.all(np.diff(pat.flat) > 0) and np.all(pat.rows >= pat.cols)
    c = rng.uniform(0.1, 2.0, 45)
    full = dense @ np.diag(c) @ dense.T
    structural = (np.abs(dense) > 0).astype(float) @ (np.abs(dense) > 0).T.astype(float)
    np.testing.assert_array_equal(pat.flat, np.flatnonzero(np.tril(structural)))
    np.testing.assert_allclose(pat.values(c), full.reshape(-1)[pat.flat], atol=1e-13)
    A2 = A.copy()
    A2.data = rng.normal(size=A2.nnz)
    pat.refresh(A2.data)
    np.testing.assert_allclose(pat.values(c), (A2 @ sp.diags(c) @ A2.T).toarray().reshape(-1)[
        pat.flat], atol=1e-13)


def _block_complete(n_rows, n_blocks, p, density, seed):
    """A CSR whose rows fill whole blocks of p columns (like a vector term's cross-products)."""
    rng = np.random.default_rng(seed)
    mask = rng.uniform(size=(n_rows, n_blocks)) < density
    dense = np.repeat(mask, p, axis=1) * rng.normal(size=(n_rows, n_blocks * p))
    dense[dense == 0.0] = 0.0
    return sp.csr_matrix(np.where(np.repeat(mask, p, axis=1), dense + 1e-3, 0.0))


@pytest.mark.parametrize("p", [2, 3])
def test_block_product_pattern_matches_sparse_product(p):
    rng = np.random.default_rng(5)
    A = _block_complete(25, 12, p, 0.3, seed=p)
    W = rng.normal(size=(12, p, p))
    blocks = sp.block_diag(list(W), format="csr")
    expected = np.tril((A @ blocks @ A.T).toarray())
    pat = BlockProductPattern(A, p, keep_refresh=True)
    dense = np.zeros((25, 25))
    pat.subtract_from(dense, W)
    np.testing.assert_allclose(np.tril(dense), -expected, atol=1e-12)
    # refresh with new values, and the adjoint: Y_c = A_c' S A_c for a symmetric S
    A2 = A.copy()
    A2.data = rng.normal(size=A2.nnz)
    pat.refresh(A2.data)
    dense[:] = 0.0
    pat.subtract_from(dense, W)
    np.testing.assert_allclose(np.tril(dense), -np.tril((A2 @ blocks @ A2.T).toarray()),
                               atol=1e-12)
    S = rng.normal(size=(25, 25))
    S = S + S.T
    Y = pat.block_quadratic(S.reshape(-1)[pat.flat])
    Ad = A2.toarray()
    for c in range(12):
        Ac = Ad[:, c * p:(c + 1) * p]
        np.testing.assert_allclose(Y[c], Ac.T @ S @ Ac, atol=1e-12)


def test_block_product_pattern_rejects_incomplete_blocks():
    A = sp.csr_matrix(np.array([[1.0, 0.0, 2.0, 3.0], [0.0, 1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="block-complete"):
        BlockProductPattern(A, 2)
    with pytest.raises(ValueError, match="blocks of 3"):
        BlockProductPattern(A, 3)


def test_block_diagonal_products_match_dense():
    from scipy.linalg import block_diag

    rng = np.random.default_rng(6)
    shapes = [(4, 1), (3, 2), (2, 3)]
    lams = [np.tril(rng.normal(size=(p, p))) for _, p in shapes]
    Lam = block_diag(*[np.kron(np.eye(nl), lam) for (nl, _), lam in
                         zip(shapes, lams, strict=True)])
    bd = BlockDiagonal(shapes)
    q = Lam.shape[0]
    X = rng.normal(size=(q, q))
    S = X + X.T
    np.testing.assert_allclose(bd.left(lams, X), Lam @ X, atol=1e-12)
    np.testing.assert_allclose(bd.left(lams, X, transpose=True), Lam.T @ X, atol=1e-12)
    np.testing.assert_allclose(bd.right(lams, X), X @ Lam, atol=1e-12)
    lower = np.tril(S)             # only the lower triangle is read
    np.testing.assert_allclose(np.tril(bd.sandwich_lower(lams, lower)),
                               np.tril(Lam.T @ S @ Lam), atol=1e-12)
    # Lambda = D Lambda_v: the vector terms' blocks from the lower triangle and the
    # levels' diagonal blocks (garbage elsewhere above the diagonal), D scaling after
    D = bd.scalar_diagonal(lams)
    Lam_v = block_diag(*[np.kron(np.eye(nl), lam if p > 1 else np.eye(1))
                         for (nl, p), lam in zip(shapes, lams, strict=True)])
    np.testing.assert_allclose(np.diag(D) @ Lam_v, Lam, atol=1e-15)
    garbage = np.tril(S) + np.triu(rng.normal(size=(q, q)), 1)
    got = bd.sandwich_vector_terms(lams, bd.mirror_diagonal_blocks(garbage))
    np.testing.assert_allclose(np.tril(got), np.tril(Lam_v @ S @ Lam_v.T), atol=1e-12)
    lower = np.tril(S) * D[:, None] * D[None, :]
    np.testing.assert_allclose(np.tril(bd.sandwich_lower(lams, lower, vector_only=True)),
                               np.tril(Lam.T @ S @ Lam), atol=1e-12)
    Y = rng.normal(size=(q, 5))
    Z = rng.normal(size=(q, 5))
    sums = bd.diag_block_sums(Y, Z)
    off = 0
    for (nl, p), got in zip(shapes, sums, strict=True):
        want = sum(Y[off + i * p:off + (i + 1) * p] @ Z[off + i * p:off + (i + 1) * p].T
                   for i in range(nl))
        np.testing.assert_allclose(got, want, atol=1e-12)
        off += nl * p


def test_scaled_lower_copy_matches_dense():
    from mixedmodels.linalg.lapack import SCALE_PANEL, scaled_lower_copy

    rng = np.random.default_rng(8)
    n = 2 * SCALE_PANEL + 7                  # panels of both sizes
    A = rng.normal(size=(n, n))
    d = rng.uniform(-2.0, 2.0, n)
    out = np.full((n, n), np.nan)
    scaled_lower_copy(A, d, out)
    np.testing.assert_array_equal(np.tril(out), np.tril(A * d[:, None] * d[None, :]))


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g1) + (x | g2)",
                                     "y ~ x + (x | g1) + (x | g2)"])
def test_rest_logdet_shortcut_matches_the_exact_path(formula, monkeypatch):
    # the lambda_k^{-1} shortcut for well-conditioned rest terms against the path that
    # never inverts lambda (forced by declaring every lambda ill-conditioned)
    import mixedmodels.objective.lmm_gradient as lg

    design = mm.materialize(mm.parse_formula(formula), _simulated(seed=5), weights="w")
    obj = mm.LMMObjective(design, method="blocked")
    theta = np.linspace(0.4, 1.2, design.n_theta) * np.where(design.theta_lower() == 0, 1, -1)
    _, fast = obj.value_and_gradient(theta)
    monkeypatch.setattr(lg, "_well_conditioned", lambda lams: False)
    _, exact = obj.value_and_gradient(theta)
    np.testing.assert_allclose(fast, exact, rtol=1e-10, atol=1e-10)


def test_well_conditioned_rule():
    from mixedmodels.objective.lmm_gradient import LAMBDA_INVERSE_MIN_SV, _well_conditioned

    assert _well_conditioned([np.eye(2), np.array([[0.5]])])
    assert not _well_conditioned([np.array([[1.0, 0.0], [0.3, 0.0]])])        # singular
    assert not _well_conditioned([np.array([[LAMBDA_INVERSE_MIN_SV / 2]])])


@pytest.mark.parametrize("n", [1, 3, 256, 257, 600])
def test_mirror_lower_inplace(n):
    from mixedmodels.linalg.lapack import mirror_lower_inplace

    a = np.random.default_rng(n).standard_normal((n, n))
    expected = np.tril(a) + np.tril(a, -1).T
    out = mirror_lower_inplace(a)
    assert out is a
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("n", [1, 4, 38, 256, 257, 600])
def test_symmetric_from_one_triangle(n):
    """A new symmetric array from one triangle, the other never read (NaN there here)."""
    from mixedmodels.linalg.lapack import symmetric_from_lower, symmetric_from_upper

    a = np.random.default_rng(n).standard_normal((n, n))
    upper = np.where(np.tri(n, k=-1, dtype=bool), np.nan, a)
    lower = np.where(np.tri(n, dtype=bool), a, np.nan)
    for out, expected in ((symmetric_from_upper(upper), np.triu(a) + np.triu(a, 1).T),
                          (symmetric_from_lower(lower), np.tril(a) + np.tril(a, -1).T)):
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected)
    assert np.isnan(upper).sum() == n * (n - 1) // 2     # inputs left as they were

# DenseSystem forms T'AT three ways (all-scalar terms: A * d d'; small: two products;
# from KRONECKER_MIN_SIZE columns: scaling A's blocks term by term); each against the oracle
DENSE_PATHS = [
    ("y ~ x + (1 | g2) + (1 | g3)", "diagonal"),
    ("y ~ x + (1 | g1) + (1 | g2/g3)", "diagonal"),
    ("y ~ x + (x | g2) + (1 | g3)", "products"),
    ("y ~ x + cs(0 + x + z | g2)", "products"),
    ("y ~ x + (x | g1) + (1 | g3)", "blocks"),
    ("y ~ x + diag(0 + x + z | g1) + (1 | g2)", "blocks"),
    ("y ~ x + (1 | g1) + (x + z | g2)", "blocks"),
]


@pytest.mark.parametrize("formula,path", DENSE_PATHS)
def test_dense_system_paths_match_oracle(formula, path):
    from mixedmodels.linalg.dense import KRONECKER_MIN_SIZE

    design = mm.materialize(mm.parse_formula(formula), _simulated(seed=5))
    obj = mm.LMMObjective(design, reml=True, method="dense")
    system = obj.system
    taken = "diagonal" if system._diagonal else (
        "blocks" if system.q + design.p + 1 >= KRONECKER_MIN_SIZE else "products")
    assert taken == path
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = design.theta0() + rng.uniform(-0.4, 0.6, design.n_theta)
        theta = np.maximum(theta, design.theta_lower())
        expected = oracle_objective(design, theta, True)
        # the scratch workspace and a factor that owns its array give the same value
        assert obj(theta) == pytest.approx(expected, rel=ORACLE_RTOL)
        assert obj.solve(theta).objective == pytest.approx(expected, rel=ORACLE_RTOL)
