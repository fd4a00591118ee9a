"""promote_due.lua: delayed jobs whose retry time has come go back to their queue."""

from __future__ import annotations

from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job
from hiveq.queue.maintain import promote_due
from hiveq.queue.retry import Failure, fail
from tests.queue.helpers import enqueue_task, last_event, places_of, st, variant
from tests.support.waiting import until


async def test_a_delayed_job_is_not_promoted_before_it_is_due(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=60.0)
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e")])
    assert await promote_due(b) == 0
    assert await places_of(b, job.id) == ["delayed"]


async def test_a_due_job_returns_to_its_queue_at_its_original_priority(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=0.005)
    await enqueue_task(b, st("x", priority=2))
    [job] = await claim(b, "w", ["a"], 1)
    original = await b.redis.hget(b.keys.job(job.id), "score")
    await fail(b, [Failure(job.lease, "e")])
    assert await until(lambda: promote_due(b), what="promotion") == 1
    assert await places_of(b, job.id) == ["waiting"]
    assert await b.redis.zscore(b.keys.queue("a"), job.id) == float(original or 0)
    rec = await get_job(b, job.id)
    assert (rec.state, rec.due_ms) == ("waiting", None)
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.to, ev.reason) == ("delayed", "waiting", "retry backoff elapsed")
    [again] = await claim(b, "w", ["a"], 1)
    assert again.id == job.id and again.attempt == 2
