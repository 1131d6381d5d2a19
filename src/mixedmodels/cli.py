"""Command line: ``mixedmodels fit FORMULA --data NAME_OR_CSV [--ml]`` prints the summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _load(data: str):
    import pandas as pd

    from . import datasets

    path = Path(data)
    if path.suffix.lower() in {".csv", ".gz"} or path.exists():
        if not path.exists():
            raise SystemExit(f"error: data file {data!r} not found")
        return pd.read_csv(path)
    try:
        return datasets.load(data)
    except KeyError as exc:
        raise SystemExit(f"error: {exc.args[0]}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mixedmodels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a linear mixed model and print its summary")
    fit.add_argument("formula", help='e.g. "Reaction ~ Days + (Days | Subject)"')
    fit.add_argument("--data", required=True,
                     help="bundled data set name (see --list) or a CSV file")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    sub.add_parser("datasets", help="list the bundled data sets")
    args = parser.parse_args(argv)

    from . import datasets
    from ._errors import MixedModelsError
    from .fitting import lmer

    if args.command == "datasets":
        print("\n".join(datasets.names()))
        return 0
    frame = _load(args.data)
    try:
        model = lmer(args.formula, frame, REML=not args.ml)
    except MixedModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(model.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
