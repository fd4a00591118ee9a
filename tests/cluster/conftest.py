"""A real Redis Cluster (3 primaries, 3 replicas) for the whole session, and a Sentinel set.

Tests reach the cluster through `cluster.url`, the first node; fresh namespaces are chosen so that
their slot is served by ANOTHER primary (every call must follow the cluster's topology). Fault
tests that kill or fail over nodes start a cluster of their own (`own_cluster`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import APP_CHOOSERS
from tests.support.topology import Cluster, SentinelSet, app_on, start_cluster, start_sentinels


@dataclass
class ClusterTarget:
    """Stands in for a ServerProcess in the engine tests: a URL, here one cluster node's."""

    url: str
    kind: str = "cluster"


def elsewhere(c: Cluster) -> Callable[[], str]:
    """Fresh app names whose slot lives on a primary other than the node in `c.url`."""
    url_port = c.nodes[0].port
    others = [n for n in c.primaries() if n.port != url_port]

    def choose() -> str:
        return app_on(c, others[secrets.randbelow(len(others))])

    return choose


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    APP_CHOOSERS[c.url] = elsewhere(c)
    yield c
    APP_CHOOSERS.pop(c.url, None)
    c.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster this test may fail over, kill and migrate."""
    c = start_cluster(tmp_path / "cluster")
    yield c
    c.stop()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    ss = start_sentinels(tmp_path)
    yield ss
    ss.stop()
