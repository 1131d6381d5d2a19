"""Timings of the G-side covariance structures against glmmTMB in the same run:
``python benchmarks/structures_bench.py [--with-r] [--repeat N] [--only a,b]``.

Models: the glmmTMB fits of tests/fixtures/structures (one per structure, made by
tools/r/structures_fixtures.R), fitted through each front door the fixture is a reference
for (glmmtmb always; lmer or glmer where glmmTMB's model is theirs). Our time is the median
of ``--repeat`` fits after one untimed warm-up (formula to result), by CPU time (``--clock
cpu``, the default: user + system time, which a shared machine distorts least) or wall
time. With ``--with-r``
glmmTMB is timed on this machine in the same run by the fixture script's timing mode
(median of the same number of fits after a warm-up; glmmTMB 1.1.5, and the newer glmmTMB
of ``--newer-lib`` for the structures 1.1.5 lacks), and the ratio is reported against our
glmmtmb fit (same model, same objective).

Writes benchmarks/results/structures.json and a Markdown table next to it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import structures_fixtures as sf  # noqa: E402
from benchmarks.comparison import comparison_parser, run_meta, selected, write_results  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "structures.json"
R_SCRIPT = ROOT / "tools" / "r" / "structures_fixtures.R"
#: Where tools/r/GLMMTMB_CONVENTIONS.md builds glmmTMB 1.1.14 (the structures 1.1.5 lacks).
NEWER_LIB = "/work/rlib_glmmtmb_new"


#: Clocks of ``--clock``: wall time, or the process's CPU time (user + system), which the
#: other jobs of a shared machine distort least.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_ours(fid: str, door: str, repeat: int, clock: str = "cpu") -> dict:
    fx = sf.load(fid)
    data = sf.load_data(fx)
    matrices = sf.known_matrices()
    m = sf.fit_fixture(fx, door, data, matrices)            # warm-up
    now = CLOCKS[clock]
    walls = []
    for _ in range(repeat):
        t0 = now()
        m = sf.fit_fixture(fx, door, data, matrices)
        walls.append(now() - t0)
    return {"id": fid, "door": door, "family": fx["family"], "nobs": m.nobs,
            "seconds": statistics.median(walls), "objective": float(m.objective),
            "objective_glmmtmb": fx["objective"], "set": fx["set"]}


def time_glmmtmb(ids_by_set: dict, repeat: int, newer_lib: str, clock: str = "cpu") -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fit_set, ids in ids_by_set.items():
            if not ids:
                continue
            path = Path(tmp) / f"{fit_set}.json"
            cmd = ["Rscript", str(R_SCRIPT), f"--set={fit_set}", f"--time={path}",
                   f"--repeat={repeat}", f"--only={','.join(ids)}",
                   f"--clock={'cpu' if clock == 'cpu' else 'elapsed'}"]
            if fit_set == "newer":
                if not Path(newer_lib).is_dir():
                    print(f"no glmmTMB >= 1.1.10 at {newer_lib}: {ids} not timed in R")
                    continue
                cmd.append(f"--lib={newer_lib}")
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            out.update({r["id"]: r for r in json.loads(path.read_text())})
    return out


def _markdown(rows, meta) -> str:
    lines = [f"# G-side covariance structures: mixedmodels vs glmmTMB ({meta['date']})", "",
             f"Machine: {meta['machine']}; load average at start {meta['load']}; "
             f"{meta['repeat']} timed fits after a warm-up; glmmTMB timed in the same run: "
             f"{meta['with_r']}; clock: {meta.get('clock', 'wall')} time "
             "(cpu: user + system time of each process, which the other jobs of a shared "
             "machine distort least). The ratio is glmmTMB's time over our glmmtmb "
             "fit's.", "",
             "| model | door | family | n | ours (s) | glmmTMB (s) | ratio | "
             "objective - glmmTMB's |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tmb = r.get("glmmtmb_seconds")
        ratio = f"{tmb / r['seconds']:.1f}x" if tmb and r["door"] == "glmmtmb" else ""
        lines.append(
            f"| {r['id']} | {r['door']} | {r['family']} | {r['nobs']} | {r['seconds']:.3f} | "
            f"{'' if tmb is None else f'{tmb:.3f}'} | {ratio} | "
            f"{r['objective'] - r['objective_glmmtmb']:+.1e} |")
    ratios = [r["glmmtmb_seconds"] / r["seconds"] for r in rows
              if r.get("glmmtmb_seconds") and r["door"] == "glmmtmb"]
    if ratios:
        gm = statistics.geometric_mean(ratios)
        lines += ["", f"glmmtmb against glmmTMB: geometric mean speed-up {gm:.1f}x; "
                      f"smallest {min(ratios):.1f}x; {sum(x >= 5 for x in ratios)} of "
                      f"{len(ratios)} at least 5x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = comparison_parser(__doc__, DEFAULT_OUT, repeat=3,
                           only_help="comma-separated fixture ids")
    ap.add_argument("--newer-lib", default=NEWER_LIB)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="time fits by CPU time (default; ours and R's process) or wall time")
    args = ap.parse_args(argv)
    ids = selected(sf.ids(), args.only)
    meta = run_meta(args, clock=args.clock)
    rows = []
    for fid in ids:
        fx = sf.load(fid)
        doors = [fx["doors"]] if isinstance(fx["doors"], str) else fx["doors"]
        rows += [time_ours(fid, door, args.repeat, args.clock) for door in doors]
    if args.with_r:
        by_set = {s: [i for i in ids if sf.load(i)["set"] == s] for s in ("main", "newer")}
        tmb = time_glmmtmb(by_set, args.repeat, args.newer_lib, args.clock)
        for r in rows:
            t = tmb.get(r["id"], {})
            r["glmmtmb_seconds"] = t.get("seconds")
            r["glmmtmb_objective_here"] = t.get("objective")
    for r in rows:
        print(f"{r['id']:18s} {r['door']:8s} {r['seconds']:.3f}s  glmmTMB "
              f"{r.get('glmmtmb_seconds') or float('nan'):.3f}s", flush=True)
    write_results(args.out, meta, rows, _markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
