"""Thieves against a running worker process (`python -m hiveq.worker`) and the real API: whatever
a foreign client takes is `vanished` within 5 s in the task view, the event stream and /metrics,
`recover` brings it back and it succeeds; in auto mode a persistent thief gets the job
dead-lettered at the delivery limit. Executions are counted outside hiveq's namespace."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from hiveq.client import SSEParser
from hiveq.contract.models import Event, SubtaskSpec, TaskSubmission
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import Enqueued, enqueue
from hiveq.queue.events import job_history
from tests.api.live import live_server
from tests.queue.helpers import bzpopmin, zpopmin
from tests.support.agents import executions_key
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc

pytestmark = pytest.mark.slow
PROMISE_S = 5.0  # the product's promise: a theft is seen everywhere within this


async def submit(b: Broker, *subs: SubtaskSpec) -> Enqueued:
    return (await enqueue(b, [TaskSubmission(description="thief test", subtasks=list(subs))]))[0]


def sub(sid: str, deps: tuple[str, ...] = (), **inp: Any) -> SubtaskSpec:
    return SubtaskSpec(id=sid, agent="t.count", input=inp, depends_on=list(deps))


async def runs(b: Broker, job_id: str) -> int:
    return int(await b.redis.get(executions_key(b.settings.namespace, job_id)) or 0)


async def state(b: Broker, job_id: str) -> str | None:
    return cast("str | None", await b.redis.hget(b.keys.job(job_id), "state"))


async def wait_state(b: Broker, job_id: str, want: str, timeout_s: float = 30) -> None:
    async def check() -> bool:
        return await state(b, job_id) == want

    await until(check, timeout_s, f"{job_id} to be {want}")


@contextlib.asynccontextmanager
async def rogue(b: Broker) -> AsyncIterator[Redis]:
    r = Redis.from_url(b.settings.redis_url, decode_responses=True, client_name="rogue-thief")
    try:
        yield r
    finally:
        await r.aclose()


async def blocked_thief(b: Broker) -> bool:
    return any(
        c.get("name") == "rogue-thief" and "b" in c.get("flags", "") for c in await b.redis.client_list()
    )


async def vanished_event(http: httpx.AsyncClient, task_id: str, job_id: str) -> Event:
    """The task's stream from its creation until the job's `to: vanished` event."""
    parser = SSEParser()
    async with http.stream("GET", f"/tasks/{task_id}/events") as r:
        async for line in r.aiter_lines():
            ev = parser.feed(line)
            if ev is not None and ev.job == job_id and ev.to == JobState.VANISHED:
                return ev
    raise AssertionError("stream ended early")


async def seen_everywhere(http: httpx.AsyncClient, task_id: str, job_id: str, since: float) -> Event:
    """Wait, all at once, for the task view, the event stream and /metrics to show the job vanished;
    each must within PROMISE_S of the theft."""

    async def in_view() -> bool:
        view = (await http.get(f"/tasks/{task_id}")).json()
        states = {s["job_id"]: s["state"] for s in view["subtasks"]}  # a deleted record: not shown yet
        return bool(states.get(job_id) == "vanished" and view["stalled"] and view["problems"])

    async def in_metrics() -> bool:
        text = (await http.get("/metrics")).text
        return "hiveq_jobs_vanished_total 1.0" in text and metric(text, "hiveq_foreign_clients") >= 1

    left = max(0.1, PROMISE_S - (time.monotonic() - since))
    async with asyncio.timeout(left):
        ev, _, _ = await asyncio.gather(
            vanished_event(http, task_id, job_id),
            until(in_view, left, "the task view to show it vanished"),
            until(in_metrics, left, "/metrics to count it"),
        )
    return ev


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def steal(b: Broker, thief: Redis, theft: str, job_id: str) -> None:
    k = b.keys
    if theft == "zpopmin-queue":
        assert await zpopmin(thief, k.queue("t.count")) == [job_id]
    elif theft == "zrem-blocked":
        assert await thief.zrem(k.blocked, job_id) == 1
    elif theft == "zrem-delayed":
        assert await thief.zrem(k.delayed, job_id) == 1
    elif theft == "zpopmin-leases":
        assert await zpopmin(thief, k.leases) == [job_id]
    else:
        assert await thief.delete(k.job(job_id)) == 1


# theft -> (the victim's place before the theft, where recover puts it, its runs at the end)
THEFTS = {
    "bzpopmin-queue": ("waiting", "waiting", 1),
    "zpopmin-queue": ("waiting", "waiting", 1),
    "zrem-blocked": ("blocked", "blocked", 1),
    "zrem-delayed": ("delayed", "delayed", 2),  # its first attempt failed on purpose
    "zpopmin-leases": ("active", "waiting", 2),  # it ran when its lease was taken: at-least-once
    "del-record": ("active", "waiting", 2),
}


@pytest.mark.parametrize("theft", sorted(THEFTS))
async def test_a_theft_is_seen_everywhere_within_5_s_and_the_recovered_job_succeeds(
    broker: Broker, theft: str
) -> None:
    b = broker
    place, back, expected_runs = THEFTS[theft]
    gate = f"gate:{b.settings.namespace}"
    worker = spawn_worker(
        b.settings, "t.count", concurrency=1, HIVEQ_BACKOFF_BASE="10", HIVEQ_BACKOFF_MAX="10"
    )
    cleanup = [gate]
    try:
        async with (
            live_server(b.settings) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
            rogue(b) as thief,
        ):
            await until(lambda: _workers(b), 30, "the worker to register")
            if theft == "bzpopmin-queue":  # blocked before the job exists: it is served first
                take = asyncio.create_task(bzpopmin(thief, b.keys.queue("t.count"), 60))
                await until(lambda: blocked_thief(b), 20, "the thief to block on the queue")
                res = await submit(b, sub("x"))
                victim = res.job_ids[0]
                assert await take == victim
                cleanup.append(executions_key(b.settings.namespace, victim))
            else:
                if theft == "zrem-delayed":
                    res = await submit(b, sub("x", fail_until=2))
                elif theft == "zrem-blocked":
                    res = await submit(b, sub("g", gate=gate), sub("x", deps=("g",)))
                elif theft == "zpopmin-queue":
                    res = await submit(b, sub("g", gate=gate), sub("x"))
                else:
                    res = await submit(b, sub("x", gate=gate))
                victim = next(j for j in res.job_ids if j.endswith(".x"))
                cleanup += [executions_key(b.settings.namespace, j) for j in res.job_ids]
                if "g" in {s.partition(".")[2] for s in res.job_ids}:
                    await wait_state(b, res.job_ids[0], "active")  # the only slot is taken by g
                await wait_state(b, victim, place)
                await steal(b, thief, theft, victim)
            since = time.monotonic()
            ev = await seen_everywhere(http, res.task_id, victim, since)
            assert ev.frm == place
            assert ev.reason is not None and "rogue-thief" in ev.reason, ev
            assert any(s["name"] == "rogue-thief" for s in ev.data["suspects"])
            if theft == "del-record":
                assert ev.data["record"] == "rebuilt"
            recovered = await http.post(f"/jobs/{victim}/recover")
            assert recovered.status_code == 200 and recovered.json()["state"] == back, recovered.text
            again = await http.post(f"/jobs/{victim}/recover")
            assert again.status_code == 409 and "not vanished" in again.json()["error"]["message"]
            await b.redis.rpush(gate, *(["open"] * 4))
            await wait_state(b, victim, "succeeded", 60)
            view = (await http.get(f"/tasks/{res.task_id}")).json()
        assert worker.poll() is None  # the worker never stopped
        assert await runs(b, victim) == expected_runs
    finally:
        assert stop_proc(worker) == 0
        await b.redis.delete(*cleanup)
    assert view["status"] == "succeeded" and not view["stalled"] and view["problems"] == []
    hist = await job_history(b, victim)
    moves = [(e.frm, e.to) for e in hist if e.type == "job"]
    assert (place, "vanished") in moves and ("vanished", back) in moves
    assert moves[-1] == ("active", "succeeded")
    assert sum(1 for e in hist if e.to == "succeeded") == 1


async def _workers(b: Broker) -> bool:
    return bool(await b.redis.zcard(b.keys.workers))


async def test_auto_mode_under_a_persistent_thief_dead_letters_the_job_at_the_delivery_limit(
    broker: Broker,
) -> None:
    b = broker
    b3 = await Broker.connect(b.settings.with_(max_deliveries=3), role="test")
    worker = spawn_worker(
        b.settings, "t.count", concurrency=2, HIVEQ_RECOVER_VANISHED="auto", HIVEQ_MAX_DELIVERIES="3"
    )
    stolen: list[str] = []

    async def keep_stealing(thief: Redis) -> None:
        while True:
            got = await bzpopmin(thief, b.keys.queue("t.count"), 1)
            if got:
                stolen.append(got)

    try:
        await until(lambda: _workers(b), 30, "the worker to register")
        async with rogue(b) as thief:
            loop = asyncio.create_task(keep_stealing(thief))
            try:
                await until(lambda: blocked_thief(b), 20, "the thief to block on the queue")
                res = await submit(b3, sub("x"))
                job_id = res.job_ids[0]
                await wait_state(b, job_id, "dead", 60)
            finally:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        assert worker.poll() is None
    finally:
        assert stop_proc(worker) == 0
        await b3.close()
    job = await inspect.get_job(b, job_id)
    assert stolen == [job_id] * 3 and await runs(b, job_id) == 0  # it never ran
    assert job.reason is not None and "deliveries used up (delivery 3 of 3)" in job.reason
    assert "rogue-thief" in job.reason
    assert (await inspect.get_task(b, res.task_id)).status == "failed"
    hist = await job_history(b, job_id)
    marks = [e for e in hist if e.to == "vanished"]
    assert len(marks) == 3 and all(e.data["recover"] == "auto" for e in marks)
    assert [e.to for e in hist if e.frm == "vanished"] == ["waiting", "waiting", "dead"]
