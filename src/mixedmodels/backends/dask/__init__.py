"""Fit on a Dask dataframe (or parquet files read with Dask): the optional backend.

The rows stay on the workers. Three passes over the partitions, each a map-reduce on
Dask's scheduler (dask.distributed when a ``Client`` is active):

1. :mod:`.scan` -- dtypes, missing values per column, level sets of the grouping factors
   and categorical predictors;
2. :mod:`.reduce` -- the triangular factor of ``W^{1/2} [X y]`` (a tall-skinny QR: the
   ``R`` of a tall matrix is the ``R`` of its chunks' stacked ``R``'s), which gives the
   well-conditioned fixed-effects basis and the rank check;
3. :mod:`.reduce` -- the cross-products ``[Z X~ y~]' W [Z X~ y~]`` per partition, summed.

The client then optimizes on the reduced system exactly as an in-memory fit does
(:mod:`.lmm`), holding memory proportional to that system, never to n. Importing this
package does not import Dask; the functions that need it say how to install it.
"""

from .source import is_dask_input

__all__ = ["is_dask_input"]
