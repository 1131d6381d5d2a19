"""What counts as Dask input, reading it, and the scheduler a fit runs on."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..._errors import DataError

__all__ = ["ClusterUnreachableError", "as_dask_frame", "is_dask_input", "require_dask",
           "scheduler_context"]

#: Seconds to wait for a scheduler given by address before reporting it unreachable.
CONNECT_TIMEOUT_S = 10.0

_INSTALL = 'install the optional Dask backend: pip install "mixedmodels[dask]"'


class ClusterUnreachableError(ConnectionError):
    """The Dask scheduler named by ``scheduler=`` could not be reached."""


def require_dask():
    """Import ``dask.dataframe``, or raise an ImportError saying how to install it."""
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError(f"fitting Dask or parquet input needs dask: {_INSTALL}") from exc
    return dask, dd


def _is_parquet_path(data) -> bool:
    if not isinstance(data, str | os.PathLike):
        return False
    text = str(data)
    return text.endswith((".parquet", ".pq")) or "*" in text or Path(text).is_dir()


def is_dask_input(data) -> bool:
    """True for a Dask DataFrame, or a parquet path, directory or glob (read with Dask).

    Decided without importing Dask (from the object's module), so the in-memory path
    never pays for the optional backend.
    """
    module = type(data).__module__ or ""
    if module.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "npartitions"):
        return True
    return _is_parquet_path(data)


def as_dask_frame(data):
    """The input as a Dask DataFrame (parquet paths and globs are read lazily)."""
    _, dd = require_dask()
    if _is_parquet_path(data):
        text = str(data)
        try:
            return dd.read_parquet(text)
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise DataError(f"cannot read parquet data {text!r}: {exc}") from exc
    if not hasattr(data, "npartitions"):
        raise DataError(f"expected a Dask DataFrame or a parquet path, got "
                        f"{type(data).__name__}")
    return data


@contextlib.contextmanager
def scheduler_context(scheduler):
    """Run the fit's computations on ``scheduler``.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        None: Dask's current default (the active ``distributed.Client`` if there is one,
        else the local threaded scheduler). A string is a scheduler address
        (``"tcp://10.0.0.5:8786"``): a client is connected for the fit and closed after;
        one that cannot be reached raises :class:`ClusterUnreachableError` naming it. A
        ``Client`` is used as it is.
    """
    dask, _ = require_dask()
    if scheduler is None:
        yield None
        return
    if isinstance(scheduler, str):
        try:
            from distributed import Client
        except ImportError as exc:
            raise ImportError(f"a scheduler address needs distributed: {_INSTALL}") from exc
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterUnreachableError(
                f"cannot reach the Dask scheduler at {scheduler!r} within "
                f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc}); check the address "
                "and that the scheduler is running (dask scheduler / LocalCluster)"
            ) from None
        try:
            with dask.config.set(scheduler=client):
                yield client
        finally:
            client.close()
        return
    if hasattr(scheduler, "submit") and hasattr(scheduler, "scheduler_info"):
        with dask.config.set(scheduler=scheduler):
            yield scheduler
        return
    raise TypeError(f"scheduler must be None, an address string or a distributed.Client, "
                    f"not {type(scheduler).__name__}")
