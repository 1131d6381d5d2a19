"""The ``mixedmodels`` command: fit a mixed model to a data file and print lme4's summary.

::

    mixedmodels fit "Reaction ~ Days + (Days | Subject)" --data sleepstudy
    mixedmodels fit "cbind(incidence, size - incidence) ~ period + (1 | herd)" \\
        --data cbpp --family binomial --json
    mixedmodels fit "y ~ x + (1 | g)" --data my_data.parquet --ml
    mixedmodels datasets
    python -m mixedmodels --version

Input errors (a bad formula, a missing column or file, an unreadable file, an unknown data
set, family or option) are one line on stderr and exit status 2; warnings raised by the fit
are one line each on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import NoReturn

from .data import load_data, parse_sep
from .doors import FRONT_DOORS, OPTIONS, check_response, choose_door, fit_keywords
from .errors import USAGE_ERROR, CLIError, one_line
from .report import fit_report

__all__ = ["build_parser", "main"]

PROG = "mixedmodels"
#: Exit status of an unexpected failure (a bug: rerun with --traceback and report it).
INTERNAL_ERROR = 1
#: Warning classes shown on stderr (library deprecation notices are not the user's business).
_SHOWN_WARNINGS = (UserWarning, RuntimeWarning)

_FIT_EPILOG = """\
examples:
  mixedmodels fit "Reaction ~ Days + (Days | Subject)" --data sleepstudy --ml
  mixedmodels fit "cbind(incidence, size - incidence) ~ period + (1 | herd)" \\
      --data cbpp --family binomial --nagq 5
  mixedmodels fit "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)" --data grouseticks \\
      --family negative_binomial --json
  mixedmodels fit "y ~ x + (1 | g)" --data measurements.tsv --weights n

Without --model the model follows the options: a negative binomial --family fits
glmer_nb, another --family (or --link, --nagq) glmer, none lmer. Columns of a text file
are read as pandas reads them: integer codes are numbers, so write C(period) for a factor
stored as integers.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mixedmodels`` command (its subcommands from the tables
    of :mod:`mixedmodels.cli.doors`)."""
    from .. import __version__

    parser = _Parser(prog=PROG, description="Linear and generalized linear mixed models "
                     "with lme4-style formulas.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{fit,datasets}", required=True,
                                parser_class=_Parser)
    fit = sub.add_parser("fit", help="fit a mixed model and print its summary",
                         description="Fit a mixed model and print lme4's summary "
                         "(or, with --json, the fit as JSON).",
                         epilog=_FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("formula", help='model formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    data = fit.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="NAME_OR_FILE",
                      help="a bundled data set ('mixedmodels datasets' lists them) or a "
                      ".csv, .tsv or .parquet file (.csv.gz etc. too)")
    data.add_argument("--sep", metavar="SEP",
                      help="field separator of a text file: a character or tab, semicolon, "
                      "whitespace (default: from the extension, sniffed otherwise)")
    data.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")
    model = fit.add_argument_group("model")
    model.add_argument("--model", choices=list(FRONT_DOORS),
                       help="; ".join(f"{d.name}: {d.help}" for d in FRONT_DOORS.values())
                       + " (default: from the options, see below)")
    for option in OPTIONS.values():
        model.add_argument(option.flag, **option.argparse_kwargs())
    out = fit.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print the fit as JSON (estimates, standard errors, variance "
                     "components, fit statistics, messages) instead of the summary")
    out.add_argument("--traceback", action="store_true",
                     help="show the Python traceback of an unexpected error")
    fit.set_defaults(run=_run_fit)
    listing = sub.add_parser("datasets", help="list the bundled data sets",
                             description="List the bundled data sets, one name a line.")
    listing.set_defaults(run=_run_datasets)
    return parser


def _run_datasets(args: argparse.Namespace) -> int:
    from .. import datasets

    print("\n".join(datasets.names()))
    return 0


def _run_fit(args: argparse.Namespace) -> int:
    given = {dest: getattr(args, dest) for dest in OPTIONS if getattr(args, dest) is not None}
    door = choose_door(args.model, given)
    keywords = fit_keywords(door, given)
    check_response(door, args.formula)
    sep = parse_sep(args.sep) if args.sep is not None else None
    frame = load_data(args.data, sep, args.encoding)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = door.fitter()(args.formula, frame, **keywords)
        finally:
            _show_warnings(caught)
    if args.json:
        report = fit_report(model, formula=args.formula, front_door=door.name, data=args.data)
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(model.summary())
    return 0


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        text = one_line(str(w.message))
        if issubclass(w.category, _SHOWN_WARNINGS) and text not in seen:
            seen.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name.

    Returns
    -------
    int
        0 on success, 2 for bad input (a one-line message on stderr), 1 for an unexpected
        error (its traceback with ``--traceback``).
    """
    from .._errors import MixedModelsError, plain_message

    args = None
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except CLIError as exc:
        return _fail(str(exc), USAGE_ERROR)
    except BrokenPipeError:          # output piped into `head`: stop quietly
        _silence_stdout()
        return INTERNAL_ERROR
    except MixedModelsError as exc:
        return _fail(plain_message(exc), USAGE_ERROR)
    except Exception as exc:
        if getattr(args, "traceback", False):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (rerun with --traceback and "
                     "report it)", INTERNAL_ERROR)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # stdout without a file descriptor (captured in tests)
        pass


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return status
