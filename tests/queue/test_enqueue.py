"""enqueue.lua: a task and its jobs persisted in one step; ready jobs waiting, the rest blocked."""

from __future__ import annotations

import asyncio

import pytest

from hiveq.contract.errors import EnqueueIncomplete, PayloadTooLarge, ValidationFailed, WrongTypeError
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import CHUNK_JOBS, enqueue
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_jobs, get_task, list_tasks, stats
from tests.queue.helpers import enqueue_task, places_of, st, stream_events, submission, variant


async def test_enqueue_places_ready_jobs_waiting_and_dependent_jobs_blocked(any_broker: Broker) -> None:
    b = any_broker
    assert await b.redis.zcard(b.keys.jobs) == 0
    res = await enqueue_task(b, st("a"), st("b", deps=("a",)))
    ja, jb = res.job_ids
    assert not res.duplicate
    assert await places_of(b, ja) == ["waiting"]
    assert await places_of(b, jb) == ["blocked"]
    assert (await get_job(b, ja)).state == "waiting"
    job_b = await get_job(b, jb)
    assert (job_b.state, job_b.depends_on, job_b.pending_deps) == ("blocked", ["a"], 1)
    task = await get_task(b, res.task_id)
    assert (task.status, task.total, task.job_ids) == ("queued", 2, [ja, jb])
    assert (await stats(b))["enqueued"] == 2


async def test_enqueue_emits_task_queued_and_one_event_per_job_naming_who(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("a"), st("b", deps=("a",)))
    events = await stream_events(b)
    assert [(e.type, e.frm, e.to) for e in events] == [
        ("task", "", "queued"),
        ("job", "", "waiting"),
        ("job", "", "blocked"),
    ]
    assert [e.job for e in events[1:]] == res.job_ids
    assert all(b.identity in (e.reason or "") for e in events[1:])


async def test_enqueue_wakes_the_agents_queue_marker(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("a", agent="writer"))
    assert await b.redis.zcard(b.keys.wake("writer")) == 1
    assert await b.redis.zcard(b.keys.wake("other")) == 0


async def test_enqueue_many_tasks_in_one_call_keeps_them_all(any_broker: Broker) -> None:
    b = any_broker
    subs = [submission(st("x"), st("y")) for _ in range(50)]
    res = await enqueue(b, subs)
    assert len({r.task_id for r in res}) == 50
    assert await b.redis.zcard(b.keys.jobs) == 100
    assert await b.redis.zcard(b.keys.queue("a")) == 100


async def test_same_idempotency_key_returns_the_same_task(any_broker: Broker) -> None:
    b = any_broker
    first = await enqueue_task(b, st("a"), idem="order-42")
    again = await enqueue_task(b, st("a"), idem="order-42")
    other = await enqueue_task(b, st("a"), idem="order-43")
    assert again.duplicate and again.task_id == first.task_id and again.job_ids == []
    assert not other.duplicate and other.task_id != first.task_id
    assert await b.redis.zcard(b.keys.tasks) == 2
    assert await b.redis.zcard(b.keys.jobs) == 2


async def test_invalid_graphs_and_oversized_inputs_are_refused_before_anything_is_written(
    any_broker: Broker,
) -> None:
    b = any_broker
    with pytest.raises(ValidationFailed, match="cycle"):
        await enqueue_task(b, st("a", deps=("b",)), st("b", deps=("a",)))
    with pytest.raises(ValidationFailed, match="unknown subtask 'zz'"):
        await enqueue_task(b, st("a", deps=("zz",)))
    with pytest.raises(ValidationFailed, match="description"):
        await enqueue(b, [submission(st("a")).model_copy(update={"description": "  "})])
    small = variant(b, max_payload_bytes=64)
    with pytest.raises(PayloadTooLarge, match=r"subtasks\[0\].input"):
        await enqueue(small, [submission(st("a").model_copy(update={"input": "x" * 100}))])
    assert await b.redis.zcard(b.keys.jobs) == 0
    assert await b.redis.zcard(b.keys.tasks) == 0


