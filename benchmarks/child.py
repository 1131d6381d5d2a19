"""Run a command in a fresh subprocess and read its own peak memory back.

``os.wait4`` returns the resource usage of exactly the child waited for, so each model's
peak resident memory (``ru_maxrss``) is its own, never the maximum over earlier children
(which ``RUSAGE_CHILDREN`` would give).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["THREAD_VARIABLES", "ChildResult", "child_env", "run_child", "thread_settings"]

MB = 1024.0 ** 2
#: Environment variables that set the thread count of BLAS / OpenMP libraries (and of
#: rayon, the thread pool of Rust cores such as the peer mixedlm's).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "RAYON_NUM_THREADS")


def child_env(blas_threads: int | None, extra_path: str | None = None) -> dict:
    """This process's environment, BLAS threads pinned when ``blas_threads`` is given.

    On a machine shared with other jobs, OpenBLAS's threads spin while waiting for a core,
    which can double the time of a small fit; pinning to one thread shows the cost on a
    quiet machine, leaving it free shows what a user gets by default.
    """
    env = dict(os.environ)
    if blas_threads is not None:
        for var in THREAD_VARIABLES:
            env[var] = str(blas_threads)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path,
                                                          env.get("PYTHONPATH")]))
    return env


def thread_settings() -> str:
    """The thread variables in force, for the record."""
    return ", ".join(f"{var}={os.environ.get(var, 'unset')}" for var in THREAD_VARIABLES)


@dataclass(frozen=True)
class ChildResult:
    """Exit status, wall time, peak RSS (MB) and captured output of one subprocess."""

    returncode: int
    wall_s: float
    maxrss_mb: float
    timed_out: bool
    stdout: str
    stderr: str


def run_child(cmd: list[str], *, timeout_s: float, cwd: Path | None = None,
              env: dict | None = None) -> ChildResult:
    """Run ``cmd``; kill its process group after ``timeout_s`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, _kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        scale = 1.0 if sys.platform == "darwin" else 1024.0
        return ChildResult(proc.returncode, wall, usage.ru_maxrss * scale / MB,
                           timed_out.is_set(), out.read().decode(errors="replace"),
                           err.read().decode(errors="replace"))
