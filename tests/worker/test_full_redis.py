"""A full Redis is an answer, not a crash: with `maxmemory 20mb` reached under noeviction, POST
/tasks answers 507 saying so (and writes nothing), /health says degraded, the doctor says writes
are refused now, real worker processes stay up and finish the jobs they hold, and once memory is
freed every accepted task finishes, each job run once (counted outside Redis)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from hiveq.api.app import create_app
from hiveq.contract.states import JobState
from hiveq.diagnose.doctor import run_doctor
from hiveq.queue import inspect, registry
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.api.live import asgi_client
from tests.conftest import fresh_settings
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc
from tests.worker.test_foreign_value import alive_through, all_succeeded, executions, task

pytestmark = pytest.mark.slow

FULL = (
    "Redis is full (maxmemory 20.00M reached, policy noeviction): nothing was written; free memory "
    "or raise maxmemory"
)


async def fill(r: Redis) -> int:
    """Write another application's keys until Redis refuses (OOM), then 1 MB more past the limit
    (a script Redis runs anyway), so that Redis stays full whatever small buffers it frees."""
    n = 0
    with contextlib.suppress(OutOfMemoryError):
        while True:
            await r.set(f"other-app:{n}", "x" * 200_000)
            n += 1
    await r.eval(
        "#!lua flags=allow-oom\nreturn redis.call('SET', KEYS[1], ARGV[1])", 1, "other-app:over", "x" * 2**20
    )
    return n


async def test_a_full_redis_answers_507_and_workers_finish_what_they_hold(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = private_server("redis", extra=["--maxmemory", "20mb", "--maxmemory-policy", "noeviction"])
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    other = Redis.from_url(srv.url, decode_responses=True)
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    runs.mkdir()
    procs = [
        spawn_worker(
            b.settings,
            "t.count_a",
            concurrency=3,
            log=tmp_path / f"w{i}.log",
            HIVEQ_TEST_GATE=str(gate),
            HIVEQ_TEST_RUNS_DIR=str(runs),
        )
        for i in range(2)
    ]
    try:

        async def registered() -> bool:
            return len(await registry.list_workers(b)) == 2

        await until(registered, 30, "two workers to register", interval_s=0.05)
        async with asgi_client(create_app(b.settings)) as api:
            accepted: list[str] = []
            for _ in range(4):
                r = await api.post("/tasks", json=task("t.count_a", 2))
                assert r.status_code == 201, r.text
                view = (await api.get(f"/tasks/{r.json()['task_id']}")).json()
                accepted += [s["job_id"] for s in view["subtasks"]]

            async def six_active() -> bool:
                jobs = await inspect.get_jobs(b, accepted)
                return sum(j.state == JobState.ACTIVE for j in jobs) == 6

            await until(six_active, 30, "six jobs held by the workers", interval_s=0.05)
            assert await fill(other) > 0
            tasks_before = await b.redis.zcard(b.keys.tasks)

            refused = await api.post("/tasks", json=task("t.count_a", 1))
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"] == {"code": "redis_full", "message": FULL, "field": None}
            assert await b.redis.zcard(b.keys.tasks) == tasks_before  # nothing was written
            health = (await api.get("/health")).json()
            assert health["status"] == "degraded"
            assert any(p.startswith("Redis is full (maxmemory 20.00M reached") for p in health["problems"])
            memory = (await run_doctor(b, remember=False)).check("memory headroom")
            assert memory.verdict == "fail" and "refuses writes now" in memory.summary

            gate.touch()  # the held jobs finish while Redis is still full

            async def six_done() -> bool:
                jobs = await inspect.get_jobs(b, accepted)
                return sum(j.state == JobState.SUCCEEDED for j in jobs) >= 6

            await until(six_done, 60, "the held jobs to be recorded under OOM", interval_s=0.1)
            with pytest.raises(OutOfMemoryError):
                await other.set("other-app:more", "x" * 200_000)  # still full
            assert all(p.poll() is None for p in procs)

            await other.delete(*[k async for k in other.scan_iter(match="other-app:*")])  # memory freed
            r = await api.post("/tasks", json=task("t.count_a", 2))
            assert r.status_code == 201, r.text
            accepted += [
                s["job_id"] for s in (await api.get(f"/tasks/{r.json()['task_id']}")).json()["subtasks"]
            ]
            await all_succeeded(b, accepted, wait_s=60)
            assert (await api.get("/health")).json()["status"] == "ok"
        await alive_through(procs, 0)
        assert all(p.poll() is None for p in procs)
        assert executions(runs, accepted) == [1] * len(accepted)  # nothing lost, nothing twice
        assert (await audit(b)).ok
    finally:
        codes = [stop_proc(p) for p in procs]
        await other.aclose()
        await b.close()
    assert codes == [0, 0]
