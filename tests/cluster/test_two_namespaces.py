"""Two namespaces whose slots live on two different primaries, neither of them the node REDIS_URL
names, run end to end through the API (a real uvicorn), a worker process, the CLI and the doctor."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx

from hiveq.client import AsyncClient
from hiveq.settings import Settings
from tests.api.live import live_server
from tests.cli.conftest import ROOT, base_env
from tests.support.topology import Cluster, app_on, slot_of
from tests.support.worker import spawn_worker, stop_proc


def cli(settings: Settings, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = base_env(REDIS_URL=settings.redis_url, HIVEQ_APP=settings.app, HIVEQ_ENV=settings.env)
    return subprocess.run(
        [sys.executable, "-m", "hiveq", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_two_namespaces_on_two_other_primaries_run_through_api_worker_cli_and_doctor(
    cluster: Cluster,
) -> None:
    url_node = cluster.nodes[0]
    others = [n for n in cluster.primaries() if n.port != url_node.port]
    assert len(others) == 2
    spaces = [Settings(redis_url=cluster.url, app=app_on(cluster, n), env="test") for n in others]
    homes = {cluster.owner(slot_of(s.app)).port for s in spaces}
    assert homes == {n.port for n in others}  # two different primaries, neither the URL's node
    workers = [spawn_worker(s.with_(demo_delay_s=0.01), "demo", concurrency=4) for s in spaces]
    try:
        for s in spaces:
            settings = s.with_(demo_delay_s=0.01)
            async with live_server(settings) as api, AsyncClient(api) as client:
                sub = await client.submit("Build a user authentication system", priority=1)
                view = await client.wait(sub.task_id, timeout=60)
                assert view.status == "succeeded"
                async with httpx.AsyncClient(base_url=api) as http:
                    listed_api = (await http.get("/tasks")).json()
                    assert [t["id"] for t in listed_api["items"]] == [sub.task_id]
                    assert (await http.get("/health")).status_code == 200
                    assert (await http.get("/metrics")).status_code == 200

            # The CLI: submit and wait, list, and the doctor, all through the node of REDIS_URL.
            done = await asyncio.to_thread(cli, settings, "submit", "Write a report", "--wait", "--json")
            assert done.returncode == 0, done.stderr
            listed = json.loads((await asyncio.to_thread(cli, settings, "tasks", "--json")).stdout)
            assert len(listed["items"]) == 2
            assert {t["status"] for t in listed["items"]} == {"succeeded"}
            doc = await asyncio.to_thread(cli, settings, "doctor", "--json")
            assert doc.returncode == 0, doc.stdout + doc.stderr
            report = json.loads(doc.stdout)
            checks = {c["name"]: c for c in report["checks"]}
            assert all(c["verdict"] != "fail" for c in checks.values()), checks
            # Replicas present and HIVEQ_MIN_REPLICAS=0: the doctor says a failover can lose work.
            assert checks["replication"]["verdict"] == "warn"
            assert "HIVEQ_MIN_REPLICAS=0" in checks["replication"]["summary"]
            assert "Redis answered with an error" not in doc.stdout + doc.stderr
            home = cluster.owner(slot_of(s.app))
            assert f"127.0.0.1:{home.port}" in checks["cluster"]["summary"]  # names the node
    finally:
        for w in workers:
            stop_proc(w)
