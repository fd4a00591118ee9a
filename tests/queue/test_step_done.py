"""step_done.lua: a durable agent's step result is stored under the job, only by the lease holder,
within the job's bounds, with a `step` event in its custody history."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import PayloadTooLarge, ValidationFailed
from hiveq.contract.lease import Lease, LeaseLost
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.maintain import maintain
from hiveq.queue.steps import load_steps, step_done
from tests.queue.helpers import enqueue_task, last_event, server_ms, st, variant
from tests.support.waiting import until


async def test_a_step_is_stored_once_with_a_step_event_naming_the_worker_and_time(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w1", ["a"], 1)
    await step_done(b, job.lease, "fetch", '{"rows":3}', 42)
    await step_done(b, job.lease, "fetch", '"other"', 1)  # the same key again: kept as it was
    assert await load_steps(b, job.id) == {"fetch": '{"rows":3}'}
    ev = await last_event(b, job.id)
    assert (ev.type, ev.worker, ev.reason, ev.attempt) == ("step", "w1", "fetch", 1)
    assert ev.data == {"name": "fetch", "ms": 42, "bytes": 10}


async def test_a_worker_that_lost_its_lease_cannot_store_a_step(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [old] = await claim(b, "w1", ["a"], 1)
    await heartbeat(variant(b, lease_s=0.001), "w1", [old.lease], 1)  # its lease runs out
    deadline = int(await b.redis.hget(b.keys.job(old.id), "deadline") or 0)
    await until(lambda: _after(b, deadline), what="the lease to run out")
    await maintain(b)
    [new] = await claim(b, "w2", ["a"], 1)
    with pytest.raises(LeaseLost, match="no longer held"):
        await step_done(b, old.lease, "fetch", '"stale"', 1)
    with pytest.raises(LeaseLost):
        await step_done(b, Lease("t0.nope", "x", "w1"), "fetch", "1", 1)
    await step_done(b, new.lease, "fetch", '"fresh"', 1)
    assert await load_steps(b, new.id) == {"fetch": '"fresh"'}


async def test_the_job_bounds_on_steps_are_kept_and_named(any_broker: Broker) -> None:
    b = variant(any_broker, max_steps=2, max_steps_bytes=2048)
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await step_done(b, job.lease, "one", '"' + "x" * 1000 + '"', 1)
    with pytest.raises(PayloadTooLarge, match="over the limit of 2048 bytes"):
        await step_done(b, job.lease, "two", '"' + "y" * 1100 + '"', 1)
    await step_done(b, job.lease, "two", "2", 1)
    with pytest.raises(ValidationFailed, match="HIVEQ_MAX_STEPS"):
        await step_done(b, job.lease, "three", "3", 1)
    assert sorted(await load_steps(b, job.id)) == ["one", "two"]


async def _after(b: Broker, ms: int) -> bool:
    return await server_ms(b) > ms
