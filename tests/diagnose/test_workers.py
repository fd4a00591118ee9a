"""Doctor on workers and queues: a dead worker's expired leases, a queue no live worker serves,
dead letters and their growth, the oldest waiting job, and our keys holding the wrong type."""

from __future__ import annotations

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Verdict
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.registry import register_worker
from hiveq.queue.retry import Failure, fail
from tests.queue.helpers import enqueue_task, st, variant
from tests.support.waiting import until


async def test_a_dead_workers_expired_leases_and_stale_heartbeat_are_reported_with_the_fix(
    broker: Broker,
) -> None:
    b = variant(broker, lease_s=0.3, heartbeat_s=0.1, reap_interval_s=0.1)
    res = await enqueue_task(b, st("x", agent="demo"))
    await register_worker(b, "w-dead", ["demo"], 2)
    [job] = await claim(b, "w-dead", ["demo"], 1)
    # The worker stops heartbeating; nobody runs maintenance, so the lease stays expired.

    async def leases_failing() -> bool:
        report = await run_doctor(b, remember=False)
        return report.check("expired leases").verdict == Verdict.FAIL

    await until(leases_failing, 20, "the lease to be reported expired")
    report = await run_doctor(b, remember=False)
    leases = report.check("expired leases")
    assert leases.lines()[0].startswith(f"{job.id}: leased to w-dead (delivery 1 of 5)")
    assert "hiveq worker" in leases.fix
    workers = report.check("workers")
    assert workers.verdict == Verdict.WARN and "w-dead" in workers.lines()[0]
    assert "stopped heartbeating" in workers.summary
    assert res.job_ids == [job.id]


async def test_a_live_worker_with_fresh_leases_is_not_reported(broker: Broker) -> None:
    b = variant(broker, lease_s=30, heartbeat_s=1)
    await enqueue_task(b, st("x", agent="demo"))
    await register_worker(b, "w-ok", ["demo"], 2)
    [job] = await claim(b, "w-ok", ["demo"], 1)
    await heartbeat(b, "w-ok", [job.lease], 1)
    report = await run_doctor(b, remember=False)
    for name in ("expired leases", "workers", "unserved queues"):
        assert report.check(name).verdict == Verdict.OK, report.check(name)


async def test_a_queue_with_no_live_worker_for_its_agent_fails_with_the_fix(broker: Broker) -> None:
    await register_worker(broker, "w-other", ["demo"], 1)
    await enqueue_task(broker, st("x", agent="translator"), st("y", agent="demo"))
    report = await run_doctor(broker, remember=False)
    unserved = report.check("unserved queues")
    assert unserved.verdict == Verdict.FAIL
    assert "translator" in unserved.summary and "demo" not in unserved.summary
    assert "hiveq worker --agents translator" in unserved.fix
    oldest = report.check("oldest waiting job")
    assert oldest.verdict == Verdict.OK and "has waited" in oldest.summary
    assert not report.ok


async def test_dead_letters_are_counted_and_their_growth_since_the_last_run_reported(broker: Broker) -> None:
    first = await run_doctor(broker)
    assert first.check("dead letters").verdict == Verdict.OK
    await enqueue_task(broker, st("x"), st("y"))
    jobs = await claim(broker, "w", ["a"], 2)
    await fail(broker, [Failure(j.lease, "boom", fatal=True) for j in jobs])
    second = await run_doctor(broker)
    dead = second.check("dead letters")
    assert dead.verdict == Verdict.WARN
    assert "2 dead-lettered" in dead.summary and "+2 since the last doctor run" in dead.summary
    assert "hiveq dlq" in dead.fix
    third = await run_doctor(broker)
    assert "+0 since the last doctor run" in third.check("dead letters").summary
    assert await broker.redis.hget(broker.keys.key("doctor"), "dead") == "2"


async def test_one_of_our_keys_with_the_wrong_type_fails_and_names_the_key(broker: Broker) -> None:
    await broker.redis.set(broker.keys.delayed, "written by someone else")
    report = await run_doctor(broker, remember=False)
    types = report.check("key types")
    assert types.verdict == Verdict.FAIL
    assert types.evidence == [f"{broker.keys.delayed}: holds a string, hiveq keeps a zset there"]


async def test_a_healthy_namespace_passes_every_namespace_check(broker: Broker) -> None:
    await register_worker(broker, "w", ["a"], 1)
    await enqueue_task(broker, st("x"))
    report = await run_doctor(broker, remember=False)
    for name in (
        "connection",
        "namespace",
        "foreign consumers",
        "vanished jobs",
        "key types",
        "eviction policy",
        "unserved queues",
        "expired leases",
        "dead letters",
    ):
        assert report.check(name).verdict == Verdict.OK, report.check(name)
    assert report.check("vanished jobs").evidence == {"waiting:a": 1}
