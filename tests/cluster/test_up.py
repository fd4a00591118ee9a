"""`hiveq up` with REDIS_URL naming a cluster node or a Sentinel set: the API and the workers it
starts serve a task to success (no embedded server is started)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from hiveq.server import free_port
from tests.cli.conftest import Hiveq, base_env, stop
from tests.cli.test_up import Up
from tests.support.topology import Cluster, SentinelSet


def run_up(url: str, folder: Path, app: str) -> None:
    env = {"REDIS_URL": url, "HIVEQ_APP": app, "HIVEQ_ENV": "test", "HIVEQ_DEMO_DELAY": "0.01"}
    up = Up(folder / "data", free_port(), None, env=env)
    try:
        up.wait_up()
        cli = Hiveq(base_env(**env))
        done = cli("submit", "Build a user authentication system", "--wait", "--json", timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr + up.output
        assert '"succeeded"' in done.stdout
        assert up.interrupt() == 0, up.output
    finally:
        stop(up.proc, signal.SIGKILL)
    assert "Traceback" not in up.output, up.output


@pytest.mark.slow
def test_up_serves_a_task_on_a_cluster_node_url(cluster: Cluster, tmp_path: Path) -> None:
    run_up(cluster.url, tmp_path, "upcluster")


@pytest.mark.slow
def test_up_serves_a_task_through_a_sentinel_url(sentinels: SentinelSet, tmp_path: Path) -> None:
    run_up(sentinels.url, tmp_path, "upsentinel")
