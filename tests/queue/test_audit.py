"""audit: conservation. Every job is in exactly one place; a thief's take is reported by name."""

from __future__ import annotations

from hiveq.diagnose.doctor import audit_check
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.retry import Failure, fail
from tests.queue.helpers import enqueue_task, st


async def test_a_clean_namespace_audits_ok_with_every_job_counted_once(any_broker: Broker) -> None:
    b = any_broker
    assert (await audit(b)).ok
    await enqueue_task(b, st("w1"), st("w2"), st("blk", deps=("w1",)), st("d"), st("s"))
    jobs = {j.subtask_id: j for j in await claim(b, "w", ["a"], 4)}
    await complete(b, [Completion(jobs["s"].lease, 1)])
    await fail(b, [Failure(jobs["d"].lease, "e")])
    report = await audit(b)
    assert report.ok and report.total == 5
    assert {k: v for k, v in report.by_place.items() if v} == {
        "blocked": 1,
        "delayed": 1,
        "active": 2,
        "succeeded": 1,
    }


async def test_a_job_taken_by_a_raw_zpopmin_is_reported_vanished_with_its_last_custody_event(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    stolen = await b.redis.zpopmin(b.keys.queue("a"))  # a thief that knows our layout
    assert stolen[0][0] == res.job_ids[0]
    report = await audit(b)
    assert not report.ok
    [v] = report.missing
    assert (v.job_id, v.places, v.state) == (res.job_ids[0], [], "waiting")
    assert v.last_event is not None and (v.last_event.frm, v.last_event.to) == ("", "waiting")


async def test_a_job_removed_from_its_lease_by_a_raw_zrem_is_reported_vanished(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await b.redis.zrem(b.keys.leases, job.id)
    [v] = (await audit(b)).missing
    assert v.job_id == job.id and v.state == "active"
    assert v.last_event is not None and (v.last_event.to, v.last_event.worker) == ("active", "w")


async def test_a_job_in_two_places_is_reported_duplicated(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    await b.redis.zadd(b.keys.dead, {res.job_ids[0]: 1})
    [d] = (await audit(b)).duplicated
    assert d.job_id == res.job_ids[0] and sorted(d.places) == ["dead", "waiting:a"]


async def test_a_queue_key_overwritten_with_another_type_is_reported_not_raised(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    await b.redis.delete(b.keys.queue("a"))
    await b.redis.lpush(b.keys.queue("a"), "another app's item")  # the same key name, as a list
    report = await audit(b)
    assert not report.ok
    assert report.foreign_keys == {b.keys.queue("a"): "list"}
    assert [v.job_id for v in report.missing] == res.job_ids  # its job went with the old zset
    check = await audit_check(b)
    assert check.verdict == "fail" and any("holds a list" in line for line in check.lines())
    await b.redis.delete(b.keys.queue("a"))