async def test_concurrent_enqueue_calls_share_script_calls_and_each_gets_its_own_task(
    any_broker: Broker,
) -> None:
    b = any_broker
    await enqueue(b, [submission(st("warm"))])  # scripts loaded
    await b.node_command("CONFIG RESETSTAT")  # on the namespace's node (a cluster's too)
    results = await asyncio.gather(*(enqueue(b, [submission(st("x"))]) for _ in range(50)))
    calls = (await b.node_command("INFO", "commandstats"))["cmdstat_evalsha"]["calls"]
    task_ids = {r[0].task_id for r in results}
    assert len(task_ids) == 50
    assert calls < 10  # the first call alone, then the other 49 together (a few under load)
    assert await b.redis.zcard(b.keys.queue("a")) == 51
    for r in results:
        assert await places_of(b, r[0].job_ids[0]) == ["waiting"]


async def test_an_error_in_a_shared_enqueue_call_reaches_every_caller(any_broker: Broker) -> None:
    b = any_broker
    await b.redis.lpush(b.keys.queue("a"), "foreign")  # another app took our queue key's name
    results = await asyncio.gather(
        *(enqueue(b, [submission(st("x"))]) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, WrongTypeError) for r in results), results
    assert await b.redis.zcard(b.keys.jobs) == 0  # nothing half-written
    await b.redis.delete(b.keys.queue("a"))


