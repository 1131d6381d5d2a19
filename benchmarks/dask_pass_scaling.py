"""The distributed passes of lmer on Dask input, by rows and by workers.

``python benchmarks/dask_pass_scaling.py --path DIR --files 2 --files 10 --files 40
--workers 1 --workers 2``

``DIR`` holds parquet files of 500,000 rows each (``scale_bench.py``'s simulated crossed
ratings, ``y ~ x + (1 | user) + (1 | item)``); the first ``--files`` of them are read, so
every run has the same level sets (the 20M-row design's 200,000 users x 2,000 items) and
only the rows change. Each run is a fresh subprocess with a ``distributed.LocalCluster``
of ``--workers`` processes (one thread each) that makes the three passes of a Dask
``lmer`` fit -- the scan, the tall-skinny QR and the summed cross-products (what
:func:`~mixedmodels.backends.dask.lmm.fit_lmer_dask` does before the optimization on the
client, which does not depend on the workers) -- and reports their wall times, the
client's and each worker's CPU seconds (``psutil``, the workers' warm-up excluded), the
workers' peak resident memory (sampled every 0.5 s) and the load average. Results are
appended to ``benchmarks/results/dask_pass_scaling.json``.

The machine this was written on has 2 cores shared with other jobs: the CPU seconds are
the work, the wall times are what the load left of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "dask_pass_scaling.json"
FORMULA = "y ~ x + (1 | user) + (1 | item)"
#: Seconds between samples of the workers' memory.
MEMORY_SAMPLE_S = 0.5


def child(path: str, files: int, workers: int) -> dict:
    import dask.dataframe as dd
    import psutil
    from distributed import Client, LocalCluster

    from mixedmodels.backends.dask.lmm import reduce_lmm
    from mixedmodels.backends.dask.prepare import prepare
    from mixedmodels.design.response import numeric_response

    paths = sorted(Path(path).glob("*.parquet"), key=lambda p: int(p.stem.split(".")[1]))
    paths = [str(p) for p in paths[:files]]
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, \
            Client(cluster) as client:
        client.run(lambda: __import__("mixedmodels.backends.dask.prepare"))
        peaks: dict = {}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    mem = client.run(lambda: psutil.Process().memory_info().rss)
                except Exception:
                    break
                for k, v in mem.items():
                    peaks[k] = max(peaks.get(k, 0), v)
                stop.wait(MEMORY_SAMPLE_S)

        def worker_cpu() -> dict:
            return client.run(lambda: sum(psutil.Process().cpu_times()[:2]))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        w0 = worker_cpu()
        c0 = time.process_time()
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        prepared = prepare(FORMULA, dd.read_parquet(paths), weights=None, offset=None,
                           contrasts=None, response=numeric_response)
        t1 = time.perf_counter()
        reduced = reduce_lmm(prepared.frame, prepared, "auto")
        t2 = time.perf_counter()
        cpu = time.process_time() - c0
        w1 = worker_cpu()
        stop.set()
        thread.join()
    d = prepared.plan.design
    return {"rows": int(d.nobs), "files": files, "workers": workers,
            "levels": [int(t.nlevels) for t in d.terms],
            "scan_and_qr_s": t1 - t0, "cross_products_s": t2 - t1, "passes_s": t2 - t0,
            "client_cpu_s": cpu,
            "worker_cpu_s": sorted(float(w1[k] - w0[k]) for k in w0),
            "worker_peak_mb": sorted(v / 2**20 for v in peaks.values()),
            "method": reduced.method, "load_avg_start": load0,
            "load_avg": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", required=True, help="folder of 500,000-row parquet files")
    ap.add_argument("--files", type=int, action="append", help="files read (repeatable)")
    ap.add_argument("--workers", type=int, action="append", help="workers (repeatable)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.path, args.files[0], args.workers[0])))
        return
    out = Path(args.out)
    for files in args.files or [2]:
        for k in args.workers or [1, 2]:
            cmd = [sys.executable, __file__, "--child", "--path", args.path,
                   "--files", str(files), "--workers", str(k)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-3000:])
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            print(json.dumps(rec), flush=True)
            records = json.loads(out.read_text()) if out.exists() else []
            out.write_text(json.dumps([*records, rec], indent=1) + "\n")


if __name__ == "__main__":
    main()
