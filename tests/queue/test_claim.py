"""claim.lua: lease waiting jobs to one worker, most urgent first, FIFO within a priority."""

from __future__ import annotations

import asyncio

from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim, wait_for_work
from hiveq.queue.inspect import get_job, get_task
from hiveq.queue.registry import register_worker
from tests.queue.helpers import enqueue_task, last_event, places_of, st, submission


async def test_claim_leases_a_job_with_token_deadline_worker_and_delivery_count(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w1", ["a"], 1)
    res = await enqueue_task(b, st("a"))
    [job] = await claim(b, "w1", ["a"], 5)
    assert job.id == res.job_ids[0] and job.attempt == 1 and job.input == {"n": "a"}
    assert job.description == "test task" and job.token
    assert job.lease == Lease(job.id, job.token, "w1")  # what heartbeat, complete and fail take back
    rec = await get_job(b, job.id)
    assert (rec.state, rec.worker, rec.attempts, rec.lease_deadline_ms) == (
        "active",
        "w1",
        1,
        job.lease_deadline_ms,
    )
    assert await places_of(b, job.id) == ["active"]
    assert await b.redis.zscore(b.keys.leases, job.id) == job.lease_deadline_ms
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.to, ev.worker, ev.attempt) == ("waiting", "active", "w1", 1)
    assert ev.pid is not None and ev.host and ev.client  # custody names the process and connection
    assert (await get_task(b, res.task_id)).status == "running"


async def test_claim_on_an_empty_queue_returns_nothing_and_changes_nothing(any_broker: Broker) -> None:
    b = any_broker
    assert await claim(b, "w1", ["a"], 10) == []
    assert await b.redis.zcard(b.keys.leases) == 0


async def test_claim_takes_several_jobs_in_one_call_up_to_the_count(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, *[st(f"s{i}") for i in range(5)])
    first = await claim(b, "w1", ["a"], 3)
    rest = await claim(b, "w1", ["a"], 3)
    assert len(first) == 3 and len(rest) == 2
    assert len({j.token for j in first}) == 1 and first[0].token != rest[0].token
    assert await b.redis.zcard(b.keys.leases) == 5


async def test_fifo_within_one_priority(any_broker: Broker) -> None:
    b = any_broker
    ids = [(await enqueue_task(b, st("only"))).job_ids[0] for _ in range(6)]
    got = [j.id for j in await claim(b, "w", ["a"], 4)] + [j.id for j in await claim(b, "w", ["a"], 4)]
    assert got == ids


async def test_strict_priority_across_all_agents_a_worker_serves(any_broker: Broker) -> None:
    b = any_broker
    low = await enqueue_task(b, st("x", agent="alpha"), priority=9)
    mid = await enqueue_task(b, st("x", agent="beta"), priority=5)
    urgent = await enqueue_task(b, st("x", agent="gamma"), priority=1)
    mid2 = await enqueue_task(b, st("x", agent="alpha", priority=5))
    order = [j.id for j in await claim(b, "w", ["alpha", "beta", "gamma"], 10)]
    assert order == [urgent.job_ids[0], mid.job_ids[0], mid2.job_ids[0], low.job_ids[0]]


async def test_claim_only_takes_jobs_of_the_agents_served(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x", agent="alpha"), st("y", agent="beta"))
    got = await claim(b, "w", ["beta"], 10)
    assert [j.agent for j in got] == ["beta"]
    assert await b.redis.zcard(b.keys.queue("alpha")) == 1


async def test_claim_hands_dependency_results_to_the_dependent_job(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("a"), st("b", deps=("a",)))
    [ja] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(ja.lease, {"answer": 42})])
    [jb] = await claim(b, "w", ["a"], 1)
    assert jb.subtask_id == "b" and jb.dependency_results == {"a": {"answer": 42}}


async def test_blocking_fetch_wakes_on_enqueue_without_polling(any_broker: Broker) -> None:
    b = any_broker
    conn = await b.dedicated("test-wait", "1", 30.0)  # a connection of its own for the blocking call
    try:
        assert not await wait_for_work(b, ["a"], 0.05, conn=conn)  # nothing yet: times out
        waiter = asyncio.create_task(wait_for_work(b, ["a"], 20, conn=conn))
        await asyncio.sleep(0)
        await b.redis.ping()  # give the waiter time to block on the server
        assert not waiter.done()
        await enqueue(b, [submission(st("x"))])
        assert await asyncio.wait_for(waiter, 10)
    finally:
        await conn.aclose()