async def test_a_many_chunk_call_keeps_fifo_order_across_its_chunks(any_broker: Broker) -> None:
    b = any_broker
    await enqueue(b, [submission(st("warm"))])  # scripts loaded
    await b.redis.config_resetstat()
    res = await enqueue(b, [submission(st("x")) for _ in range(3 * CHUNK_JOBS)])
    calls = (await b.redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    assert calls >= 2  # sent in chunks, not one script call
    queued = [str(m) for m in await b.redis.zrange(b.keys.queue("a"), 0, -1)]
    assert queued[1:] == [r.job_ids[0] for r in res]  # the order of the call, after "warm"


async def test_a_foreign_queue_key_of_a_later_chunks_agent_fails_the_call_before_any_write(
    any_broker: Broker,
) -> None:
    b = any_broker
    subs = [submission(st("x", agent="a")) for _ in range(CHUNK_JOBS)]
    subs += [submission(st("x", agent="b")) for _ in range(CHUNK_JOBS)]
    await b.redis.lpush(b.keys.queue("b"), "foreign")
    with pytest.raises(WrongTypeError, match=r"q:b"):
        await enqueue(b, subs)
    assert await b.redis.zcard(b.keys.jobs) == 0  # not even the first chunk, which has only agent a
    await b.redis.delete(b.keys.queue("b"))


async def test_a_bad_last_task_fails_a_many_chunk_call_before_any_write(any_broker: Broker) -> None:
    b = any_broker
    small = variant(b, max_payload_bytes=64)
    subs = [submission(st("x")) for _ in range(3 * CHUNK_JOBS)]
    subs.append(submission(st("a").model_copy(update={"input": "x" * 100})))
    with pytest.raises(PayloadTooLarge, match=r"subtasks\[0\].input"):
        await enqueue(small, subs)
    assert await b.redis.zcard(b.keys.jobs) == 0


async def test_a_chunk_failing_in_redis_reports_which_tasks_were_enqueued(any_broker: Broker) -> None:
    b = any_broker
    subs = [submission(st("x")) for _ in range(3 * CHUNK_JOBS)]
    subs[CHUNK_JOBS + 5] = submission(st("x"), idem="taken")  # in the second chunk
    await b.redis.hset(b.keys.key("idem:taken"), "foreign", "1")  # another app's hash on our key
    with pytest.raises(EnqueueIncomplete) as caught:
        await enqueue(b, subs)
    assert isinstance(caught.value.cause, WrongTypeError)
    enqueued = [r.task_id for r in caught.value.enqueued]
    # the first chunk made it; the failed one (merged with the third when that was waiting) did not
    assert len(enqueued) in (CHUNK_JOBS, 2 * CHUNK_JOBS)
    assert f"{len(enqueued)} of {3 * CHUNK_JOBS} tasks were enqueued" in str(caught.value)
    assert set(await b.redis.zrange(b.keys.tasks, 0, -1)) == set(enqueued)  # and nothing else
    assert await b.redis.zcard(b.keys.jobs) == len(enqueued)
    await b.redis.delete(b.keys.key("idem:taken"))


async def test_tasks_enqueued_in_the_same_millisecond_list_newest_first(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue(b, [submission(st("x")) for _ in range(20)])  # one script call, one ms
    page = (await list_tasks(b, limit=20)).items
    assert [t.id for t in page] == [r.task_id for r in reversed(res)]


async def test_one_stream_entry_per_64_tasks_expands_to_each_tasks_events(any_broker: Broker) -> None:
    b = any_broker
    first = await enqueue_task(b, st("a"), st("b", deps=("a",)))
    assert await b.redis.xlen(b.keys.events) == 1  # one atomic enqueue, one entry
    events = await stream_events(b)
    assert len({e.id for e in events}) == 1
    assert [(e.type, e.task, e.job, e.to) for e in events] == [
        ("task", first.task_id, None, "queued"),
        ("job", first.task_id, first.job_ids[0], "waiting"),
        ("job", first.task_id, first.job_ids[1], "blocked"),
    ]
    assert events[0].data == {"total": 2}
    many = await enqueue(b, [submission(st("x")) for _ in range(100)])
    assert await b.redis.xlen(b.keys.events) == 1 + 2  # 64 + 36 tasks
    later = (await stream_events(b))[3:]
    assert [e.task for e in later if e.type == "task"] == [r.task_id for r in many]
    assert [e.job for e in later if e.type == "job"] == [r.job_ids[0] for r in many]
    again = await enqueue(b, [submission(st("x"), idem="k1"), submission(st("x"), idem="k1")])
    assert again[1].duplicate and again[1].task_id == again[0].task_id
    assert [e.task for e in (await stream_events(b))[203:] if e.type == "task"] == [again[0].task_id]


async def test_a_jobs_custody_history_starts_with_its_enqueue(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("a"), st("b", deps=("a",)))
    assert await b.redis.exists(b.keys.job_log(res.job_ids[0])) == 0  # no per-job write at enqueue
    [entry] = [e for e in await stream_events(b) if e.type == "task"]  # the task's enqueue
    for job_id, first in zip(res.job_ids, ("waiting", "blocked"), strict=True):
        [enq] = await job_history(b, job_id)
        assert (enq.id, enq.job, enq.task, enq.frm, enq.to) == (entry.id, job_id, res.task_id, "", first)
        assert enq.reason == f"enqueued by {b.identity}" and enq.ts == entry.ts
    await claim(b, "w1", ["a"], 1)
    assert [e.to for e in await job_history(b, res.job_ids[0])] == ["waiting", "active"]


async def test_a_subtasks_own_settings_are_kept_and_the_rest_come_from_the_producers_defaults(
    any_broker: Broker,
) -> None:
    b = variant(any_broker, max_attempts=4, job_timeout_s=90.0)
    res = await enqueue_task(
        b, st("own", priority=2, max_attempts=7, timeout_s=1.5, title="Mine"), st("plain"), priority=6
    )
    own, plain = await get_jobs(b, res.job_ids)
    assert (own.priority, own.max_attempts, own.timeout_s, own.title) == (2, 7, 1.5, "Mine")
    assert (plain.priority, plain.max_attempts, plain.timeout_s, plain.title) == (6, 4, 90.0, None)
    assert own.max_deliveries == plain.max_deliveries == b.settings.retry.max_deliveries
