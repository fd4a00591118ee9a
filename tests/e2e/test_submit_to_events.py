"""End to end on real Redis and a real uvicorn: submit over HTTP -> an in-process worker runs the
subtasks in dependency order -> the task succeeds -> its event stream showed every transition."""

from __future__ import annotations

import asyncio
import itertools

from hiveq.client import AsyncClient
from hiveq.contract.models import Event
from hiveq.queue.broker import Broker
from tests.api.live import live_server
from tests.support.worker import worker_in_process

ORDER = ["design", "implement", "test", "document"]


def transitions(events: list[Event], sub: str) -> list[str]:
    return [e.to or "" for e in events if e.type == "job" and (e.job or "").endswith("." + sub)]


async def test_submit_runs_subtasks_in_order_and_stream_shows_every_transition(broker: Broker) -> None:
    settings = broker.settings.with_(demo_delay_s=0.02)
    async with live_server(settings) as url, AsyncClient(url) as client:
        sub = await client.submit("Build a user authentication system", priority=1)
        tid = sub.task_id
        seen: list[Event] = []

        async def follow() -> None:
            async for ev in client.events(tid):
                seen.append(ev)
                if ev.type == "task" and ev.to in ("succeeded", "failed", "cancelled"):
                    return

        async with worker_in_process(settings, ["demo"], concurrency=4):
            await asyncio.wait_for(follow(), 60)
            view = await client.wait(tid, timeout=30)

    assert [e.to for e in seen if e.type == "task"] == ["queued", "running", "succeeded"]
    assert transitions(seen, "design") == ["waiting", "active", "succeeded"]
    for step in ORDER[1:]:
        assert transitions(seen, step) == ["blocked", "waiting", "active", "succeeded"]
    # Dependency order: a step is released only after the one before it succeeded.
    index = {(e.job, e.to): i for i, e in enumerate(seen)}
    for before, after in itertools.pairwise(ORDER):
        assert index[(f"{tid}.{before}", "succeeded")] < index[(f"{tid}.{after}", "waiting")]
    ids = [e.id for e in seen]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert all(e.worker for e in seen if e.to == "active")

    assert view.status == "succeeded"
    assert view.progress.fraction == 1.0
    assert [s.state for s in view.subtasks] == ["succeeded"] * 4
    assert view.result["sinks"] == ["document"]
    assert view.result["final"]["step"] == "document"
    assert view.result["subtasks"]["test"]["uses"] == ["implement"]
