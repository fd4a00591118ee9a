"""A foreign value on one of hiveq's keys is never a 500: every route answers (200, or 409 naming
the key, the type found and `hiveq repair`), /health says degraded with what to do, and after
`set_aside` (what `hiveq repair` runs) everything answers 200 again, the value kept aside."""

from __future__ import annotations

import httpx
import pytest

from hiveq.queue.broker import Broker
from hiveq.queue.repair import find_foreign, set_aside
from tests.support.worker import submit

SUFFIXES = ("q:t.count_a", "leases", "jobs", "tasks", "events", "dead", "workers", "stats")


async def routes(b: Broker, task_id: str, job_id: str) -> list[tuple[str, str]]:
    reads = [
        "/tasks",
        f"/tasks/{task_id}",
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/history",
        f"/jobs/{job_id}/output",
        f"/jobs/{job_id}/why",
        "/queues",
        "/workers",
        "/throughput",
        "/metrics",
        "/vanished",
        "/dlq",
        "/doctor?remember=false",
    ]
    return [("GET", r) for r in reads] + [
        ("POST", "/tasks"),
        ("POST", f"/jobs/{job_id}/recover"),
        ("POST", f"/dlq/{job_id}/retry"),
        ("POST", f"/tasks/{task_id}/cancel"),
    ]


@pytest.mark.parametrize("suffix", SUFFIXES)
async def test_a_foreign_value_on_a_key_is_a_409_naming_it_never_a_500(
    api: httpx.AsyncClient, broker: Broker, suffix: str
) -> None:
    b = broker
    enq = await submit(b, "t.count_a", [1])
    await b.redis.sadd(b.keys.agents, "t.count_a")
    key = b.keys.key(suffix)
    await b.redis.delete(key)
    await b.redis.rpush(key, "another app's item")
    body = {"description": "x", "subtasks": [{"id": "a", "agent": "t.count_a"}]}
    named = 0
    for method, path in await routes(b, enq.task_id, enq.job_ids[0]):
        r = await api.request(method, path, json=body if path == "/tasks" else None)
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        if r.status_code == 409 and r.json()["error"]["code"] == "wrong_type":
            message = r.json()["error"]["message"]
            assert key in message and "holds a list" in message and "hiveq repair" in message, message
            named += 1
    assert named, "no route needed the key"
    health = await api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
    assert any(key in p and "hiveq repair" in p for p in health.json()["problems"])

    [foreign] = await find_foreign(b)
    assert (foreign.key, foreign.found) == (key, "list")
    moved = await set_aside(b, foreign)
    assert moved.moved_to.startswith(f"{b.keys.prefix}aside:{suffix}:")
    assert await b.redis.lrange(moved.moved_to, 0, -1) == ["another app's item"]
    assert (await api.get("/health")).json()["status"] == "ok"
    for path in ("/tasks", f"/tasks/{enq.task_id}", "/queues", "/metrics"):
        assert (await api.get(path)).status_code == 200, path
