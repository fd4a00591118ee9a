"""Server-sent events on a real uvicorn: a task's events from its creation until its final event,
resuming from Last-Event-ID, `?follow=1`, the namespace stream, keep-alives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from hiveq.client import SSEParser
from hiveq.contract.models import Event, SubtaskSpec, TaskSubmission
from hiveq.queue import cancel, complete, fetch, registry, retry
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from tests.api.live import live_server

ONE = {"description": "x", "subtasks": [{"id": "a", "agent": "demo"}]}


@pytest.fixture
async def url(broker: Broker) -> AsyncIterator[str]:
    async with live_server(broker.settings, sse_keepalive_s=0.3) as u:
        yield u


async def read(
    http: httpx.AsyncClient,
    path: str,
    n: int,
    headers: dict[str, str] | None = None,
    raw: list[str] | None = None,
) -> list[Event]:
    """The first `n` events of an SSE stream (then disconnect)."""
    out: list[Event] = []
    parser = SSEParser()
    async with asyncio.timeout(20), http.stream("GET", path, headers=headers or {}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if raw is not None:
                raw.append(line)
            ev = parser.feed(line)
            if ev is not None:
                out.append(ev)
                if len(out) == n:
                    return out
    raise AssertionError("stream ended early")


async def test_task_stream_replays_from_creation_and_resumes_after_last_event_id(
    url: str, broker: Broker
) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (await http.post("/tasks", json={"description": "Build a thing"})).json()["task_id"]
        first = await read(http, f"/tasks/{tid}/events", 5)
        assert [(e.type, e.to) for e in first] == [
            ("task", "queued"),
            ("job", "waiting"),
            ("job", "blocked"),
            ("job", "blocked"),
            ("job", "blocked"),
        ]
        assert all(e.task == tid for e in first)
        await cancel.cancel_task(broker, tid)
        resumed = await read(http, f"/tasks/{tid}/events", 5, headers={"Last-Event-ID": first[-1].id})
        assert [e.to for e in resumed] == ["cancelled"] * 5
        assert resumed[-1].type == "task"
        assert all(e.id > first[-1].id for e in resumed)


async def test_namespace_stream_shows_only_new_events_live(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        await http.post("/tasks", json={"description": "old task"})
        parser = SSEParser()
        async with asyncio.timeout(20), http.stream("GET", "/events") as r:
            # The start point is fixed before the response headers are sent: submit only now.
            new_tid = (await http.post("/tasks", json={"description": "Fix a bug"})).json()["task_id"]
            async for line in r.aiter_lines():
                ev = parser.feed(line)
                if ev is not None:
                    break
        assert ev is not None and ev.task == new_tid and ev.to == "queued"


async def test_idle_stream_sends_keep_alive_comments(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (
            await http.post("/tasks", json={"description": "x", "subtasks": [{"id": "a", "agent": "demo"}]})
        ).json()["task_id"]
        raw: list[str] = []
        await read(http, f"/tasks/{tid}/events", 2, raw=raw)
        assert raw[0] == "retry: 2000"
        async with asyncio.timeout(20), http.stream("GET", f"/tasks/{tid}/events") as r:
            async for line in r.aiter_lines():
                if line.startswith(": keep-alive"):
                    break


async def test_bad_last_event_id_is_422(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/events", headers={"Last-Event-ID": "yesterday"})
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "Last-Event-ID"


async def test_events_sharing_a_stream_entry_carry_the_resume_id_only_on_the_last(
    url: str, broker: Broker
) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        subs = [TaskSubmission(description="d", subtasks=[SubtaskSpec(id="s", agent="a")]) for _ in range(2)]
        done = await enqueue(broker, subs)  # one call: one stream entry, four events
        raw: list[str] = []
        got = await read(http, "/events?after=0", 4, raw=raw)
    t0, t1 = done[0].task_id, done[1].task_id
    assert [(e.type, e.task) for e in got] == [("task", t0), ("job", t0), ("task", t1), ("job", t1)]
    assert len({e.id for e in got}) == 1 and got[0].id  # every event knows its entry id
    assert [line for line in raw if line.startswith("id:")] == [f"id: {got[0].id}"]  # resume after all four


async def read_to_end(
    http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> list[Event]:
    """Every event of a stream the server ends by itself (fails the test if it does not)."""
    out: list[Event] = []
    parser = SSEParser()
    async with asyncio.timeout(20), http.stream("GET", path, headers=headers or {}) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            ev = parser.feed(line)
            if ev is not None:
                out.append(ev)
    return out


async def finish_one(broker: Broker, *, fatal: bool = False) -> str:
    """Claim the one waiting demo job and complete it (or dead-letter it); returns its id."""
    await registry.register_worker(broker, "w-1", ["demo"], concurrency=1)
    (job,) = await fetch.claim(broker, "w-1", ["demo"], 1)
    if fatal:
        await retry.fail(broker, [retry.Failure(job.lease, "boom", fatal=True)])
    else:
        await complete.complete(broker, [complete.Completion(job.lease, "ok")])
    return job.id


async def test_task_stream_ends_after_the_final_event(url: str, broker: Broker) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (await http.post("/tasks", json=ONE)).json()["task_id"]
        await finish_one(broker)
        got = await read_to_end(http, f"/tasks/{tid}/events")
        assert [(e.type, e.to) for e in got] == [
            ("task", "queued"),
            ("job", "waiting"),
            ("job", "active"),
            ("task", "running"),
            ("job", "succeeded"),
            ("task", "succeeded"),
        ]
        # Resuming after the final event: 204, which tells a browser's EventSource to stop.
        r = await http.get(f"/tasks/{tid}/events", headers={"Last-Event-ID": got[-1].id})
        assert r.status_code == 204 and r.text == ""


async def test_live_task_stream_ends_when_the_task_finishes(url: str, broker: Broker) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (await http.post("/tasks", json=ONE)).json()["task_id"]
        reader = asyncio.create_task(read_to_end(http, f"/tasks/{tid}/events"))
        await read(http, f"/tasks/{tid}/events", 2)  # the stream is open and has replayed the start
        await finish_one(broker)
        got = await reader
        assert got[-1].type == "task" and got[-1].to == "succeeded"


async def test_a_revived_task_stream_ends_only_at_the_last_finish_and_follow_keeps_it_open(
    url: str, broker: Broker
) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (await http.post("/tasks", json=ONE)).json()["task_id"]
        job_id = await finish_one(broker, fatal=True)  # the task fails ...
        following: list[str] = []
        parser = SSEParser()
        async with asyncio.timeout(20), http.stream("GET", f"/tasks/{tid}/events?follow=1") as r:
            async for line in r.aiter_lines():
                ev = parser.feed(line)
                if ev is None:
                    continue
                following.append(f"{ev.type}:{ev.to}")
                if following[-1] == "task:failed":
                    await retry.retry_dead(broker, job_id, "test")  # ... and is revived: follow sees it
                    await finish_one(broker)
                if following[-1] == "task:succeeded":
                    break
        assert following.count("task:failed") == 1 and following[-1] == "task:succeeded"
        replay = [f"{e.type}:{e.to}" for e in await read_to_end(http, f"/tasks/{tid}/events")]
        assert replay == following  # without follow: past the stale "failed", up to the last finish
