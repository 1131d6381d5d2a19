"""Counting one stage's instructions under callgrind, shared by the ``*_icount`` scripts.

Run a script under ``OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no``:
instrumentation starts switched off, :func:`count` switches it on (``callgrind_control -i on``
for this process) around the repetitions only, so the output file's ``totals:`` divided by
the number of repetitions is the cost of one. Warm-up runs come first because CPython
specializes a function's bytecode after a few calls: the first runs of a process are not
what a warm run costs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

__all__ = ["count", "toggle"]


def toggle(state: str) -> None:
    """Switch callgrind's instrumentation of this process ``"on"`` or ``"off"``.

    Outside valgrind ``callgrind_control`` finds no such process and nothing happens.
    """
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=False,
                   capture_output=True)


def count(run: Callable[[], object], warm: int, reps: int) -> None:
    """``run()`` ``warm`` times uninstrumented, then ``reps`` times with instrumentation on."""
    for _ in range(warm):
        run()
    toggle("on")
    for _ in range(reps):
        run()
    toggle("off")
