"""A foreign Redis type on a derived key (job:, job log, task:, q:, wake:, worker:, idem:) found
part-way through a script never stops it half-way: the script carries on as its header says,
every job event it emits is an edge of the transition table, and the unusual edges (a job
quarantined on its way to a foreign queue key) are the ones the table names."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import pytest

from hiveq.contract.errors import Code, WrongTypeError
from hiveq.contract.models import Event
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import last_event_id, read_events
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.inspect import get_job, get_task
from hiveq.queue.maintain import expire_finished, promote_due, reap_expired
from hiveq.queue.registry import deregister_worker, register_worker
from hiveq.queue.release import release
from hiveq.queue.retry import Failure, Quarantine, discard_dead, fail, quarantine, retry_dead
from tests.queue.helpers import (
    enqueue_task,
    job_edges,
    off_table,
    places_of,
    server_ms,
    snapshot,
    st,
    variant,
)
from tests.support.waiting import until

T = TypeVar("T")


async def emitted(b: Broker, op: Awaitable[T]) -> tuple[T, list[Event]]:
    """Run one call; return its result and the events it wrote, after checking their edges."""
    since = await last_event_id(b)
    result = await op
    _, events = await read_events(b, since, count=10_000)
    assert off_table(job_edges(events)) == [], job_edges(events)
    return result, events


def anomalies(events: list[Event]) -> list[str]:
    return [e.reason or "" for e in events if e.type == "anomaly"]


async def foreign_queue(b: Broker, agent: str = "a") -> str:
    q = b.keys.queue(agent)
    await b.redis.delete(q)
    await b.redis.lpush(q, "celery-job")
    return q


async def past(b: Broker, job_id: str, field: str) -> None:
    ms = int(await b.redis.hget(b.keys.job(job_id), field) or 0)

    async def later() -> bool:
        return await server_ms(b) > ms

    await until(later, what=f"{field} of {job_id} to pass")


async def test_promote_due_into_a_foreign_queue_key_quarantines_the_job_and_cancels_its_dependents(
    any_broker: Broker,
) -> None:
    b = variant(any_broker, backoff_base_s=0.001)
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "boom")])
    await past(b, job.id, "due")
    q = await foreign_queue(b)
    promoted, events = await emitted(b, promote_due(b))
    assert promoted == 1
    assert ("delayed", "quarantined") in job_edges(events)
    assert ("blocked", "cancelled") in job_edges(events)
    assert await places_of(b, job.id) == ["quarantined"]
    assert q in ((await get_job(b, job.id)).reason or "")
    assert (await get_task(b, res.task_id)).status == "failed"
    assert await b.redis.lrange(q, 0, -1) == ["celery-job"]


async def test_release_and_reap_into_a_foreign_queue_key_quarantine_the_active_job(
    any_broker: Broker,
) -> None:
    b = any_broker
    first = await enqueue_task(b, st("x"))
    second = await enqueue_task(b, st("x"))
    jobs = {j.id: j for j in await claim(variant(b, lease_s=0.001), "w", ["a"], 2)}
    one, two = first.job_ids[0], second.job_ids[0]
    await past(b, two, "deadline")
    await foreign_queue(b)
    codes, events = await emitted(b, release(b, [jobs[one].lease]))
    assert codes == [Code.OK] and job_edges(events) == [("active", "quarantined")]
    (requeued, dead, _), events = await emitted(b, reap_expired(b))
    assert (requeued, dead) == (1, 0) and job_edges(events) == [("active", "quarantined")]
    assert [await places_of(b, j) for j in (one, two)] == [["quarantined"], ["quarantined"]]


async def test_retry_dead_into_a_foreign_queue_key_quarantines_again_from_dead_and_from_quarantine(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "boom", fatal=True)])
    await foreign_queue(b)
    _, events = await emitted(b, retry_dead(b, job.id, "ops"))
    assert job_edges(events) == [("dead", "quarantined")]
    _, events = await emitted(b, retry_dead(b, job.id, "ops"))
    assert job_edges(events) == [("quarantined", "quarantined")]
    task = await get_task(b, res.task_id)
    assert (task.status, await places_of(b, job.id)) == ("failed", ["quarantined"])
    assert int(await b.redis.hget(b.keys.task(res.task_id), "dead") or 0) == 1  # counted once


async def test_complete_releasing_a_dependent_into_a_foreign_queue_key_quarantines_it(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", agent="other", deps=("x",)))
    await foreign_queue(b, "other")
    [job] = await claim(b, "w", ["a"], 1)
    codes, events = await emitted(b, complete(b, [Completion(job.lease, "ok")]))
    assert codes == [Code.OK]
    assert job_edges(events) == [("active", "succeeded"), ("blocked", "quarantined")]
    assert await places_of(b, res.job_ids[1]) == ["quarantined"]


async def test_claim_quarantines_a_queue_member_whose_record_key_holds_a_foreign_type(
    any_broker: Broker,
) -> None:
    b = any_broker
    bad = (await enqueue_task(b, st("x"), priority=1)).job_ids[0]
    good = (await enqueue_task(b, st("x"), priority=2)).job_ids[0]
    await b.redis.delete(b.keys.job(bad))
    await b.redis.set(b.keys.job(bad), "clobbered")
    jobs, events = await emitted(b, claim(b, "w", ["a"], 5))
    assert [j.id for j in jobs] == [good]  # the second head is still handed out
    assert job_edges(events) == [("waiting", "quarantined"), ("waiting", "active")]
    assert "holds a string" in (events[0].reason or "") and b.keys.job(bad) in (events[0].reason or "")
    assert await b.redis.get(b.keys.job(bad)) == "clobbered"  # the record is left as is
    assert await b.redis.zscore(b.keys.quarantine, bad) is not None


async def test_a_foreign_record_in_a_batch_is_not_found_and_the_other_jobs_go_through(
    any_broker: Broker,
) -> None:
    b = any_broker
    await register_worker(b, "w", ["a"], 4)
    await enqueue_task(b, *[st(f"s{i}") for i in range(4)])
    jobs = await claim(b, "w", ["a"], 4)
    ids = [j.id for j in jobs]
    for j in jobs[1:]:  # every job after the first: the script has written by then
        await b.redis.delete(b.keys.job(j.id))
        await b.redis.set(b.keys.job(j.id), "clobbered")
    beat, _ = await emitted(b, heartbeat(b, "w", [j.lease for j in jobs], 4))
    assert beat.lost == ids[1:]
    codes, events = await emitted(
        b, complete(b, [Completion(jobs[0].lease, "ok"), Completion(jobs[1].lease, "ok")])
    )
    assert codes == [Code.OK, Code.NOT_FOUND]
    assert any(b.keys.job(ids[1]) in r for r in anomalies(events))
    codes, _ = await emitted(b, fail(b, [Failure(jobs[2].lease, "e", traceback="Traceback …")]))
    assert codes == [Code.NOT_FOUND]
    await b.redis.zadd(b.keys.leases, {ids[3]: 0})  # its lease has expired
    (requeued, dead, _), events = await emitted(b, reap_expired(b))
    assert (requeued, dead) == (0, 0)
    assert any(b.keys.job(ids[3]) in r and "lease was dropped" in r for r in anomalies(events))
    assert await b.redis.zscore(b.keys.leases, ids[3]) is None


async def test_a_foreign_task_record_leaves_its_counters_alone_but_the_job_completes(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await b.redis.delete(b.keys.task(res.task_id))
    await b.redis.set(b.keys.task(res.task_id), "clobbered")
    codes, events = await emitted(b, complete(b, [Completion(job.lease, "ok")]))
    assert codes == [Code.OK] and job_edges(events) == [("active", "succeeded")]
    assert any(b.keys.task(res.task_id) in r for r in anomalies(events))
    assert await places_of(b, job.id) == ["succeeded"]


async def test_cancel_skips_a_job_whose_record_is_foreign_and_cancels_the_rest(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"), st("z", deps=("y",)))
    jx, jy, jz = res.job_ids
    await b.redis.delete(b.keys.job(jx))
    await b.redis.set(b.keys.job(jx), "clobbered")
    n, events = await emitted(b, cancel_task(b, res.task_id))
    assert n == 2 and job_edges(events) == [("waiting", "cancelled"), ("blocked", "cancelled")]
    assert [await places_of(b, j) for j in (jy, jz)] == [["cancelled"], ["cancelled"]]
    assert any(b.keys.job(jx) in r for r in anomalies(events))


async def test_foreign_wake_log_and_worker_keys_cost_the_hint_the_log_row_and_the_host_only(
    any_broker: Broker,
) -> None:
    b = any_broker
    wake, worker = b.keys.wake("a"), b.keys.worker("w")
    await b.redis.set(wake, "x")
    await b.redis.set(worker, "x")
    res, events = await emitted(b, enqueue_task(b, st("x")))
    assert any(wake in r for r in anomalies(events))
    job_id = res.job_ids[0]
    log = b.keys.job_log(job_id)
    await b.redis.set(log, "x")
    [job], events = await emitted(b, claim(b, "w", ["a"], 1))
    assert job.id == job_id and job_edges(events) == [("waiting", "active")]
    claimed = next(e for e in events if e.type == "job")
    assert (claimed.worker, claimed.host) == ("w", None)  # named by id only
    assert any(log in r for r in anomalies(events))
    assert (await heartbeat(b, "w", [job.lease], 1)).registered is False
    assert await b.redis.get(log) == "x" and await b.redis.get(wake) == "x"


async def test_expire_finished_leaves_a_foreign_idempotency_key_alone(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), idem="k1")
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, "ok")])
    idem = b.keys.idempotency("k1")
    await b.redis.delete(idem)
    await b.redis.rpush(idem, "someone else's")
    deleted, _ = await emitted(b, expire_finished(variant(b, retention_s=0)))
    assert deleted == 1
    assert not await b.redis.exists(b.keys.task(res.task_id), b.keys.job(job.id))
    assert await b.redis.lrange(idem, 0, -1) == ["someone else's"]
    report = await audit(b, with_history=False)
    assert report.total == 0 and report.ok


async def test_register_refuses_a_foreign_worker_record_before_writing_and_deregister_removes_one(
    any_broker: Broker,
) -> None:
    b = any_broker
    worker = b.keys.worker("w")
    await b.redis.rpush(worker, "someone else's")
    before = await snapshot(b)
    with pytest.raises(WrongTypeError) as err:
        await register_worker(b, "w", ["a"], 1)
    assert (err.value.key, err.value.found) == (worker, "list")
    assert await snapshot(b) == before
    _, events = await emitted(b, deregister_worker(b, "w"))
    [stopped] = [e for e in events if e.type == "worker"]
    assert (stopped.worker, stopped.to, stopped.host) == ("w", "stopped", None)
    assert not await b.redis.exists(worker)


async def test_quarantine_and_discard_with_a_foreign_task_record_move_the_job_and_report_the_key(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    [job] = await claim(b, "w", ["a"], 1)
    task = b.keys.task(res.task_id)
    await b.redis.delete(task)
    await b.redis.set(task, "clobbered")
    code, events = await emitted(b, quarantine(b, Quarantine(job.lease, "undecodable")))
    assert code == Code.OK
    assert job_edges(events) == [("active", "quarantined"), ("blocked", "cancelled")]
    assert any(task in r for r in anomalies(events))
    _, events = await emitted(b, discard_dead(b, job.id, "ops"))
    assert job_edges(events) == [("quarantined", "cancelled")]
    assert any(task in r for r in anomalies(events))
    assert await b.redis.get(task) == "clobbered"


async def test_a_foreign_tracebacks_key_drops_the_traceback_and_the_failure_is_recorded(
    any_broker: Broker,
) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    tracebacks = b.keys.job_tracebacks(job.id)
    await b.redis.set(tracebacks, "x")
    codes, events = await emitted(b, fail(b, [Failure(job.lease, "boom", traceback="Traceback …")]))
    assert codes == [Code.OK] and job_edges(events) == [("active", "delayed")]
    assert any(tracebacks in r and "traceback of this failure was dropped" in r for r in anomalies(events))
    assert await b.redis.hmget(b.keys.job(job.id), ["state", "error"]) == ["delayed", "boom"]
    assert await b.redis.get(tracebacks) == "x"
