"""glmer on simulated Toeplitz Poisson models near the wall (the data of
benchmarks/toep_wall_sim.py, seeds 0-3, p = 4, 6, 8, toep and homtoep): glmer now (the
route, the wall optimum, or the two stages), the two stages alone and the glmmtmb engine.
Prints seed, p, term, glmer, two stages, engine, glmer - engine, how glmer ended, CPU of
glmer and of the two stages; numbers in benchmarks/results/toepwall_notes.md.
Run: OPENBLAS_NUM_THREADS=1 python benchmarks/toepwall_sim.py"""
import itertools
import time
import warnings

from toep_wall_sim import sim

import mixedmodels as mm
import mixedmodels.fitting.glmm as glmm_module


def cpu(fun):
    t0 = time.process_time()
    out = fun()
    return out, time.process_time() - t0


def _two_stages(form: str, d):
    """glmer with the structured route switched off (its two stages alone)."""
    route = glmm_module.takes_structured_route
    glmm_module.takes_structured_route = lambda *a: False
    try:
        return mm.glmer(form, d, family="poisson")
    finally:
        glmm_module.takes_structured_route = route


def main() -> None:
    warnings.simplefilter("ignore")
    for seed, p, kw in itertools.product(range(4), (4, 6, 8), ("toep", "homtoep")):
        d = sim(100 * seed + p, p)
        form = f"y ~ x + {kw}(0 + factor(time) | subject)"
        g, tg = cpu(lambda form=form, d=d: mm.glmer(form, d, family="poisson"))
        two, t2 = cpu(lambda form=form, d=d: _two_stages(form, d))
        eng = mm.glmmtmb(form, d, family="poisson").objective
        how = ("wall" if "wall" in g.opt.optimizer else
               "route" if g.opt.optimizer.startswith("glmmtmb engine") else "two stages")
        print(seed, p, kw, f"{g.objective:.6f} {two.objective:.6f} {eng:.6f} "
              f"{g.objective - eng:.2e}", how, f"{tg:.3f} {t2:.3f}", flush=True)


if __name__ == "__main__":
    main()
