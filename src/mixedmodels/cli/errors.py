"""The command line's own error: a message printed as one line, exit status 2."""

from __future__ import annotations

__all__ = ["USAGE_ERROR", "CLIError", "one_line"]

#: Exit status of every input error (argparse's convention for usage errors).
USAGE_ERROR = 2


class CLIError(Exception):
    """Bad command-line input (a file, a data set name, an option): shown without a traceback."""


def one_line(message: str) -> str:
    """The message with its line breaks and runs of blanks collapsed to single spaces."""
    return " ".join(message.split())
