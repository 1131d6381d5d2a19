"""Every public member has a numpydoc docstring: a summary line, and for callables with
parameters a Parameters section naming each one, and a Returns (or Yields) section where
they return something.

Public members: the names in ``mixedmodels.__all__`` and in ``mm.families.__all__`` /
``mm.datasets.__all__``; for classes, their public methods and properties, inherited ones
included when the package defines them (each checked once, where it is defined).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
from collections.abc import Iterator

import pytest

import mixedmodels as mm

#: Why members of a file may still be incomplete: the file is being rewritten in another
#: branch, and docstring edits there now would only make merges harder.
_CONTESTED = {
    "mixedmodels.design.": "design/design.py is being reworked in h/core (components)",
    "mixedmodels.objective.": "objective/ is being edited in h/glmmfix and h/core",
    "mixedmodels.fitting.glmm.": "fitting/glmm.py is being edited in h/glmmfix",
}
#: Members whose docstrings are not complete yet (module.qualname). The test fails when a
#: listed member becomes complete, so the list only shrinks.
ALLOWED_INCOMPLETE: frozenset[str] = frozenset()

_SECTION = re.compile(r"^(?P<name>[A-Z][A-Za-z ]+)\n-{3,}\s*$", re.MULTILINE)
_PARAM_LINE = re.compile(r"^(\*{0,2}[A-Za-z_][\w]*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::|$)")


def _sections(doc: str) -> dict[str, str]:
    """numpydoc section name -> its body."""
    out = {}
    matches = list(_SECTION.finditer(doc))
    ends = [m.start() for m in matches[1:]] + [len(doc)] if matches else []
    for m, end in zip(matches, ends, strict=True):
        out[m.group("name").strip()] = doc[m.end(): end]
    return out


def _documented_names(body: str) -> set[str]:
    """Parameter names listed in a Parameters section (``a, b : int`` lists a and b)."""
    names: set[str] = set()
    for line in textwrap.dedent(body).splitlines():
        if line and not line[0].isspace():
            m = _PARAM_LINE.match(line)
            if m:
                names.update(n.strip().lstrip("*") for n in m.group(1).split(","))
    return names


def _parameters(func) -> list[str]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [n for n, p in sig.parameters.items() if n not in ("self", "cls")]


def _returns_value(func) -> bool:
    """The function returns (or yields) a value: its annotation says so, or its body has
    a ``return <expr>`` outside nested functions."""
    annotation = inspect.signature(func).return_annotation
    if annotation not in (inspect.Signature.empty, None, "None"):
        return True
    if annotation in (None, "None"):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0]

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):
                continue
            if isinstance(child, ast.Return) and child.value is not None:
                yield child
            if isinstance(child, (ast.Yield, ast.YieldFrom)):
                yield child
            yield from walk(child)

    return any(True for _ in walk(body))


def _is_ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("mixedmodels")


def _overridden(func) -> object | None:
    """The package's base-class method that ``func`` overrides, if any."""
    owner = _owner(func)
    for klass in (owner.__mro__[1:] if owner is not None else ()):
        base = vars(klass).get(func.__name__)
        if base is not None and _is_ours(klass) and inspect.isfunction(base):
            return base
    return None


def _owner(func) -> type | None:
    module = inspect.getmodule(func)
    obj = module
    for part in func.__qualname__.split(".")[:-1]:
        obj = getattr(obj, part, None)
    return obj if inspect.isclass(obj) else None


def _problems(obj, kind: str) -> list[str]:
    if kind == "method" and obj.__doc__ and obj.__doc__.strip():
        base = _overridden(obj)
        if base is not None and not _problems(base, "method"):
            return []     # an override says what it specializes; the base has the sections
    doc = inspect.getdoc(obj) if kind != "property" else (obj.fget.__doc__ or obj.__doc__)
    if not doc or not doc.strip():
        return ["no docstring"]
    doc = inspect.cleandoc(doc)
    problems = []
    if not doc.splitlines()[0].strip():
        problems.append("no summary line")
    sections = _sections(doc)
    if kind in ("function", "method"):
        params = _parameters(obj)
        if params:
            if "Parameters" not in sections:
                problems.append("no Parameters section")
            else:
                missing = [p for p in params if p not in _documented_names(
                    sections["Parameters"])]
                if missing:
                    problems.append(f"Parameters section lacks {', '.join(missing)}")
        if _returns_value(obj) and not {"Returns", "Yields"} & set(sections):
            problems.append("no Returns section")
    if kind == "class" and dataclasses.is_dataclass(obj):
        public_fields = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
        if public_fields and not {"Attributes", "Parameters"} & set(sections):
            problems.append("no Attributes section for the dataclass fields")
    elif kind == "class":
        init = obj.__dict__.get("__init__")
        params = _parameters(init) if init is not None and _is_ours(init) else []
        if params and "Parameters" not in sections:
            problems.append("no Parameters section for the constructor")
    return problems


