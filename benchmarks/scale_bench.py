"""Scale benchmarks: lmer on millions of rows, in memory and on a Dask LocalCluster.

``python benchmarks/scale_bench.py --rows 1e6 --mode dask --workers 2``

Each measurement runs in a fresh subprocess (``--child``) so that peaks of memory never mix.
Designs are simulated (MovieLens-like crossed ratings ``y ~ 1 + x + (1 | user) +
(1 | item)`` with n/100 users and min(n/1000, 2000) items, or with ``--users`` and
``--items`` given -- 50,000 x 10,000 is MovieLens-like in its second factor -- or a random
intercept ``y ~ x + (1 | g)`` with ``--design intercept``). ``--sparse-min-rest`` moves
the size of the second factor above which the sparse factorization replaces the dense
block (``mixedmodels.linalg.sparse.SPARSE_MIN_REST``): 0 forces it, a huge value forbids
it, so the two can be compared on one case.
Reported per run: wall time of the fit (data generation excluded; for Dask the parquet
files are written beforehand and read by the fit), the client's peak resident memory, the
workers' peak resident memory (sampled), objective evaluations, and the objective.

Results are appended to ``benchmarks/results/scale.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "scale.json"
#: Rows per parquet file / Dask partition.
ROWS_PER_PARTITION = 500_000
#: Items of the crossed design at most (the dense rest block of the optimization grows as
#: its square; beyond ~6,000 the sparse factorization takes over).
MAX_ITEMS = 2000
#: Seconds between samples of the workers' memory.
MEMORY_SAMPLE_S = 0.5


def simulate(n: int, design: str, seed: int = 7, users: int = 0, items: int = 0,
             family: str = "gaussian"):
    """The simulated data as a pandas DataFrame (see the module docstring)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    if design == "intercept":
        n_g = max(n // 100, 10)
        g = rng.integers(0, n_g, n)
        if family == "poisson":
            y = rng.poisson(np.exp(0.5 + 0.2 * x + rng.normal(0, 0.5, n_g)[g])).astype(float)
        elif family == "binomial":
            eta = -0.3 + 0.5 * x + rng.normal(0, 0.8, n_g)[g]
            y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))).astype(float)
        else:
            y = 2.0 + 0.5 * x + rng.normal(0, 1.0, n_g)[g] + rng.normal(0, 1.0, n)
        return pd.DataFrame({"y": y, "x": x, "g": g})
    n_user = users or max(n // 100, 10)
    n_item = items or max(min(n // 1000, MAX_ITEMS), 10)
    # skewed item popularity, as in ratings data
    item = np.minimum(rng.zipf(1.3, n) - 1, n_item - 1) if n_item > 1 else np.zeros(n, int)
    user = rng.integers(0, n_user, n)
    re = rng.normal(0, 0.5, n_user)[user] + rng.normal(0, 0.4, n_item)[item]
    if family == "poisson":            # counts (glmer): log mean around 0.5
        y = rng.poisson(np.exp(0.5 + 0.2 * x + re)).astype(float)
    elif family == "binomial":
        y = rng.binomial(1, 1.0 / (1.0 + np.exp(0.3 - 0.5 * x - re))).astype(float)
    else:
        y = 3.5 + 0.2 * x + re + rng.normal(0, 0.9, n)
    return pd.DataFrame({"y": y, "x": x, "user": user, "item": item})


FORMULAS = {"intercept": "y ~ x + (1 | g)", "crossed": "y ~ x + (1 | user) + (1 | item)"}


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far. Linux keeps ``ru_maxrss`` across
    ``exec``: a child started by a parent that simulated 20M rows starts with the
    parent's peak, so the fit's own peak is measured by :class:`_RssSampler` instead."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _RssSampler:
    """The largest current resident memory of this process, sampled every
    ``MEMORY_SAMPLE_S`` seconds while in the ``with`` block (MB in ``peak_mb``)."""

    def __enter__(self):
        import psutil

        proc = psutil.Process()
        self.peak_mb = proc.memory_info().rss / 2**20
        self._stop = threading.Event()

        def run():
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
                self._stop.wait(MEMORY_SAMPLE_S)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def child(args) -> dict:
    import mixedmodels as mm

    formula = FORMULAS[args.design]
    if args.sparse_min_rest is not None:
        import mixedmodels.objective.lmm as lmm_objective

        lmm_objective.SPARSE_MIN_REST = args.sparse_min_rest
    def fit(data):
        if args.family == "gaussian":
            return mm.lmer(formula, data)
        return mm.glmer(formula, data, family=args.family, nAGQ=args.nagq,
                        optimizer=args.optimizer)

    if args.mode == "memory":
        df = simulate(args.rows, args.design, users=args.users, items=args.items,
                      family=args.family)
        base = _peak_rss_mb()
        t0 = time.perf_counter()
        c0 = time.process_time()
        with _RssSampler() as rss:
            m = fit(df)
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "cpu_s": time.process_time() - c0,
                "client_peak_mb": rss.peak_mb, "data_mb": base,
                "evals": m.opt.n_evals, "objective": m.objective, "workers_peak_mb": None,
                "method": getattr(m.objective_function, "method", "pirls"),
                "theta": m.theta.tolist(),
                "beta": m.beta.tolist(), "sigma": m.sigma}
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, \
            Client(cluster) as client:
        client.submit(lambda: __import__("mixedmodels")).result()
        client.run(lambda: __import__("mixedmodels"))
        peaks = {}
        stop = threading.Event()

        def sample():
            import psutil
            while not stop.is_set():
                try:
                    mem = client.run(lambda: psutil.Process().memory_info().rss)
                except Exception:
                    break
                for k, v in mem.items():
                    peaks[k] = max(peaks.get(k, 0), v)
                stop.wait(MEMORY_SAMPLE_S)

        def worker_cpu() -> float:
            import psutil
            times = client.run(lambda: sum(psutil.Process().cpu_times()[:2]))
            return float(sum(times.values()))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        base = _peak_rss_mb()
        w0 = worker_cpu()
        t0 = time.perf_counter()
        c0 = time.process_time()
        with _RssSampler() as rss:
            m = fit(dd.read_parquet(args.path))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        stop.set()
        thread.join()
        workers_cpu = worker_cpu() - w0
    return {"wall_s": wall, "client_cpu_s": cpu, "workers_cpu_s": workers_cpu,
            "client_peak_mb": rss.peak_mb, "client_before_mb": base,
            "evals": m.opt.n_evals, "objective": m.objective, **m.timings,
            "optimizer_used": m.opt.optimizer,
            "theta": m.theta.tolist(), "beta": m.beta.tolist(),
            "workers_peak_mb": max(peaks.values()) / 2**20 if peaks else None}


def run_one(rows: int, mode: str, workers: int, design: str, tmp: Path,
            extra: tuple = (), family: str = "gaussian", users: int = 0,
            items: int = 0) -> dict:
    path = ""
    if mode == "dask":
        path = str(tmp / f"{design}_{rows}_{family}_{users}_{items}")
        if not Path(path).exists():
            import dask.dataframe as dd

            df = simulate(rows, design, users=users, items=items, family=family)
            nparts = max(1, rows // ROWS_PER_PARTITION)
            dd.from_pandas(df, npartitions=nparts).to_parquet(path)
            del df
    load_start = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child", "--rows", str(rows), "--mode", mode,
           "--workers", str(workers), "--design", design, "--path", path, *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec.update({"rows": rows, "mode": mode, "workers": workers if mode == "dask" else 0,
                "design": design, "formula": FORMULAS[design],
                "date": time.strftime("%Y-%m-%d %H:%M"), "load_avg": os.getloadavg()[0],
                "load_avg_start": load_start})
    return rec


def markdown(records: list[dict]) -> str:
    """The table of ``records`` (one row per run, newest last)."""
    head = ("| design | rows | where | wall (s) | passes (s) | optimize (s) | evals | "
            "client CPU (s) | workers CPU (s) | client peak (MB) | worker peak (MB) | "
            "load avg |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in records:
        where = "in memory" if r["mode"] == "memory" else f"Dask, {r['workers']} worker(s)"
        if r.get("sparse_min_rest") is not None:        # a forced factorization
            where += f", {r.get('method')}"
        passes = r.get("scan_and_qr_s", 0.0) + r.get("cross_products_s", 0.0)
        opt = r.get("optimize_s", r.get("fit_s"))      # glmer: passes inside the fit
        worker = r.get("workers_peak_mb")
        formula = r["formula"].replace("|", "\\|")      # a pipe inside a table cell
        cpu = r.get("client_cpu_s", r.get("cpu_s"))
        wcpu = r.get("workers_cpu_s")
        load = f"{r['load_avg']:.0f}"
        if r.get("load_avg_start") is not None:        # at the start and at the end
            load = f"{r['load_avg_start']:.0f}-{load}"
        lines.append(
            f"| `{formula}` | {r['rows']:,} | {where} | {r['wall_s']:.1f} | "
            f"{passes:.1f} | {'' if opt is None else f'{opt:.1f}'} | {r['evals']} | "
            f"{'' if cpu is None else f'{cpu:.1f}'} | "
            f"{'' if wcpu is None else f'{wcpu:.1f}'} | "
            f"{r['client_peak_mb']:.0f} | "
            f"{'' if worker is None else f'{worker:.0f}'} | {load} |")
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, action="append", help="rows (repeatable)")
    ap.add_argument("--mode", choices=["memory", "dask"], default="memory")
    ap.add_argument("--workers", type=int, action="append", help="Dask workers (repeatable)")
    ap.add_argument("--design", choices=sorted(FORMULAS), default="crossed")
    ap.add_argument("--users", type=int, default=0, help="levels of the first factor")
    ap.add_argument("--items", type=int, default=0, help="levels of the second factor")
    ap.add_argument("--sparse-min-rest", type=int, default=None,
                    help="second-factor size above which the sparse factorization is used")
    ap.add_argument("--family", choices=["gaussian", "poisson", "binomial"],
                    default="gaussian",
                    help="gaussian: lmer; poisson, binomial: glmer on simulated counts / 0-1")
    ap.add_argument("--nagq", type=int, default=1, help="glmer's nAGQ")
    ap.add_argument("--optimizer", default="auto", help="glmer's optimizer")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--render", action="store_true",
                    help="only write the Markdown table of --out (beside it, .md)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.rows = int(args.rows[0])
        args.workers = args.workers[0]
        print(json.dumps(child(args)))
        return
    out = Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else []
    if args.render:
        text = markdown(records)
        for name, title in (("glmm_scale.json", "glmer (passes inside the fit)"),
                            ("sparse.json", "Second factor: dense block vs sparse LU")):
            extra = out.parent / name
            if extra.exists():
                text += f"\n## {title}\n\n" + markdown(json.loads(extra.read_text()))
        out.with_suffix(".md").write_text(text)
        return
    rows = [int(r) for r in (args.rows or [1e6])]
    workers = args.workers or [1]
    with tempfile.TemporaryDirectory(prefix="mm_scale_") as tmp:
        for n in rows:
            for k in (workers if args.mode == "dask" else [0]):
                extra = ["--users", str(args.users), "--items", str(args.items),
                         "--family", args.family, "--nagq", str(args.nagq),
                         "--optimizer", args.optimizer]
                if args.sparse_min_rest is not None:
                    extra += ["--sparse-min-rest", str(args.sparse_min_rest)]
                rec = run_one(n, args.mode, k, args.design, Path(tmp), tuple(extra),
                              args.family, args.users, args.items)
                rec.update({"users": args.users, "items": args.items,
                            "sparse_min_rest": args.sparse_min_rest,
                            "family": args.family, "nagq": args.nagq})
                if args.family != "gaussian":
                    rec["formula"] += f", glmer {args.family} nAGQ={args.nagq}"
                    rec["optimizer"] = args.optimizer
                    if args.optimizer != "auto":
                        rec["formula"] += f", optimizer={args.optimizer}"
                print(json.dumps(rec), flush=True)
                records.append(rec)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
