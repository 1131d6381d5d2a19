"""Fit one benchmark row in this (fresh) process and write what was measured as JSON.

Run by ``run.py`` as ``python -m benchmarks.worker --case NAME --repeat N --out FILE`` in a
subprocess per row, so that peak memory (``ru_maxrss``, a per-process high-water mark) and
warm caches never carry over from one model to the next.

Measured, in this order:

1. import time of mixedmodels and data-loading time (not part of the fit time);
2. unless the row says ``warmup = false``, one fit whose time is kept apart as the cold
   time (first call in a process: lazy imports, caches), then ``repeat`` timed fits,
   formula -> result, through the engine's front door (``lmer``), with nothing
   instrumented, each after a full :func:`gc.collect`; each reports its optimizer time and
   evaluation count, and its CPU time (every thread of the process) beside the wall time:
   wall above CPU means the fit waited (a loaded machine), CPU above wall that BLAS threads
   worked in parallel; fits under ``HOT_MAX_S`` are timed ``repeat`` more times back to back,
   without the collection (``fit_s_hot``: warm CPU caches);
3. resident memory: the baseline after loading the data and the peak after the fits;
4. every objective evaluation of the last fit, the convergence check's included (the
   objective's own ``n_evals``/``n_grads`` counters), and the cost of one evaluation --
   value only, and value with gradient where the objective has one -- timed directly at
   the optimum, under the BLAS thread setting the fit itself uses
   (:func:`mixedmodels._threads.blas_threads`; timed outside it, OpenBLAS's idle threads
   spun in every small solve on a loaded machine and the per-evaluation time did not
   describe the fit's evaluations);
5. unless the row says ``traced_memory = false``: one more fit under :mod:`tracemalloc`
   (numpy reports its buffers to it), kept out of the timings because tracing slows it;
   it also counts evaluations from outside for objectives that keep no count.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

from .engines import ENGINES, load_data, opt_summary
from .table import TABLE_PATH, load_table

__all__ = ["main", "measure"]

MB = 1024.0 ** 2
#: Direct timing of the objective: at least this many calls and this much time ...
EVAL_MIN_CALLS = 3
EVAL_MIN_SECONDS = 0.2
#: ... and at most this many calls.
EVAL_MAX_CALLS = 200
#: Rows whose fit takes less than this are also timed back to back (no gc.collect between
#: fits): a full collection walks the whole heap and evicts the CPU caches, which costs a
#: small fit ~1 ms of cache misses (sleepstudy: 0.85 ms back to back, 1.8 ms after a
#: collection), so the two numbers bracket what a user sees.
HOT_MAX_S = 0.05


def _rss_now_mb() -> float | None:
    """Current resident set size (Linux ``/proc/self/status``), None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


def _maxrss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MB