def _public_objects() -> Iterator[tuple[str, object, str]]:
    """(qualified name, object, kind) of every public member, each once."""
    seen: set[int] = set()
    roots = [(mm, n) for n in mm.__all__ if not n.startswith("__")]
    roots += [(mm.families, n) for n in mm.families.__all__]
    roots += [(mm.datasets, n) for n in mm.datasets.__all__]
    for module, name in roots:
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if inspect.isclass(obj):
            yield f"{obj.__module__}.{obj.__qualname__}", obj, "class"
            yield from _members(obj, seen)
        elif callable(obj):
            yield f"{obj.__module__}.{obj.__qualname__}", obj, "function"
        # constants (FAMILIES, LINKS) are documented by the comment above them


def _members(cls, seen: set[int]) -> Iterator[tuple[str, object, str]]:
    for klass in cls.__mro__:
        if not _is_ours(klass):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or id(member) in seen:
                continue
            if isinstance(member, property | _cached_property_type()):
                seen.add(id(member))
                fget = getattr(member, "fget", None) or member.func
                yield f"{fget.__module__}.{fget.__qualname__}", _as_property(member), \
                    "property"
            elif isinstance(member, staticmethod | classmethod):
                seen.add(id(member))
                func = member.__func__
                yield f"{func.__module__}.{func.__qualname__}", func, "method"
            elif inspect.isfunction(member):
                seen.add(id(member))
                yield f"{member.__module__}.{member.__qualname__}", member, "method"


def _cached_property_type():
    from functools import cached_property

    return cached_property


def _as_property(member):
    """A property-like object with ``fget`` (cached_property keeps its function in .func)."""
    return member if isinstance(member, property) else property(member.func)


MEMBERS = sorted(_public_objects(), key=lambda t: t[0])


def test_walk_finds_the_api():
    names = {name for name, _, _ in MEMBERS}
    assert "mixedmodels.fitting.lmm.lmer" in names
    assert "mixedmodels.results.fit_stats.FitStatsMixin.fixef" in names       # inherited
    assert "mixedmodels.families.family.Binomial" in names
    assert "mixedmodels.datasets.load" in names
    assert len(MEMBERS) > 150


@pytest.mark.parametrize(("name", "obj", "kind"), MEMBERS, ids=[m[0] for m in MEMBERS])
def test_numpydoc(name, obj, kind):
    problems = _problems(obj, kind)
    if name in ALLOWED_INCOMPLETE:
        assert problems, f"{name} is documented now: remove it from ALLOWED_INCOMPLETE"
        reason = next(r for prefix, r in _CONTESTED.items() if name.startswith(prefix))
        pytest.skip(f"allow-listed ({reason}): {'; '.join(problems)}")
    assert not problems, f"{name}: {'; '.join(problems)}"


def test_checker_catches_gaps():
    def bare(x, y=1):
        return x

    def good(x, y=1):
        """Add.

        Parameters
        ----------
        x, y : float
            Terms.

        Returns
        -------
        float
        """
        return x + y

    assert set(_problems(bare, "function")) == {"no docstring"}
    bare.__doc__ = "Summary.\n\nParameters\n----------\nx : int\n"
    assert _problems(bare, "function") == ["Parameters section lacks y",
                                           "no Returns section"]
    assert _problems(good, "function") == []


def test_allow_list_names_existing_members():
    names = {name for name, _, _ in MEMBERS}
    assert names >= ALLOWED_INCOMPLETE, sorted(ALLOWED_INCOMPLETE - names)
    assert all(any(n.startswith(p) for p in _CONTESTED) for n in ALLOWED_INCOMPLETE)
