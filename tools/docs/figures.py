"""Render the figures the documentation shows, from the documentation's own code.

Runs the ```python blocks of each page (in order, one namespace, as tests/test_docs_examples.py
does) and, after each block, saves every variable whose name starts with ``fig`` and holds a
new matplotlib Figure to ``docs/img/<page>-<variable>.png``. The pages include those files
(``![...](img/<page>-<variable>.png)``), so the pictures are made by exactly the code the
reader sees, and the docs tests (which run the same code) never write files.

    python tools/docs/figures.py docs/prediction.md docs/diagnostics.md docs/plots.md
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
#: Resolution of the saved figures (small files; the site scales them).
DPI = 80


def render(page: Path) -> list[Path]:
    namespace: dict = {"__name__": "__docs__"}
    seen: dict[str, int] = {}
    written = []
    out_dir = ROOT / "docs" / "img"
    out_dir.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in BLOCK.findall(page.read_text(encoding="utf-8")):
            exec(compile(code, str(page), "exec"), namespace)
            for name, value in list(namespace.items()):
                if name.startswith("fig") and isinstance(value, Figure) \
                        and seen.get(name) != id(value):
                    seen[name] = id(value)
                    path = out_dir / f"{page.stem}-{name}.png"
                    value.savefig(path, dpi=DPI)
                    written.append(path)
    return written


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for p in render(ROOT / arg):
            print(p.relative_to(ROOT))
