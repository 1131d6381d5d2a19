"""Bad combinations met while building the sweepx grid (structures x families x extras):
each must give a clear error, never one from deep inside numpy/pandas/scipy.

    python tools/r/sweep/sweepx_bad_inputs.py

Uses bad_inputs.py's runner (OK / DEEP / NO ERROR per case) on the sweepx data set.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import mixedmodels as mm

_here = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bad_inputs", _here / "bad_inputs.py")
bad_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bad_inputs)
_spec = importlib.util.spec_from_file_location("sweepx", _here / "sweepx.py")
sweepx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweepx)

D = sweepx.load(sweepx.FIXTURE, "sx")


def _with(**cols):
    return D.assign(**cols)


CASES = {
    "ar1 one time twice in a group": lambda: mm.glmmtmb(
        "y_pos ~ x + ar1(0 + ftt | g)", D.assign(ftt=D["ftt"].where(D.index != 1, D["ftt"][0])),
        family="Gamma", link="log"),
    "ou without pos()": lambda: mm.glmmtmb("y_gauss ~ x + ou(0 + tirr | g)", D),
    "exp on a factor": lambda: mm.glmmtmb("y_gauss ~ x + exp(0 + f | g)", D),
    "rr d above the terms": lambda: mm.glmmtmb("y_pois ~ x + rr(0 + f | g, d = 4)", D,
                                               family="poisson"),
    "rr d = 0": lambda: mm.glmmtmb("y_pois ~ x + rr(0 + f | g, d = 0)", D, family="poisson"),
    "toep one level": lambda: mm.glmmtmb("y_gauss ~ x + toep(0 + f | g)",
                                         _with(f=D["f"].cat.set_categories(["a"]).fillna("a"))),
    "random effects in dispformula": lambda: mm.glmmtmb("y_nb ~ x + (1 | g)", D,
                                                        family="nbinom2",
                                                        dispformula="~ x + (1 | g)"),
    "zi with Gamma (no zeros)": lambda: mm.glmmtmb("y_pos ~ x + (1 | g)", D, family="Gamma",
                                                   ziformula="~1"),
    "weights with NA": lambda: mm.glmmtmb("y_pois ~ x + (1 | g)",
                                          _with(w=D["w"].where(D.index > 3)), family="poisson",
                                          weights="w"),
    "negative weights": lambda: mm.glmmtmb("y_pois ~ x + (1 | g)", _with(w=-D["w"]),
                                           family="poisson", weights="w"),
    "offset column missing": lambda: mm.glmmtmb("y_pois ~ x + (1 | g)", D, family="poisson",
                                                offset="nosuch"),
    "offset with NA": lambda: mm.glmmtmb("y_pois ~ x + offset(o) + (1 | g)",
                                         _with(o=D["offs"].where(D.index > 3)),
                                         family="poisson"),
    "Q() of a missing column": lambda: mm.glmmtmb('y_pois ~ Q("x dot") + (1 | g)', D,
                                                  family="poisson"),
    "truncated_poisson with zeros": lambda: mm.glmmtmb("y_pois ~ x + (1 | g)", D,
                                                       family="truncated_poisson"),
    "beta response at 1": lambda: mm.glmmtmb("y_beta ~ x + (1 | g)",
                                             _with(y_beta=D["y_beta"].where(D.index > 0, 1.0)),
                                             family="beta"),
    "tweedie negative response": lambda: mm.glmmtmb("y_gauss ~ x + (1 | g)", D,
                                                    family="tweedie"),
    "binomial prop without weights > 1": lambda: mm.glmmtmb("y_pos ~ x + (1 | g)", D,
                                                            family="binomial"),
    "cbind failures negative": lambda: mm.glmmtmb("cbind(succ, succ - trials) ~ x + (1 | g)",
                                                  D, family="binomial"),
    "xbig all NA": lambda: mm.glmmtmb("y_pois ~ xn + (1 | g)", _with(xn=np.nan),
                                      family="poisson"),
    "nested term with NA in inner factor": lambda: mm.glmmtmb(
        "y_pois ~ x + (1 | g/b)", _with(b=D["b"].where(D.index % 2 == 0)), family="poisson"),
}


if __name__ == "__main__":
    bad_inputs.run(CASES)
