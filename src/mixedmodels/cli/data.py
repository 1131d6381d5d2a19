"""``--data``: a bundled data set by name, or a CSV / TSV / parquet file.

The file type comes from the extension (``.csv``, ``.tsv``, ``.tab``, ``.parquet``, ``.pq``,
each text type also compressed: ``.csv.gz``, ``.tsv.bz2``, ...); any other text file has
its separator sniffed. ``--sep`` overrides the separator. Every failure to read is a
:class:`~mixedmodels.cli.errors.CLIError` that says what the file looks like and what to
pass instead -- never pandas' or the codec's traceback.
"""

from __future__ import annotations

import bz2
import difflib
import gzip
import lzma
from pathlib import Path

import pandas as pd

from .errors import CLIError

__all__ = ["COMPRESSIONS", "PARQUET_SUFFIXES", "TEXT_SEPARATORS", "load_data", "parse_sep"]

#: Separator of each text extension (None: sniffed from the file).
TEXT_SEPARATORS: dict[str, str | None] = {".csv": ",", ".tsv": "\t", ".tab": "\t",
                                          ".txt": None, ".dat": None}
PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
#: Compression suffixes pandas decompresses by itself.
COMPRESSIONS = frozenset({".gz", ".bz2", ".xz", ".zip", ".zst"})

#: Text openers of the compressions a sniffed file may have (zip and zstd need a known type).
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
#: Leading bytes of file types that are not text, for the error message.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "a parquet file: give it a .parquet extension"),
    (b"\x1f\x8b", "gzip-compressed: give it a .csv.gz (or .tsv.gz) extension"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?): export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook: export it as CSV"),
)
#: Separator names accepted by ``--sep`` besides the character itself.
_SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ",
              "whitespace": r"\s+", "pipe": "|"}
#: Characters that, inside the only column name of a parsed file, betray a wrong separator.
_LIKELY_SEPARATORS = ("\t", ";", ",", "|")


def parse_sep(text: str) -> str:
    """``--sep`` value: a character, or a name (``tab``, ``\\t``, ``semicolon``, ...)."""
    if text in _SEP_NAMES:
        return _SEP_NAMES[text]
    if not text:
        raise CLIError("--sep is empty; give a character such as ',' or a name such as tab")
    return text


def _kind(path: Path) -> tuple[str | None, str | None]:
    """(``"parquet"`` / ``"text"`` / None for an unknown suffix, the text separator)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in PARQUET_SUFFIXES:
        return "parquet", None
    if suffix in TEXT_SEPARATORS:
        return "text", TEXT_SEPARATORS[suffix]
    return None, None


def load_data(spec: str, sep: str | None = None, encoding: str = "utf-8"
              ) -> pd.DataFrame:
    """The data frame named by ``--data``: an existing file, else a bundled data set.

    Parameters
    ----------
    spec : str
        A path, or the name of a bundled data set (case-insensitive).
    sep : str, optional
        Field separator of a text file; default: from the extension, sniffed otherwise.
    encoding : str
        Text encoding of a text file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    CLIError
        Missing or unreadable file, unknown data set.
    """
    path = Path(spec)
    kind, default_sep = _kind(path)
    if path.is_dir():
        raise CLIError(f"--data {spec!r} is a directory, not a data file")
    if path.is_file():
        if kind == "parquet":
            if sep is not None:
                raise CLIError(f"--sep applies to text files, not to the parquet file {spec!r}")
            return _read_parquet(path)
        return _read_text(path, sep if sep is not None else default_sep, encoding)
    if kind is not None or len(path.parts) > 1:
        raise CLIError(f"data file {spec!r} not found")
    return _bundled(spec)


def _bundled(name: str) -> pd.DataFrame:
    from .. import datasets

    available = datasets.names()
    lookup = {n.lower(): n for n in available}
    if name.lower() in lookup:
        return datasets.load(lookup[name.lower()])
    close = difflib.get_close_matches(name.lower(), list(lookup), n=1)
    hint = f" (did you mean {lookup[close[0]]!r}?)" if close else ""
    raise CLIError(f"--data {name!r} is neither a file nor a bundled data set{hint}; "
                   "'mixedmodels datasets' lists the data sets")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise CLIError(f"reading the parquet file {str(path)!r} needs pyarrow: "
                       "pip install pyarrow (or pip install 'mixedmodels[parquet]')"
                       ) from None
    except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
        raise CLIError(f"cannot read {str(path)!r} as parquet: {_first_line(exc)}") from None


def _sniff(path: Path, encoding: str) -> str:
    """The separator of a text file of unknown type: the candidate most frequent in its
    first line (csv.Sniffer guesses letters on short headers), whitespace if none occurs."""
    opener = _OPENERS.get(path.suffix.lower(), open)
    with opener(path, "rt", encoding=encoding) as fh:
        header = fh.readline()
    counts = {c: header.count(c) for c in _LIKELY_SEPARATORS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else _SEP_NAMES["whitespace"]


def _read_text(path: Path, sep: str | None, encoding: str) -> pd.DataFrame:
    try:
        if sep is None:
            sep = _sniff(path, encoding)
        engine = "python" if len(sep) > 1 else "c"   # a regex separator needs the python parser
        frame = pd.read_csv(path, sep=sep, encoding=encoding, engine=engine)
    except UnicodeDecodeError as exc:
        raise CLIError(f"cannot read {str(path)!r} as {encoding} text: "
                       f"{_binary_hint(path, exc)}") from None
    except LookupError:
        raise CLIError(f"unknown --encoding {encoding!r} (try utf-8 or latin-1)") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"data file {str(path)!r} is empty") from None
    except pd.errors.ParserError as exc:
        raise CLIError(f"cannot parse {str(path)!r} (separator {_sep_name(sep)}): "
                       f"{_first_line(exc)}; pass --sep") from None
    _check_separator(frame, path, sep)
    return frame


def _binary_hint(path: Path, exc: UnicodeDecodeError) -> str:
    with path.open("rb") as fh:
        head = fh.read(8)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"the file is {what}"
    return (f"byte 0x{exc.object[exc.start]:02x} at position {exc.start} is not valid "
            "text; for a text file in another encoding pass --encoding (e.g. latin-1)")


def _check_separator(frame: pd.DataFrame, path: Path, sep: str | None) -> None:
    if frame.shape[1] != 1:
        return
    name = str(frame.columns[0])
    for candidate in _LIKELY_SEPARATORS:
        if candidate != sep and candidate in name:
            raise CLIError(f"{str(path)!r} parsed as one column named {name[:40]!r} with "
                           f"separator {_sep_name(sep)}; the separator looks like "
                           f"{_sep_name(candidate)}: pass --sep {_sep_flag(candidate)}")


def _sep_name(sep: str | None) -> str:
    return {"\t": "tab", _SEP_NAMES["whitespace"]: "whitespace"}.get(sep, repr(sep))


def _sep_flag(sep: str) -> str:
    return "tab" if sep == "\t" else repr(sep)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
