"""Vanished jobs over HTTP: the task view's states, `problems` and `stalled`, GET /vanished, the
metrics, POST /jobs/{id}/recover; and the API process runs the conservation watch itself."""

from __future__ import annotations

import asyncio
import re

import httpx
from redis.asyncio import Redis

from hiveq.api.app import create_app
from hiveq.client import AsyncClient
from hiveq.diagnose.watch import Watch
from hiveq.queue.broker import Broker
from tests.api.live import asgi_client, live_server
from tests.queue.helpers import enqueue_task, st, zpopmin
from tests.support.waiting import until


def metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


async def test_a_vanished_job_shows_in_the_task_the_lists_and_the_metrics_and_recovers(
    broker: Broker,
) -> None:
    b = broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    x = res.job_ids[0]
    thief = Redis.from_url(b.settings.redis_url, decode_responses=True, client_name="rogue-thief")
    try:
        async with asgi_client(create_app(b.settings, watch=False)) as api:
            assert (await api.get("/vanished")).json() == {"total": 0, "items": []}
            assert await zpopmin(thief, b.keys.queue("a")) == [x]
            assert (await Watch(b).tick()).marked == [x]

            view = (await api.get(f"/tasks/{res.task_id}")).json()
            assert [(s["id"], s["state"]) for s in view["subtasks"]] == [("x", "vanished"), ("y", "blocked")]
            assert view["stalled"] is True and view["status"] == "queued"
            [problem] = view["problems"]
            assert (problem["kind"], problem["job_id"], problem["key"]) == ("vanished", x, b.keys.queue("a"))
            assert "rogue-thief" in problem["suspect"] and f"hiveq recover {x}" in problem["fix"]
            listed = (await api.get("/tasks")).json()["items"]
            assert [(t["id"], t["stalled"]) for t in listed] == [(res.task_id, True)]
            assert [p["job_id"] for p in (await api.get("/vanished")).json()["items"]] == [x]

            text = (await api.get("/metrics")).text
            assert metric(text, "hiveq_jobs_vanished_total") == 1.0
            assert metric(text, 'hiveq_jobs{state="vanished"}') == 1.0
            assert metric(text, "hiveq_foreign_clients") == 1.0  # the thief, still connected

            retry = await api.post(f"/dlq/{x}/retry")
            assert retry.status_code == 409 and f"hiveq recover {x}" in retry.json()["error"]["message"]
            ok = await api.post(f"/jobs/{x}/recover")
            assert ok.status_code == 200 and ok.json() == {"job_id": x, "state": "waiting"}
            again = await api.post(f"/jobs/{x}/recover")
            assert again.status_code == 409 and "not vanished" in again.json()["error"]["message"]
            assert (await api.post("/jobs/t0.nope/recover")).status_code == 404
            view = (await api.get(f"/tasks/{res.task_id}")).json()
            assert view["stalled"] is False and view["problems"] == []
            await thief.aclose()

            async def gone() -> bool:
                return metric((await api.get("/metrics")).text, "hiveq_foreign_clients") == 0.0

            await until(gone, 10, "the thief's disconnection to show in /metrics")
    finally:
        await thief.aclose()


async def test_the_api_process_runs_the_watch_when_no_worker_does(broker: Broker) -> None:
    b = broker
    res = await enqueue_task(b, st("x"))
    async with asgi_client(create_app(b.settings)) as api:
        await b.redis.zpopmin(b.keys.queue("a"))

        async def marked(client: httpx.AsyncClient = api) -> bool:
            view = (await client.get(f"/tasks/{res.task_id}")).json()
            return bool(view["subtasks"][0]["state"] == "vanished")

        await until(marked, 10, "the API's watch to mark the job vanished")


async def test_the_sdk_wait_returns_a_stalled_task_and_recover_brings_its_job_back(broker: Broker) -> None:
    b = broker
    async with live_server(b.settings) as url, AsyncClient(url) as c:
        sub = await c.submit("x", subtasks=[{"id": "a", "agent": "demo"}])
        waiter = asyncio.create_task(c.wait(sub.task_id, timeout=20))
        await b.redis.zpopmin(b.keys.queue("demo"))  # the API's watch marks it; wait() hears of it
        view = await waiter
        assert view.stalled and [p.subtask_id for p in view.problems] == ["a"]
        assert [p.job_id for p in (await c.vanished()).items] == [f"{sub.task_id}.a"]
        assert (await c.recover(f"{sub.task_id}.a")).state == "waiting"
        assert not (await c.get_task(sub.task_id)).stalled
