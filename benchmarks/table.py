"""The declarative benchmark table (``models.toml``) as frozen dataclasses.

A row is *what* to fit (data set, formula, engine, options) and *how* to measure it (size
class, repeat cap, warning thresholds); nothing about the measurement code lives in the
table, and nothing about a particular model lives in the code.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = [
    "ENGINES_KNOWN",
    "SIZES",
    "BenchmarkCase",
    "BenchmarkTable",
    "load_table",
    "reference_entry",
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TABLE_PATH = HERE / "models.toml"
REFERENCE_PATH = ROOT / "tests" / "reference" / "visible.json"

#: Engines a row may name; the runner wires those in ``engines.ENGINES``.
ENGINES_KNOWN = ("lmer", "glmer", "glmer_nb", "glmmtmb")
#: Size classes, cheapest first; ``--quick`` runs all but "large".
SIZES = ("small", "medium", "large")
#: A row's subprocess is stopped after this many seconds unless the row says otherwise.
DEFAULT_TIMEOUT_S = 1800.0

_ROW_KEYS = {
    "name", "engine", "data", "formula", "r_formula", "family", "options", "reference",
    "size", "max_repeat", "warmup", "traced_memory", "warn_seconds", "warn_memory_mb",
    "timeout_seconds", "r_family",
}


@dataclass(frozen=True)
class BenchmarkCase:
    """One row of the table (see the comment at the top of ``models.toml``)."""

    name: str
    engine: str
    data: str
    formula: str
    r_formula: str | None = None
    family: str | None = None
    options: dict = field(default_factory=dict)
    reference: str | None = None
    size: str = "small"
    max_repeat: int | None = None
    warmup: bool = True
    traced_memory: bool = True
    warn_seconds: float | None = None
    warn_memory_mb: float | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_S
    #: the family as an R call where ``family`` + ``options.link`` do not spell it
    r_family: str | None = None

    @property
    def lme4_formula(self) -> str:
        """The formula in lme4's syntax."""
        return self.r_formula or self.formula

    @property
    def r_family_call(self) -> str | None:
        """The family as an R expression (``Gamma(link = "log")``)."""
        if self.r_family:
            return self.r_family
        if not self.family:
            return None
        link = self.options.get("link")
        return f'{self.family}(link = "{link}")' if link else f"{self.family}()"

    @property
    def reference_tool(self) -> str:
        """The R package the row is timed against: glmmTMB for glmmtmb rows, else lme4."""
        return "glmmTMB" if self.engine == "glmmtmb" else "lme4"

    def repeats(self, requested: int) -> int:
        """``requested`` capped by the row's ``max_repeat``."""
        return max(1, min(requested, self.max_repeat or requested))


@dataclass(frozen=True)
class BenchmarkTable:
    """All rows plus the simulated data sets they may refer to."""

    cases: tuple[BenchmarkCase, ...]
    simulated: dict[str, dict]

    def get(self, name: str) -> BenchmarkCase:
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(f"no benchmark named {name!r}; known: "
                       f"{', '.join(c.name for c in self.cases)}")

    def select(self, only: list[str] | None = None, quick: bool = False
               ) -> list[BenchmarkCase]:
        """Rows named in ``only`` (all when empty), without "large" ones when ``quick``."""
        cases = [self.get(n) for n in only] if only else list(self.cases)
        return [c for c in cases if not (quick and c.size == "large")]


def _case(row: dict, simulated: dict, where: str) -> BenchmarkCase:
    unknown = set(row) - _ROW_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: "
                         f"{sorted(_ROW_KEYS)}")
    missing = [k for k in ("name", "engine", "data", "formula") if k not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    case = BenchmarkCase(**row)
    if case.engine not in ENGINES_KNOWN:
        raise ValueError(f"{where} ({case.name}): engine {case.engine!r} is not one of "
                         f"{ENGINES_KNOWN}")
    if case.engine in ("glmer", "glmmtmb") and not case.family:
        raise ValueError(f"{where} ({case.name}): a glmer row needs a `family`")
    if case.engine in ("lmer", "glmer_nb") and case.family:
        raise ValueError(f"{where} ({case.name}): an {case.engine} row takes no `family` "
                         "(use engine = \"glmer\")")
    if case.size not in SIZES:
        raise ValueError(f"{where} ({case.name}): size {case.size!r} is not one of {SIZES}")
    if case.max_repeat is not None and case.max_repeat < 1:
        raise ValueError(f"{where} ({case.name}): max_repeat must be at least 1")
    if case.reference is not None and case.reference not in _reference():
        raise ValueError(f"{where} ({case.name}): reference {case.reference!r} is not an id "
                         f"in {REFERENCE_PATH.name}")
    return case


def load_table(path: Path | str = TABLE_PATH) -> BenchmarkTable:
    """Read and validate a benchmark table (TOML)."""
    with Path(path).open("rb") as fh:
        raw = tomllib.load(fh)
    unknown = set(raw) - {"model", "datasets"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level table(s) {sorted(unknown)}")
    simulated = dict(raw.get("datasets", {}))
    cases = tuple(_case(row, simulated, f"{Path(path).name} [[model]] #{i + 1}")
                  for i, row in enumerate(raw.get("model", [])))
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate model name(s) {dupes}")
    return BenchmarkTable(cases, simulated)


@cache
def _reference() -> dict:
    with REFERENCE_PATH.open() as fh:
        return json.load(fh)


def reference_entry(case: BenchmarkCase) -> dict | None:
    """The visible.json entry the row refers to (objective, lme4's ``seconds``), if any."""
    return _reference().get(case.reference) if case.reference else None
