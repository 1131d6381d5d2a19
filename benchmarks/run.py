"""Run the benchmark table: ``python benchmarks/run.py [--only NAME] [--repeat N] [--out FILE]``.

Each row is fitted in its own fresh subprocess (``benchmarks/worker.py``) so peaks of memory
and warm caches never mix between models. Results go to ``--out`` (JSON, default
``benchmarks/results/latest.json``) and a Markdown table beside it (same name, ``.md``).

Options
-------
--only NAME     run only these rows (repeatable, or comma-separated)
--repeat N      timed fits per row, the median is reported (capped by a row's max_repeat)
--quick         skip the "large" rows (InstEval, the 1M-row design): for CI budgets
--merge         keep the rows of an existing --out that this run did not redo
--blas-threads N  pin BLAS/OpenMP threads in the subprocesses (default: leave as is)
--with-r        time the row's R counterpart (lme4, or glmmTMB for glmmtmb rows) right after
                it in the same run (benchmarks/external.py's protocol), instead of
                reading --lme4's file: same-load ratios
--one-thread    also fit every row with BLAS pinned to one thread (a second column; the
                headline stays the default threads unless --blas-threads is given)
--lme4, --peer FILE  lme4 / mixedlm timings to compare with (default results/*.json)
--list          print the table and exit
--render-only   recompute speedups and the Markdown from --out's JSON (after new lme4 or
                mixedlm timings) without fitting anything
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (`python benchmarks/run.py`): make the `benchmarks` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.child import child_env, run_child, thread_settings
from benchmarks.external import time_row
from benchmarks.report import enrich, load_external, markdown
from benchmarks.table import ROOT, TABLE_PATH, load_table

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "latest.json"
LME4_LOCAL = RESULTS / "lme4_local.json"
PEER = RESULTS / "peer_mixedlm.json"
DEFAULT_REPEAT = 5


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.rstrip("\n")
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3
    except (ValueError, OSError):
        return float("nan")


def machine_meta(argv: list[str]) -> dict:
    dirty = [line[3:] for line in _git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "timestamp": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in argv),
        "git_commit": _git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "git_dirty_src": dirty,
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg()[0],
    }


def run_case(case, repeat: int, table_path: Path, blas_threads: int | None = None) -> dict:
    """Fit one row in a fresh subprocess; the row's record (status "ok" or why not)."""
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "benchmarks.worker", "--case", case.name,
               "--repeat", str(repeat), "--table", str(table_path), "--out", str(out)]
        env = child_env(blas_threads, extra_path=str(ROOT))
        res = run_child(cmd, timeout_s=case.timeout_seconds, cwd=ROOT, env=env)
        if res.returncode == 0 and out.exists():
            record = json.loads(out.read_text())
        else:
            why = (f"stopped after {case.timeout_seconds:g} s" if res.timed_out
                   else f"exit code {res.returncode}")
            tail = res.stderr.strip().splitlines()[-3:]
            record = {"name": case.name, "engine": case.engine, "data": case.data,
                      "formula": case.formula, "status": "timeout" if res.timed_out
                      else "error", "reason": why + (": " + " / ".join(tail) if tail
                                                     else "")}
    record["loadavg_1min"] = load_at_start
    record["child_wall_s"] = res.wall_s
    record["child_maxrss_mb"] = res.maxrss_mb
    if record.get("status") != "ok":
        record.setdefault("run_warnings", []).append(
            f"{record['status']}: {record.get('reason', '')} (wall {res.wall_s:.0f} s, "
            f"peak {res.maxrss_mb:.0f} MB)")
    return record


