"""expire_finished.lua and the stream cap: nothing grows without bound; dead letters are kept."""

from __future__ import annotations

from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_task
from hiveq.queue.maintain import expire_finished
from hiveq.queue.retry import Failure, discard_dead, fail
from tests.queue.helpers import enqueue_task, st, submission, variant


async def _finish(b: Broker) -> None:
    for job in await claim(b, "w", ["a"], 100):
        await complete(b, [Completion(job.lease, "ok")])


async def test_a_finished_task_is_kept_until_its_retention_passes(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    await _finish(b)
    assert await expire_finished(b) == 0
    assert (await get_task(b, res.task_id)).status == "succeeded"


async def test_past_retention_a_task_is_deleted_with_its_jobs_logs_and_idempotency_key(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)), idem="k1")
    keep = await enqueue_task(b, st("other"))
    await _finish(b)
    await _finish(b)
    k = b.keys
    assert await b.redis.exists(k.job_log(res.job_ids[0]), k.idempotency("k1")) == 2
    assert await expire_finished(variant(b, retention_s=0)) == 2  # both tasks finished
    for jid in res.job_ids:
        assert not await b.redis.exists(k.job(jid), k.job_log(jid))
        assert await b.redis.zscore(k.jobs, jid) is None
        assert await b.redis.zscore(k.succeeded, jid) is None
    assert not await b.redis.exists(k.task(res.task_id), k.idempotency("k1"))
    assert await b.redis.zscore(k.tasks, res.task_id) is None
    assert await b.redis.zcard(k.finished) == 0
    assert keep.task_id not in await b.redis.zrange(k.tasks, 0, -1)


async def test_a_task_holding_a_dead_letter_is_kept_until_the_letter_is_discarded(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e", fatal=True)])
    now = variant(b, retention_s=0)
    assert await expire_finished(now) == 0
    assert (await get_task(b, res.task_id)).status == "failed"
    await discard_dead(b, job.id, "ops")
    assert await expire_finished(now) == 1
    assert not await b.redis.exists(b.keys.task(res.task_id), b.keys.job(job.id))


async def test_an_expired_job_takes_its_tracebacks_with_it(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e", fatal=True, traceback="Traceback: e")])
    assert await b.redis.exists(b.keys.job_tracebacks(job.id)) == 1
    await discard_dead(b, job.id, "ops")
    assert await expire_finished(variant(b, retention_s=0)) == 1
    assert await b.redis.exists(b.keys.job_tracebacks(job.id)) == 0


async def test_the_event_stream_stays_capped(any_broker: Broker) -> None:
    b = variant(any_broker, events_maxlen=100)
    for _ in range(10):
        await enqueue(b, [submission(*[st(f"s{i}") for i in range(50)])])  # 510 events per round
    # XADD MAXLEN ~ trims whole stream nodes (100 entries each by default), so allow one node slack.
    assert await b.redis.xlen(b.keys.events) <= 200
