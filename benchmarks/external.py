"""Time other tools on the same table rows, on this machine, for same-machine ratios.

``python benchmarks/external.py --tool lme4 [--only NAME] [--repeat 5] [--quick]`` runs
``benchmarks/r/time_lme4.R`` (Rscript) once per row in a fresh R process -- lme4's lmer,
glmer, glmer.nb, or glmmTMB for glmmtmb rows -- and merges the results into
``benchmarks/results/lme4_local.json``. ``run.py --with-r`` uses the same code
(:func:`time_row`) row by row in its own run. ``--tool mixedlm --python
/tmp/peer-venv/bin/python`` does the same with the peer library mixedlm
(``benchmarks/peer_mixedlm.py``, its own virtual environment, never a project dependency)
into ``results/peer_mixedlm.json``. ``run.py`` reads both files to compute speedups.

Every tool gets the same protocol: the same CSV data with the same factor level orders,
data loading untimed, one untimed warm-up fit (unless the row says ``warmup = false``),
then the median of ``repeat`` timed fits, formula -> fitted model; peak memory is the
child's own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import sys
import tempfile
from importlib import resources
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.child import child_env, run_child, thread_settings
from benchmarks.simulate import generate
from benchmarks.table import TABLE_PATH, BenchmarkCase, BenchmarkTable, load_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TOOLS = {
    "lme4": {"out": RESULTS / "lme4_local.json", "script": HERE / "r" / "time_lme4.R"},
    "mixedlm": {"out": RESULTS / "peer_mixedlm.json", "script": HERE / "peer_mixedlm.py"},
}
#: lme4's own timing protocol in visible.json is a median of 5 runs.
DEFAULT_REPEAT = 5
#: Options of a row that the R script understands.
_R_OPTIONS = {"REML", "nAGQ", "link", "ziformula", "dispformula"}


def _bundled_csv(name: str) -> tuple[Path, dict]:
    data_dir = Path(str(resources.files("mixedmodels.datasets").joinpath("data")))
    with (data_dir / "factor_levels.json").open() as fh:
        levels = json.load(fh).get(name, {})
    for suffix in (".csv", ".csv.gz"):
        path = data_dir / f"{name}{suffix}"
        if path.exists():
            return path, levels
    raise FileNotFoundError(f"no bundled CSV for data set {name!r} in {data_dir}")


def _simulated_csv(spec: dict, path: Path) -> tuple[Path, dict]:
    import pandas as pd

    sim = generate(spec)
    pd.DataFrame(sim.columns).to_csv(path, index=False)
    return path, {name: None for name in sim.levels}


def write_job(case: BenchmarkCase, table: BenchmarkTable, repeat: int, tmp: Path) -> Path:
    """The JSON job the R script and the peer script read."""
    unknown = set(case.options) - _R_OPTIONS
    if unknown:
        raise ValueError(f"{case.name}: options {sorted(unknown)} have no translation for "
                         "the external tools yet (extend external.py and time_lme4.R)")
    if case.data in table.simulated:
        csv, levels = _simulated_csv(table.simulated[case.data], tmp / f"{case.data}.csv")
    else:
        csv, levels = _bundled_csv(case.data)
    job = {
        "name": case.name, "engine": case.engine, "csv": str(csv), "factor_levels": levels,
        "formula": case.lme4_formula, "python_formula": case.formula,
        # lmer's REML default is TRUE, glmmTMB's FALSE (glmer ignores it)
        "REML": bool(case.options.get("REML", case.engine == "lmer")), "repeat_n": repeat,
        "warmup": case.warmup, "family": case.r_family_call,
        "nAGQ": int(case.options.get("nAGQ", 1)),
        "ziformula": case.options.get("ziformula", "~0"),
        "dispformula": case.options.get("dispformula", "~1"),
    }
    path = tmp / f"{case.name}.job.json"
    path.write_text(json.dumps(job))
    return path


def _command(tool: str, python: str, job: Path, out: Path) -> list[str]:
    script = str(TOOLS[tool]["script"])
    if tool == "lme4":
        return ["Rscript", "--vanilla", script, str(job), str(out)]
    return [python, script, str(job), str(out)]


def run_tool(tool: str, cases: list[BenchmarkCase], table: BenchmarkTable, repeat: int,
             python: str, blas_threads: int | None = None) -> dict:
    """``{name: record}`` for the rows the tool could fit (errors are recorded too)."""
    records = {}
    for case in cases:
        if tool == "mixedlm" and case.engine != "lmer":
            print(f"[{tool}] {case.name}: mixedlm fits lmer rows only, skipped")
            continue
        print(f"[{tool}] {case.name} ...", end=" ", flush=True)
        rec = time_row(tool, case, table, repeat, python, blas_threads)
        if rec["status"] == "ok":
            print(f"{rec['seconds'] * 1e3:.1f} ms, {rec['n_evals']} evals", flush=True)
        else:
            print(rec["status"], rec.get("reason", ""), flush=True)
        records[case.name] = rec
    return records


def time_row(tool: str, case: BenchmarkCase, table: BenchmarkTable, repeat: int,
             python: str = "", blas_threads: int | None = None) -> dict:
    """Time one row with ``tool`` in a fresh process: the record (status "ok" or why not).

    ``run.py --with-r`` calls this right after timing mixedmodels on the same row, so both
    tools see the same load (same-run ratios)."""
    n = case.repeats(repeat)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        job = write_job(case, table, n, tmp)
        out = tmp / f"{case.name}.out.json"
        res = run_child(_command(tool, python, job, out), timeout_s=case.timeout_seconds
                        * max(2, n + 1), env=child_env(blas_threads))
        if res.returncode == 0 and out.exists():
            rec = json.loads(out.read_text())
            rec["status"] = "ok"
        else:
            tail = " / ".join(res.stderr.strip().splitlines()[-3:])
            rec = {"name": case.name, "status": "timeout" if res.timed_out else "error",
                   "reason": tail}
    rec["tool"] = case.reference_tool if tool == "lme4" else tool
    rec["maxrss_mb"] = res.maxrss_mb
    rec["child_wall_s"] = res.wall_s
    return rec


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description="Time lme4 or mixedlm on the benchmark table.")
    ap.add_argument("--tool", choices=sorted(TOOLS), required=True)
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--python", default="/tmp/peer-venv/bin/python",
                    help="interpreter of the peer's virtual environment (--tool mixedlm)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--blas-threads", type=int, default=None, metavar="N",
                    help="pin BLAS/OpenMP threads in the tool's process (default: as is)")
    ap.add_argument("--table", type=Path, default=TABLE_PATH)
    args = ap.parse_args(argv)
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    table = load_table(args.table)
    cases = table.select(only, quick=args.quick)
    out_path = args.out or TOOLS[args.tool]["out"]
    loadavg_start = os.getloadavg()[0]
    records = run_tool(args.tool, cases, table, args.repeat, args.python, args.blas_threads)
    doc = {"meta": {}, "models": {}}
    if out_path.exists():
        doc = json.loads(out_path.read_text())
    doc["models"].update(records)
    versions = next((r["versions"] for r in records.values() if "versions" in r), {})
    doc["meta"] = {
        **doc.get("meta", {}), **versions,
        "timestamp": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/external.py " + " ".join(map(shlex.quote, argv)),
        "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg()[0],
        "protocol": "fresh process per row, 1 untimed warm-up fit, median of repeats",
        "blas_threads": args.blas_threads if args.blas_threads is not None else
        f"default ({thread_settings()})",
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"[{args.tool}] wrote {out_path}")
    return 0 if all(r["status"] == "ok" for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