def _write(doc: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    print(f"[bench] wrote {out} and {out.with_suffix('.md')}")


def render_only(args: argparse.Namespace, table) -> int:
    """Re-enrich the rows of an existing results file with the current lme4/peer files."""
    doc = json.loads(args.out.read_text())
    lme4_local, peer = load_external(args.lme4), load_external(args.peer)
    names = {c.name for c in table.cases}
    doc["models"] = [enrich(r, table.get(r["name"]), lme4_local, peer)
                     if r["name"] in names else r for r in doc["models"]]
    doc["lme4_local_meta"], doc["peer_meta"] = lme4_local.get("meta", {}), \
        peer.get("meta", {})
    _write(doc, args.out)
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Run the mixedmodels benchmark table.")
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--blas-threads", type=int, default=None, metavar="N")
    ap.add_argument("--with-r", action="store_true")
    ap.add_argument("--one-thread", action="store_true")
    ap.add_argument("--lme4", type=Path, default=LME4_LOCAL, help="lme4 timings (JSON)")
    ap.add_argument("--peer", type=Path, default=PEER, help="mixedlm timings (JSON)")
    ap.add_argument("--table", type=Path, default=TABLE_PATH)
    args = ap.parse_args(argv)
    args.only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    table = load_table(args.table)
    cases = table.select(args.only, quick=args.quick)
    if args.list:
        for c in table.cases:
            print(f"{c.name:22s} {c.engine:6s} {c.size:7s} {c.data:14s} {c.formula}")
        return 0
    if args.render_only:
        return render_only(args, table)
    meta = machine_meta(argv)
    meta["blas_threads"] = args.blas_threads if args.blas_threads is not None else \
        f"default ({thread_settings()})"
    lme4_local, peer = load_external(args.lme4), load_external(args.peer)
    records = []
    same_run: dict = {"meta": {"protocol": "same run as mixedmodels, row by row"},
                      "models": {}}
    for case in cases:
        print(f"[bench] {case.name} ...", end=" ", flush=True)
        record = run_case(case, case.repeats(args.repeat), args.table, args.blas_threads)
        if args.one_thread and record.get("status") == "ok":
            one = run_case(case, case.repeats(args.repeat), args.table, 1)
            record["fit_s_1thread"] = one.get("fit_s")
            record["n_evals_1thread"] = one.get("n_evals")
        if args.with_r:
            r_rec = time_row("lme4", case, table, args.repeat, "", args.blas_threads)
            record["r_tool"] = r_rec.get("tool")
            record["r_status"] = r_rec.get("status")
            record["r_reason"] = r_rec.get("reason")
            record["r_cpu_s"] = r_rec.get("cpu_seconds")
            record["r_maxrss_mb"] = r_rec.get("maxrss_mb")
            same_run["models"][case.name] = r_rec
            record = enrich(record, case, same_run, peer)
        else:
            record = enrich(record, case, lme4_local, peer)
        records.append(record)
        if record.get("status") == "ok":
            vs = record.get("speedup_vs_local")
            print(f"{record['fit_s'] * 1e3:.1f} ms, {record['n_evals']} evals, peak "
                  f"{record['child_maxrss_mb']:.0f} MB"
                  + (f", {vs:.2f}x {record.get('r_tool', 'lme4')}" if vs else ""),
                  flush=True)
        else:
            print(record.get("status"), record.get("reason", ""), flush=True)
    meta["loadavg_end"] = os.getloadavg()[0]
    meta["versions"] = next((r["versions"] for r in records if "versions" in r), {})
    if args.merge and args.out.exists():
        redone = {r["name"] for r in records}
        old = json.loads(args.out.read_text())["models"]
        order = [c.name for c in table.cases]
        records = sorted([r for r in old if r["name"] not in redone] + records,
                         key=lambda r: order.index(r["name"]) if r["name"] in order
                         else len(order))
    if args.with_r:
        lme4_local = same_run
    doc = {"meta": meta, "lme4_local_meta": lme4_local.get("meta", {}),
           "peer_meta": peer.get("meta", {}), "models": records}
    _write(doc, args.out)
    failed = [r["name"] for r in records if r.get("status") in ("error", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
