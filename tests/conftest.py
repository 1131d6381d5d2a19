import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest


# The Dask tests' shared fixtures (tests/test_dask_*.py); dask is imported only when a
# test asks for them, so the rest of the suite runs without the dask extra.
@pytest.fixture
def sync():
    """Dask's synchronous scheduler for the test's duration (no cluster)."""
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def cluster_client():
    """A distributed.LocalCluster of two worker processes (one thread each) and its
    Client, shared by a test module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client
