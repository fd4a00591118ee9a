"""A foreign value on one of hiveq's keys never stops the fleet: real worker processes on a real
redis-server keep serving their other agents (or wait, for a shared key), the API answers 409
naming the key and `hiveq repair`, and after `hiveq repair --yes` every accepted job runs, once
(executions counted outside Redis, in files)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hiveq.api.app import create_app
from hiveq.contract.states import JobState
from hiveq.queue import inspect, registry
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.api.live import asgi_client
from tests.conftest import fresh_settings
from tests.support.waiting import until
from tests.support.worker import ROOT, spawn_worker, stop_proc, worker_env

pytestmark = pytest.mark.slow

AGENTS = ("t.count_a", "t.count_b", "t.count_c")
WINDOW_S = 30.0  # the poison stays this long: no worker may exit meanwhile


def task(agent: str, n: int) -> dict[str, object]:
    return {"description": f"{n} x {agent}", "subtasks": [{"id": f"s{i}", "agent": agent} for i in range(n)]}


async def all_succeeded(b: Broker, job_ids: list[str], wait_s: float = 60.0) -> None:
    async def check() -> bool:
        return all(j.state == JobState.SUCCEEDED for j in await inspect.get_jobs(b, job_ids))

    await until(check, wait_s, f"{len(job_ids)} jobs to succeed", interval_s=0.1)


async def alive_through(procs: list[subprocess.Popen[bytes]], until_s: float) -> None:
    """Await the processes' exit until `until_s` (monotonic): none may come."""
    left = until_s - time.monotonic()
    if left > 0:
        done = await asyncio.gather(*(asyncio.to_thread(_exits_within, p, left) for p in procs))
        assert not any(done), f"a worker exited: codes {[p.poll() for p in procs]}"


def _exits_within(p: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def repair(b: Broker) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hiveq", "repair", "--yes"],
        cwd=ROOT,
        env=worker_env(b.settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines_naming(log: Path, key: str) -> int:
    return sum(
        1 for line in log.read_text(errors="replace").splitlines() if key in line and "WARNING" in line
    )


def executions(runs: Path, job_ids: list[str]) -> list[int]:
    """How often each job's agent really ran (counted in files, outside Redis)."""
    return [len((runs / j).read_text().splitlines()) if (runs / j).exists() else 0 for j in job_ids]


async def start_fleet(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> tuple[Broker, list[subprocess.Popen[bytes]], list[Path]]:
    srv = private_server("redis")
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    runs = tmp_path / "runs"
    runs.mkdir()
    agents = ",".join(AGENTS)
    procs = [
        spawn_worker(b.settings, agents, concurrency=3, log=log, HIVEQ_TEST_RUNS_DIR=str(runs))
        for log in logs
    ]

    async def registered() -> bool:
        return len(await registry.list_workers(b)) == 2

    await until(registered, 30, "two workers to register", interval_s=0.05)
    return b, procs, logs


async def test_a_list_pushed_onto_one_agents_queue_key_stops_no_worker_and_repair_restores_it(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    b, procs, logs = await start_fleet(private_server, tmp_path)
    runs = tmp_path / "runs"
    key = b.keys.queue("t.count_c")
    try:
        async with asgi_client(create_app(b.settings)) as api:
            await b.redis.lpush(key, "x")  # another application's list, on an (empty) queue key
            poisoned_at = time.monotonic()
            accepted: list[str] = []
            refused = await api.post("/tasks", json=task("t.count_c", 2))
            assert refused.status_code == 409, refused.text
            message = refused.json()["error"]["message"]
            assert key in message and "holds a list" in message and "hiveq repair" in message
            for agent in AGENTS[:2]:  # the other agents' work goes on
                r = await api.post("/tasks", json=task(agent, 5))
                assert r.status_code == 201, r.text
                accepted += [
                    s["job_id"] for s in (await api.get(f"/tasks/{r.json()['task_id']}")).json()["subtasks"]
                ]
            await all_succeeded(b, accepted)
            for path in ("/tasks", "/queues", "/workers", "/metrics", "/throughput", "/doctor"):
                r = await api.get(path)
                assert r.status_code in (200, 409), (path, r.status_code, r.text)
                if r.status_code == 409:
                    assert key in r.json()["error"]["message"], path
            health = (await api.get("/health")).json()
            assert health["status"] == "degraded"
            assert any(key in p and "hiveq repair" in p for p in health["problems"])
            # Both workers met the key and said so; none exits over the window.
            await until(
                lambda: all(lines_naming(log, key) for log in logs), 30, "both workers to name the key"
            )
            await alive_through(procs, poisoned_at + WINDOW_S)
            assert [lines_naming(log, key) for log in logs] == [1, 1]  # once a minute, not per attempt

            fixed = repair(b)
            assert fixed.returncode == 0, fixed.stdout + fixed.stderr
            assert f"moved {key} (a list) -> {b.keys.prefix}aside:q:t.count_c:" in fixed.stdout
            [aside] = [k async for k in b.redis.scan_iter(match=f"{b.keys.prefix}aside:*")]
            assert await b.redis.lrange(aside, 0, -1) == ["x"]  # set aside, not deleted
            assert (await api.get("/health")).json()["status"] == "ok"
            r = await api.post("/tasks", json=task("t.count_c", 5))  # the refused task, sent again
            assert r.status_code == 201, r.text
            later = [s["job_id"] for s in (await api.get(f"/tasks/{r.json()['task_id']}")).json()["subtasks"]]
            await all_succeeded(b, later, wait_s=60)
            accepted += later
        assert all(p.poll() is None for p in procs)
        assert executions(runs, accepted) == [1] * len(accepted)  # nothing lost, nothing twice
        assert (await audit(b)).ok
    finally:
        codes = [stop_proc(p) for p in procs]
        await b.close()
    assert codes == [0, 0]


async def test_a_foreign_value_on_the_shared_leases_key_pauses_the_workers_until_repair(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    b, procs, logs = await start_fleet(private_server, tmp_path)
    runs = tmp_path / "runs"
    key = b.keys.leases
    try:
        async with asgi_client(create_app(b.settings)) as api:
            await b.redis.set(key, "not a zset")  # no job is leased: the key does not exist
            poisoned_at = time.monotonic()
            accepted: list[str] = []
            for agent in AGENTS:
                r = await api.post("/tasks", json=task(agent, 3))  # enqueue does not need leases
                assert r.status_code == 201, r.text
                accepted += [
                    s["job_id"] for s in (await api.get(f"/tasks/{r.json()['task_id']}")).json()["subtasks"]
                ]
            await until(
                lambda: all(lines_naming(log, key) for log in logs), 30, "both workers to name the key"
            )
            await alive_through(procs, poisoned_at + WINDOW_S / 2)
            assert executions(runs, accepted) == [0] * len(accepted)  # nothing claimed meanwhile
            assert [lines_naming(log, key) for log in logs] == [1, 1]
            fixed = repair(b)
            assert fixed.returncode == 0, fixed.stdout + fixed.stderr
            assert f"moved {key} (a string)" in fixed.stdout
            await all_succeeded(b, accepted, wait_s=60)
        assert all(p.poll() is None for p in procs)
        assert executions(runs, accepted) == [1] * len(accepted)
        assert (await audit(b)).ok
    finally:
        codes = [stop_proc(p) for p in procs]
        await b.close()
    assert codes == [0, 0]
