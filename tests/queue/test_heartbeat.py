"""heartbeat.lua and progress.lua: extend only a matching lease; report progress only while holding it."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_job
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat, progress
from hiveq.queue.inspect import get_job
from hiveq.queue.registry import register_worker
from tests.queue.helpers import enqueue_task, last_event, st, stream_events, variant


async def test_heartbeat_extends_the_lease_of_a_matching_token(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w", ["a"], 1)
    await enqueue_task(b, st("x"))
    [job] = await claim(variant(b, lease_s=1.0), "w", ["a"], 1)
    beat = await heartbeat(variant(b, lease_s=60.0), "w", [job.lease], running=1)
    assert beat.registered and beat.lost == []
    deadline = await b.redis.zscore(b.keys.leases, job.id)
    assert deadline is not None and deadline >= job.lease_deadline_ms + 50_000
    assert (await get_job(b, job.id)).lease_deadline_ms == deadline
    assert await b.redis.hget(b.keys.worker("w"), "running") == "1"


async def test_heartbeat_with_a_stale_token_reports_the_job_lost_and_keeps_the_lease(
    any_broker: Broker,
) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    before = await b.redis.zscore(b.keys.leases, job.id)
    beat = await heartbeat(
        variant(b, lease_s=60.0), "w", [Lease(job.id, "not-the-token", "w"), Lease("t0.nope", "x", "w")], 1
    )
    assert beat.lost == [job.id, "t0.nope"]
    assert await b.redis.zscore(b.keys.leases, job.id) == before


async def test_heartbeat_refuses_a_lease_another_worker_holds(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w-other", ["a"], 1)
    with pytest.raises(ValueError, match="belongs to w-other, not w"):
        await heartbeat(variant(b, lease_s=60.0), "w", [job.lease], 1)
    assert await b.redis.zscore(b.keys.leases, job.id) == job.lease_deadline_ms


async def test_heartbeat_of_an_unregistered_worker_asks_it_to_register(any_broker: Broker) -> None:
    beat = await heartbeat(any_broker, "ghost", [], 0)
    assert not beat.registered
    assert await any_broker.redis.zcard(any_broker.keys.workers) == 0


async def test_heartbeat_reports_a_cancelled_job_lost(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await cancel_job(b, job.id)
    assert (await heartbeat(b, "w", [job.lease], 1)).lost == [job.id]


async def test_progress_is_recorded_and_announced_for_the_lease_holder_only(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await progress(b, job.lease, 0.5, "halfway") == Code.OK
    rec = await get_job(b, job.id)
    assert (rec.progress, rec.progress_message, rec.state) == (0.5, "halfway", "active")
    ev = await last_event(b, job.id)
    assert (ev.type, ev.reason, ev.data) == ("progress", "halfway", {"progress": 0.5})
    assert await progress(b, Lease(job.id, "stale", "w"), 0.9, "late") == Code.STALE_TOKEN
    assert await progress(b, Lease("t0.nope", "x", "w"), 0.9, "?") == Code.NOT_FOUND
    assert (await get_job(b, job.id)).progress == 0.5


async def test_progress_fraction_is_clamped_to_zero_one(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await progress(b, job.lease, 7.0, "over")
    assert (await get_job(b, job.id)).progress == 1.0


async def test_a_chatty_job_logs_at_most_100_progress_events_but_streams_them_all(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    for i in range(120):
        assert await progress(b, job.lease, i / 120, f"step {i}") == Code.OK
    history = await job_history(b, job.id)
    assert len([e for e in history if e.type == "progress"]) == 100
    streamed = [e for e in await stream_events(b) if e.type == "progress" and e.job == job.id]
    assert len(streamed) == 120
    assert (await get_job(b, job.id)).progress_message == "step 119"
