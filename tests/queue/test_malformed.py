"""Foreign data on our keys: garbage is quarantined with a reason, a wrong Redis type is named,
and a stray list pop on a queue key fails loudly instead of stealing."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from hiveq.contract.errors import Conflict, WrongTypeError
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task, list_dead
from hiveq.queue.retry import Failure, discard_dead, fail, retry_dead
from tests.queue.helpers import enqueue_task, last_event, places_of, st


async def test_a_foreign_member_in_a_queue_is_quarantined_with_a_reason_not_dropped(
    any_broker: Broker,
) -> None:
    b = any_broker
    real = await enqueue_task(b, st("x"))
    await b.redis.zadd(b.keys.queue("a"), {"garbage-from-elsewhere": 0})
    assert (await audit(b)).strays == ["garbage-from-elsewhere"]  # seen before anyone claims it
    jobs = await claim(b, "w", ["a"], 5)
    assert [j.id for j in jobs] == real.job_ids  # the real job is still handed out
    rec = await get_job(b, "garbage-from-elsewhere")
    assert rec.state == "quarantined"
    assert rec.reason and "no job record" in rec.reason and b.keys.queue("a") in rec.reason
    assert await places_of(b, "garbage-from-elsewhere") == ["quarantined"]
    assert (await last_event(b, "garbage-from-elsewhere")).to == "quarantined"
    assert "garbage-from-elsewhere" in [j.id for j in await list_dead(b)]
    assert (await audit(b)).ok


async def test_a_foreign_list_where_we_keep_a_queue_zset_raises_an_error_naming_key_and_types(
    any_broker: Broker,
) -> None:
    b = any_broker
    await b.redis.lpush(b.keys.queue("a"), "celery-job")
    with pytest.raises(WrongTypeError) as err:
        await enqueue_task(b, st("x"))
    e = err.value
    assert (e.key, e.found, e.expected) == (b.keys.queue("a"), "list", "zset")
    assert "Another application is probably using the same key name" in str(e)
    # Nothing half-written: the failed enqueue left no task or job behind.
    assert await b.redis.zcard(b.keys.jobs) == 0
    assert await b.redis.zcard(b.keys.tasks) == 0
    assert await b.redis.lrange(b.keys.queue("a"), 0, -1) == ["celery-job"]


async def test_a_foreign_type_on_a_fixed_key_is_named(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await b.redis.set(b.keys.delayed, "oops")
    with pytest.raises(WrongTypeError) as err:
        await fail(b, [Failure(job.lease, "e")])
    assert (err.value.key, err.value.found, err.value.expected) == (b.keys.delayed, "string", "zset")
    await b.redis.delete(b.keys.delayed)
    assert await places_of(b, job.id) == ["active"]  # the job did not leave its lease


async def test_a_stray_list_pop_on_a_queue_key_fails_loudly_and_takes_nothing(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    q = b.keys.queue("a")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await b.redis.brpop([q], timeout=1)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await b.redis.lpop(q)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await b.redis.rpoplpush(q, "someone-elses-list")
    assert await b.redis.zrange(q, 0, -1) == res.job_ids
    assert (await audit(b)).ok


async def test_a_dependent_released_into_a_foreign_queue_key_is_quarantined_not_lost(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("first"), st("second", agent="other", deps=("first",)))
    await b.redis.lpush(b.keys.queue("other"), "foreign")  # appears after the task was enqueued
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, "ok")])
    second = await get_job(b, res.job_ids[1])
    assert second.state == "quarantined" and second.reason
    assert b.keys.queue("other") in second.reason and "holds a list" in second.reason
    assert await places_of(b, second.id) == ["quarantined"]
    assert (await get_task(b, res.task_id)).status == "failed"
    assert await b.redis.lrange(b.keys.queue("other"), 0, -1) == ["foreign"]


async def test_a_foreign_member_quarantined_from_a_queue_can_be_discarded_but_not_retried(
    any_broker: Broker,
) -> None:
    b = any_broker
    await b.redis.zadd(b.keys.queue("a"), {"junk": 0})
    assert await claim(b, "w", ["a"], 1) == []
    with pytest.raises(Conflict):
        await retry_dead(b, "junk", "ops")
    assert await places_of(b, "junk") == ["quarantined"]
    await discard_dead(b, "junk", "ops")
    assert await places_of(b, "junk") == ["cancelled"]
    assert (await audit(b)).ok
