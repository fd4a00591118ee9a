"""reap_expired.lua: expired leases go back to the queue (delivery counted) or, after the
delivery limit, to the dead letters; workers that stopped heartbeating are dropped."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.inspect import get_job, get_task, list_dead
from hiveq.queue.maintain import maintain, reap_expired
from hiveq.queue.registry import list_workers, register_worker
from tests.queue.helpers import enqueue_task, last_event, places_of, st, stream_events, variant
from tests.support.waiting import until

TINY = {"lease_s": 0.01}


async def _reaped(b: Broker) -> int:
    requeued, dead, _ = await reap_expired(b)
    return requeued + dead


async def test_a_live_lease_is_not_reaped(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await reap_expired(b) == (0, 0, 0)
    assert await places_of(b, job.id) == ["active"]


async def test_an_expired_lease_goes_back_to_waiting_and_the_old_worker_is_refused(
    any_broker: Broker,
) -> None:
    b = any_broker
    await register_worker(b, "dead-worker", ["a"], 1)
    await enqueue_task(b, st("x"))
    [job] = await claim(variant(b, **TINY), "dead-worker", ["a"], 1)
    assert await until(lambda: _reaped(b), what="lease expiry") == 1
    rec = await get_job(b, job.id)
    assert (rec.state, rec.attempts) == ("waiting", 1)
    assert await places_of(b, job.id) == ["waiting"]
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.to, ev.worker, ev.attempt) == ("active", "waiting", "dead-worker", 1)
    assert ev.reason == "lease expired: worker dead-worker missed its heartbeats"
    assert ev.host and ev.pid  # the reaped worker's identity is on the record
    [again] = await claim(b, "w2", ["a"], 1)
    assert again.attempt == 2  # the delivery count went up
    assert await complete(b, [Completion(job.lease, "late")]) == [Code.STALE_TOKEN]
    assert (await heartbeat(b, "dead-worker", [job.lease], 1)).lost == [job.id]


async def test_a_job_that_keeps_killing_its_worker_is_dead_lettered_after_the_delivery_limit(
    any_broker: Broker,
) -> None:
    b = variant(any_broker, max_deliveries=3)
    res = await enqueue_task(b, st("poison"), st("after", deps=("poison",)))
    short = variant(b, **TINY)
    for delivery in range(1, 4):
        [job] = await claim(short, f"w{delivery}", ["a"], 1)
        assert job.attempt == delivery
        assert await until(lambda: _reaped(b), what="lease expiry") == 1
    rec = await get_job(b, res.job_ids[0])
    assert rec.state == "dead" and rec.reason and "delivered 3 times" in rec.reason
    assert await places_of(b, rec.id) == ["dead"]
    assert (await last_event(b, rec.id)).worker == "w3"
    assert await places_of(b, res.job_ids[1]) == ["cancelled"]
    assert (await get_task(b, res.task_id)).status == "failed"
    assert [j.id for j in await list_dead(b)] == [rec.id]
    assert await claim(b, "w", ["a"], 1) == []


async def test_a_worker_that_stopped_heartbeating_is_dropped_with_an_event(any_broker: Broker) -> None:
    b = variant(any_broker, lease_s=0.01, heartbeat_s=0.001)  # stale after 30 ms
    await register_worker(b, "gone", ["a"], 1)
    await register_worker(b, "alive", ["a"], 1)

    async def only_alive_left() -> bool:
        await heartbeat(b, "alive", {}, 0)
        m = await maintain(b)
        return m.workers_lost == 1

    await until(only_alive_left, what="stale worker to be dropped")
    assert [w.id for w in await list_workers(b)] == ["alive"]
    lost = [e for e in await stream_events(b) if e.type == "worker" and e.to == "lost"]
    assert [(e.worker, e.frm) for e in lost] == [("gone", "alive")]
    assert lost[0].pid and lost[0].host
