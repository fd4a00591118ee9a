"""`GET /doctor` and `GET /jobs/{id}/why` through the real app served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from hiveq.api.app import create_app
from hiveq.queue.broker import Broker
from hiveq.server import free_port
from hiveq.settings import Settings
from tests.queue.helpers import enqueue_task, st
from tests.support.waiting import until


@contextlib.asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="none",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started or task.done()

    await until(started, 20, "uvicorn to start")
    if task.done():
        task.result()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def test_get_doctor_reports_checks_and_why_answers_in_plain_words(broker: Broker) -> None:
    res = await enqueue_task(broker, st("x", agent="translator"))
    async with api(broker.settings) as client:
        report = (await client.get("/doctor", params={"sample": 0.2})).json()
        answer = await client.get(f"/jobs/{res.job_ids[0]}/why")
        unknown = await client.get("/jobs/t0.nope/why")
        too_long = await client.get("/doctor", params={"sample": 3600})
    assert report["ok"] is False
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert verdicts["unserved queues"] == "fail" and verdicts["monitor sample"] == "ok"
    assert answer.status_code == 200
    assert answer.json()["summary"].startswith("no live worker serves agent translator")
    assert unknown.status_code == 404 and "unknown job id" in unknown.json()["error"]["message"]
    assert too_long.status_code == 422


async def test_a_live_view_runs_the_doctor_without_moving_its_dead_letter_baseline(broker: Broker) -> None:
    baseline = broker.keys.key("doctor")
    async with api(broker.settings) as client:
        live = await client.get("/doctor", params={"remember": "false"})
        assert live.status_code == 200
        assert await broker.redis.exists(baseline) == 0
        assert (await client.get("/doctor")).status_code == 200
    assert await broker.redis.hget(baseline, "dead") == "0"
