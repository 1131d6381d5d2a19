"""Helpers to read the bundled lme4/glmmTMB reference values (tests/reference/visible.json)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "reference" / "visible.json"


@cache
def reference() -> dict:
    with REFERENCE.open() as fh:
        return json.load(fh)


def models(engine: str) -> list[str]:
    return [k for k, v in reference().items() if v["engine"] == engine and not v.get("skip")]


def parse_python_field(text: str) -> tuple[str, dict]:
    """Split visible.json's ``python`` field into (formula, options)."""
    parts = [p.strip() for p in text.split(";")]
    opts = {}
    for p in parts[1:]:
        key, _, val = p.partition("=")
        opts[key.strip()] = val.strip()
    return parts[0], opts


def r_name(name: str) -> str:
    """formulaic coefficient name -> R's (``Sex[T.Female]`` -> ``SexFemale``)."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"C\((\w+)\)\[T\.([^\]]+)\]", r"\1\2", name)
    name = re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", name)
    name = re.sub(r"(\w+)\[([^\]]+)\]", r"\1\2", name)
    name = name.replace(" ** ", "^").replace("**", "^")
    return name


def as_array(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))
