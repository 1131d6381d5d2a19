"""What the same-run comparison scripts share (glmmtmb_bench, rside_bench, structures_bench):
their command line (``--repeat``, ``--with-r``, ``--only``, ``--out``), the run's metadata
(date, machine, load average, versions) and writing the JSON and its Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import mixedmodels as mm

__all__ = ["comparison_parser", "load_average", "run_meta", "selected", "write_results"]


def comparison_parser(doc: str, default_out: Path, repeat: int = 5,
                      only_help: str | None = None) -> argparse.ArgumentParser:
    """The options every comparison script takes; a script adds its own after these."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--with-r", action="store_true")
    ap.add_argument("--only", default="", help=only_help)
    ap.add_argument("--out", default=str(default_out))
    return ap


def selected(ids: Iterable[str], only: str) -> list[str]:
    """``ids`` restricted to the comma-separated ``--only`` list (all when it is empty)."""
    wanted = set(filter(None, only.split(",")))
    return [i for i in ids if not wanted or i in wanted]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as the tables print them."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_meta(args: argparse.Namespace, **extra) -> dict:
    """The metadata a results table records for its run (``extra`` after the common keys)."""
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
            "load": load_average(), "repeat": args.repeat, "with_r": args.with_r, **extra,
            "python": platform.python_version(), "mixedmodels": mm.__version__}


def write_results(out: str | Path, meta: dict, rows: list[dict],
                  markdown: Callable[[list[dict], dict], str]) -> None:
    """``out`` (JSON: meta and rows) and the Markdown table next to it (``.md``)."""
    out = Path(out)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(markdown(rows, meta))
