"""How well a preconditioned iterative solve with a stochastic log-determinant would do
on a MovieLens-like design, against the exact (direct) factorization.

``python benchmarks/iterative_logdet.py --rows 2e5 --users 5000 --items 3000``

For ``M = I + Lambda' Z' Z Lambda`` of ``y ~ x + (1 | user) + (1 | item)`` at theta =
(0.5, 0.5): the exact ``log det M`` (users' diagonal block eliminated, the items' dense
Schur complement factored -- what the blocked factorization does), against stochastic
Lanczos quadrature (Rademacher probes, Lanczos on the Jacobi-scaled ``M``, its diagonal's
determinant exact) for several probe counts; and the
conjugate-gradient solve of ``M u = Lambda' Z' y`` with the diagonal preconditioner, its
iterations and residual against the direct solve. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scale_bench import simulate

#: Lanczos steps per probe of the stochastic log-determinant.
LANCZOS_STEPS = 40


def _slq_logdet(M, q: int, probes: int, rng) -> float:
    """Stochastic Lanczos quadrature estimate of ``log det M`` (Ubaru, Chen & Saad 2017)."""
    total = 0.0
    for _ in range(probes):
        v = rng.choice([-1.0, 1.0], q)
        v /= np.linalg.norm(v)
        alpha, beta = [], []
        w_prev, b = np.zeros(q), 0.0
        w = v
        for _ in range(LANCZOS_STEPS):
            z = M @ w - b * w_prev
            a = float(w @ z)
            z -= a * w
            alpha.append(a)
            b = float(np.linalg.norm(z))
            if b < 1e-12:
                break
            beta.append(b)
            w_prev, w = w, z / b
        T = np.diag(alpha) + np.diag(beta[:len(alpha) - 1], 1) + np.diag(beta[:len(alpha) - 1], -1)
        evals, evecs = np.linalg.eigh(T)
        total += float(np.sum(evecs[0] ** 2 * np.log(evals)))
    return q * total / probes


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=2e5)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=3000)
    args = ap.parse_args(argv)
    df = simulate(int(args.rows), "crossed", users=args.users, items=args.items)
    n = len(df)
    nu, ni = args.users, args.items
    Z = sp.hstack([sp.csr_matrix((np.ones(n), (np.arange(n), df["user"])), shape=(n, nu)),
                   sp.csr_matrix((np.ones(n), (np.arange(n), df["item"])), shape=(n, ni))]
                  ).tocsr()
    lam = 0.5
    M = (sp.identity(nu + ni) + lam * lam * (Z.T @ Z)).tocsr()
    q = nu + ni
    t0 = time.process_time()
    d_user = M.diagonal()[:nu]
    A21 = M[nu:, :nu]
    S = M[nu:, nu:].toarray() - (A21 @ sp.diags(1.0 / d_user) @ A21.T).toarray()
    exact = float(np.sum(np.log(d_user)) + 2.0 * np.sum(np.log(np.diag(np.linalg.cholesky(S)))))
    t_exact = time.process_time() - t0
    print(json.dumps({"what": "exact logdet (dense item Schur complement)", "q": q,
                      "logdet": exact, "cpu_s": t_exact}))
    rng = np.random.default_rng(1)
    # log det M = log det D + log det(D^-1/2 M D^-1/2): the diagonal exactly, SLQ on the
    # Jacobi-scaled matrix, whose condition number is small (PCG below: a dozen steps)
    dinv = sp.diags(1.0 / np.sqrt(M.diagonal()))
    Ms = (dinv @ M @ dinv).tocsr()
    log_d = float(np.sum(np.log(M.diagonal())))
    for probes in (10, 40, 160):
        t0 = time.process_time()
        est = log_d + _slq_logdet(Ms, q, probes, rng)
        print(json.dumps({"what": "SLQ logdet", "probes": probes, "steps": LANCZOS_STEPS,
                          "logdet": est, "abs_error": est - exact,
                          "cpu_s": time.process_time() - t0}))
    rhs = lam * (Z.T @ df["y"].to_numpy())
    t0 = time.process_time()
    direct = spla.spsolve(M.tocsc(), rhs)
    t_direct = time.process_time() - t0
    its = []
    t0 = time.process_time()
    u, info = spla.cg(M, rhs, rtol=1e-10, M=sp.diags(1.0 / M.diagonal()),
                      callback=lambda xk: its.append(1), maxiter=5000)
    print(json.dumps({"what": "Jacobi-PCG solve", "iterations": len(its), "info": int(info),
                      "cpu_s": time.process_time() - t0, "direct_cpu_s": t_direct,
                      "max_rel_error": float(np.max(np.abs(u - direct))
                                             / np.max(np.abs(direct)))}))


if __name__ == "__main__":
    main()
