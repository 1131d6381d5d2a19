"""Time the peer library ``mixedlm`` on one benchmark job (run with the peer's own Python).

``/tmp/peer-venv/bin/python benchmarks/peer_mixedlm.py JOB.json OUT.json`` -- the job file is
the one ``external.py`` writes for lme4. mixedlm is never a dependency of mixedmodels: it
lives in its own virtual environment and this script imports nothing from the project.
Protocol as for the other tools: data read and factors built untimed, one untimed warm-up
fit, then the median of ``repeat_n`` timed fits, formula string -> result.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import warnings


def main(job_path: str, out_path: str) -> int:
    import mixedlm
    import pandas as pd

    with open(job_path) as fh:
        job = json.load(fh)
    if job["engine"] != "lmer":
        raise SystemExit(f"engine {job['engine']!r} is not wired for mixedlm (only lmer)")
    levels = job["factor_levels"]
    data = pd.read_csv(job["csv"], dtype={c: str for c in levels})
    for col, lev in levels.items():
        data[col] = pd.Categorical(data[col], categories=lev) if lev else \
            pd.Categorical(data[col])
    reml = bool(job["REML"])

    def fit():
        return mixedlm.lmer(job["python_formula"], data, REML=reml)

    cold = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if job.get("warmup", True):
            gc.collect()
            t0 = time.perf_counter()
            fit()
            cold = time.perf_counter() - t0
        times = []
        for _ in range(job["repeat_n"]):
            gc.collect()
            t0 = time.perf_counter()
            m = fit()
            times.append(time.perf_counter() - t0)
    # mixedlm 1.3's ``deviance`` is a property (a float), ``REMLcrit`` a method
    objective = m.REMLcrit() if reml else m.deviance
    objective = objective() if callable(objective) else objective
    out = {
        "name": job["name"],
        "seconds": statistics.median(times),
        "seconds_all": times,
        "seconds_cold": cold if cold is not None else times[0],
        "repeats": job["repeat_n"],
        "objective": float(objective),
        "n_evals": int(m.function_evals),
        "optimizer": str(m.optimizer),
        "versions": {"mixedlm": getattr(mixedlm, "__version__", "unknown"),
                     "python": sys.version.split()[0]},
    }
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: peer_mixedlm.py JOB.json OUT.json")
    sys.exit(main(sys.argv[1], sys.argv[2]))
