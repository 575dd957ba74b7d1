"""Fixtures of the cluster tests: one 2-worker LocalCluster per test module (the NATS server: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marginkit.distributed.cluster import ClusterClient, ClusterSpec, open_client


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterClient]:
    """A LocalCluster of 2 worker processes (1 thread each) shared by the tests of one module."""
    with open_client(ClusterSpec(workers=2)) as client:
        yield client


@pytest.fixture(scope="module")
def scheduler(cluster: ClusterClient) -> str:
    """The module cluster's scheduler address, for `--cluster tcp://…` (no cluster started per command)."""
    address: str = cluster.client.scheduler.address
    return address


