"""Data backends that keep the rows out of the client's memory.

The in-memory fitters touch all n rows in one place only: the weighted cross-product
reduction ``[Z X y]' W [Z X y]`` (and ``Z b`` for fitted values). A backend replaces that
seam: it forms the cross-products chunk by chunk where the data lives, sums them, and hands
the reduced system to the same objective and optimizer as an in-memory fit.

* :mod:`.dask` -- Dask dataframes and parquet files (``pip install "mixedmodels[dask]"``).
"""