def versions() -> dict:
    """Versions of everything that decides the timings."""
    import formulaic
    import nlopt
    import numpy as np
    import pandas as pd
    import scipy

    import mixedmodels

    out = {
        "python": platform.python_version(),
        "mixedmodels": mixedmodels.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "formulaic": formulaic.__version__,
        "nlopt": nlopt.__version__,
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # numpy's config layout is not a stable API; the name is optional
        out["blas"] = "unknown"
    return out


def _fit_threads(result):
    """The BLAS thread setting of ``result``'s fit (a context manager): what
    ``lmer``/``glmer`` choose from the size of the design's dense block."""
    from mixedmodels._threads import blas_threads, dense_block_size

    terms = getattr(getattr(result, "design", None), "terms", None)
    return blas_threads(dense_block_size(terms) if terms is not None else 0)


def _time_evaluations(objective, theta) -> float:
    times = []
    t_end = time.perf_counter() + EVAL_MIN_SECONDS
    while len(times) < EVAL_MAX_CALLS and (len(times) < EVAL_MIN_CALLS
                                           or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        objective(theta)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


#: Objective methods that each cost one evaluation (value, or value and gradient).
EVAL_METHODS = ("__call__", "value_and_gradient")


def _evaluation_counts(objective) -> tuple[int | None, int | None]:
    """(evaluations, gradient evaluations) the objective counted itself, where it does."""
    return getattr(objective, "n_evals", None), getattr(objective, "n_grads", None)


def _traced_fit(fit, case, data, objective_cls) -> tuple[float, int | None]:
    """Peak traced memory (MB) of one fit, and its evaluations counted from outside.

    The count wraps the objective's evaluation methods; it serves objectives that do not
    count their own evaluations (``n_evals``).
    """
    count = [0]
    originals = {}
    if objective_cls is not None:
        for name in EVAL_METHODS:
            if hasattr(objective_cls, name):
                originals[name] = getattr(objective_cls, name)

    def counting(method):
        def wrapped(self, *args, **kwargs):
            count[0] += 1
            return method(self, *args, **kwargs)
        return wrapped

    for name, method in originals.items():
        setattr(objective_cls, name, counting(method))
    gc.collect()
    tracemalloc.start()
    try:
        fit(case, data)
        peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
        for name, method in originals.items():
            setattr(objective_cls, name, method)
    return peak, (count[0] if originals else None)


def measure(case_name: str, repeat: int, table_path: Path = TABLE_PATH) -> dict:
    """Everything the module docstring lists, for one row, as a JSON-ready dict."""
    table = load_table(table_path)
    case = table.get(case_name)
    out: dict = {"name": case.name, "engine": case.engine, "data": case.data,
                 "formula": case.formula, "options": case.options}
    fit = ENGINES.get(case.engine)
    if fit is None:
        out.update(status="skipped", reason=f"engine {case.engine!r} not wired in "
                   "benchmarks/engines.py yet")
        return out
    t0 = time.perf_counter()
    import mixedmodels  # noqa: F401  (timed: import cost is what a fresh process pays)
    out["import_s"] = time.perf_counter() - t0
    out["versions"] = versions()
    t0 = time.perf_counter()
    data = load_data(table, case.data)
    out["data_load_s"] = time.perf_counter() - t0
    out["rss_baseline_mb"] = _rss_now_mb()
    out["maxrss_before_fit_mb"] = _maxrss_mb()

    n = case.repeats(repeat)
    fit_s, cpu_s, opt_s, evals = [], [], [], []
    result = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.warmup:
            gc.collect()
            t0 = time.perf_counter()
            fit(case, data)
            out["fit_s_cold"] = time.perf_counter() - t0
        for _ in range(n):
            result = None
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            result = fit(case, data)
            fit_s.append(time.perf_counter() - t0)
            cpu_s.append(time.process_time() - c0)
            opt_s.append(opt_summary(result).seconds)
            evals.append(opt_summary(result).n_evals)
        if statistics.median(fit_s) < HOT_MAX_S:
            hot = []
            for _ in range(n):
                t0 = time.perf_counter()
                fit(case, data)
                hot.append(time.perf_counter() - t0)
            out["fit_s_hot"] = statistics.median(hot)
        out["peak_rss_mb"] = _maxrss_mb()
        objective = getattr(result, "objective_function", None)
        out["n_evals_total"], out["n_grads"] = _evaluation_counts(objective)
        if objective is not None:
            # at the optimizer's solution (theta for lmer; theta and beta for glmer's
            # Laplace stage; all parameters for glmmtmb)
            x_opt = opt_summary(result).x
            # glmer's nAGQ = 0 optimizes theta alone through its stage-0 criterion
            value = objective.stage0 if getattr(objective, "nAGQ", None) == 0 else objective
            with _fit_threads(result):
                out["eval_s"] = _time_evaluations(value, x_opt)
                if getattr(objective, "has_gradient", False):
                    out["grad_eval_s"] = _time_evaluations(objective.value_and_gradient,
                                                           x_opt)
        if case.traced_memory:
            out["traced_peak_mb"], counted = _traced_fit(
                fit, case, data, type(objective) if objective is not None else None)
            if out["n_evals_total"] is None:
                out["n_evals_total"] = counted

    out.update(
        status="ok",
        repeats=n,
        n_obs=int(result.nobs),
        fit_s=statistics.median(fit_s),
        fit_s_all=fit_s,
        fit_cpu_s=statistics.median(cpu_s),
        fit_cpu_s_all=cpu_s,
        optimizer_s=statistics.median(opt_s),
        n_evals=int(statistics.median(evals)),
        n_evals_all=evals,
        objective=float(result.objective),
        theta=[float(t) for t in result.theta],
        return_code=opt_summary(result).return_code,
        messages=list(getattr(result, "messages", ())),
    )
    out.setdefault("fit_s_cold", fit_s[0])
    out["optimizer_s_per_eval"] = out["optimizer_s"] / max(out["n_evals"], 1)
    out["outside_optimizer_s"] = out["fit_s"] - out["optimizer_s"]
    if out["rss_baseline_mb"] is not None:
        out["peak_rss_increase_mb"] = out["peak_rss_mb"] - out["rss_baseline_mb"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--table", type=Path, default=TABLE_PATH)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    record = measure(args.case, args.repeat, args.table)
    args.out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
