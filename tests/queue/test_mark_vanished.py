"""mark_vanished.lua: the only way into `vanished`. State before -> call -> state and event after."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, stats
from hiveq.queue.vanish import Seen, mark_vanished
from tests.queue.helpers import enqueue_task, last_event, members, places_of, st, stream_events

SEEN = Seen(
    suspect="10.0.0.9:5555 name='rogue' lib=redis-py/5.0 last command zpopmin",
    suspects=[{"addr": "10.0.0.9:5555", "name": "rogue", "cmd": "zpopmin"}],
    prime=["10.0.0.9:5555"],
)


async def test_a_job_popped_from_its_queue_moves_to_vanished_with_what_was_seen(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    job_id = res.job_ids[0]
    await b.redis.zpopmin(b.keys.queue("a"))
    assert await mark_vanished(b, SEEN, [(job_id, "")]) == [Code.OK]
    assert await places_of(b, job_id) == ["vanished"]
    job = await get_job(b, job_id)
    assert job.state == "vanished" and job.vanished_key == b.keys.queue("a") and not job.rebuilt
    assert job.input == {"n": "x"}  # the record is kept as it was
    assert job.suspect == SEEN.suspect and job.reason is not None
    assert job.reason.startswith(f"vanished from {b.keys.queue('a')}: taken outside hiveq")
    ev = await last_event(b, job_id)
    assert (ev.type, ev.frm, ev.to) == ("job", "waiting", "vanished")
    assert ev.data["key"] == b.keys.queue("a") and ev.data["record"] == "kept"
    assert ev.data["last_event"]["to"] == "waiting"  # its enqueue, the last custody event before
    assert ev.data["suspects"][0]["name"] == "rogue" and ev.data["recover"] == "manual"
    assert (await stats(b))["vanished"] == 1
    assert await members(b, b.keys.foreign) == ["10.0.0.9:5555"]


async def test_a_stolen_lease_ends_the_lease_and_names_its_worker(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w1", ["a"], 1)
    await b.redis.zrem(b.keys.leases, job.id)
    assert await mark_vanished(b, SEEN, [(job.id, "")]) == [Code.OK]
    h = await b.redis.hgetall(b.keys.job(job.id))
    assert h["state"] == "vanished" and "token" not in h and h["worker"] == "w1"
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.worker, ev.data["key"]) == ("active", "w1", b.keys.leases)
    assert ev.data["last_event"]["to"] == "active" and ev.data["last_event"]["agent"] == "a"


async def test_a_job_still_in_its_place_or_finished_is_left_alone(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    [first] = await claim(b, "w", ["a"], 1)
    await b.redis.zrem(b.keys.leases, first.id)
    await b.redis.zadd(b.keys.succeeded, {first.id: 1})  # gone from its place, but in another one
    codes = await mark_vanished(b, SEEN, [(res.job_ids[1], ""), (first.id, ""), ("t0.foreign", "")])
    assert codes == [Code.WRONG_STATE, Code.WRONG_STATE, Code.NOT_FOUND]
    assert await members(b, b.keys.vanished) == []
    assert "vanished" not in await stats(b)


async def test_a_deleted_record_is_rebuilt_from_its_task_queue_and_siblings(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x", priority=2), st("y", deps=("x",)), st("z", deps=("y",)), priority=2)
    x, _y, z = res.job_ids
    await b.redis.delete(b.keys.job(x), b.keys.job(z))
    codes = await mark_vanished(b, SEEN, [(x, b.keys.queue("a")), (z, b.keys.blocked)])
    assert codes == [Code.OK, Code.OK]
    assert await places_of(b, x) == ["vanished"] and await places_of(b, z) == ["vanished"]
    jx, jz = await get_job(b, x), await get_job(b, z)
    assert (jx.agent, jx.priority, jx.task_id, jx.subtask_id, jx.rebuilt) == ("a", 2, res.task_id, "x", True)
    assert jx.input is None and jx.dependents == ["y"] and jx.vanished_key == b.keys.queue("a")
    assert jz.depends_on == ["y"] and jz.dependents == [] and jz.pending_deps == 1
    assert jz.agent == "" and jz.vanished_key == b.keys.blocked  # never claimed nor queued: unknown
    assert jz.reason is not None and "its record was deleted outside hiveq" in jz.reason
    ev = await last_event(b, z)
    assert (ev.frm, ev.data["record"]) == ("blocked", "rebuilt")
    assert ev.data["last_event"]["to"] == "blocked"  # its enqueue, rebuilt from the task


async def test_an_eviction_is_named_as_such(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    await b.redis.delete(b.keys.job(res.job_ids[0]))
    seen = Seen(suspect="Redis itself", evicted="maxmemory-policy allkeys-lru; 3 keys evicted since start")
    assert await mark_vanished(b, seen, [(res.job_ids[0], b.keys.queue("a"))]) == [Code.OK]
    job = await get_job(b, res.job_ids[0])
    assert job.reason is not None
    assert job.reason.startswith(
        f"vanished from {b.keys.queue('a')}: evicted by Redis: maxmemory-policy allkeys-lru"
    )
    assert (await last_event(b, job.id)).data["evicted"].startswith("maxmemory-policy allkeys-lru")


async def test_a_foreign_record_is_left_alone_and_a_foreign_log_keeps_the_event_in_the_stream(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"), st("z"))
    x, y, z = res.job_ids
    for job_id in (x, y, z):
        await b.redis.zrem(b.keys.queue("a"), job_id)
    await b.redis.delete(b.keys.job(y))
    await b.redis.set(b.keys.job(y), "another app's value")  # its record key now holds a string
    await b.redis.set(b.keys.job_log(z), "another app's value")  # its log key holds a string
    codes = await mark_vanished(b, SEEN, [(x, ""), (y, ""), (z, "")])
    assert codes == [Code.OK, Code.WRONG_STATE, Code.OK]  # z's event is in the stream only
    assert [await places_of(b, j) for j in (x, y, z)] == [["vanished"], [], ["vanished"]]
    anomalies = [e for e in await stream_events(b) if e.type == "anomaly"]
    assert [b.keys.job_log(z) in (e.reason or "") for e in anomalies] == [True]
