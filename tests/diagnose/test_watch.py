"""The conservation watch, ticked in process on real servers: every way a job can leave hiveq's
places without a hiveq script is marked vanished with the culprit named; healthy work never is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from hiveq.contract.states import JobState
from hiveq.diagnose.doctor import audit_check
from hiveq.diagnose.watch import MIN_WINDOW, Watch
from hiveq.diagnose.why import why
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, stats
from hiveq.queue.purge import purge_namespace
from hiveq.queue.retry import Failure, fail
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.diagnose.helpers import THIEF, read_line, script
from tests.queue.helpers import (
    bzpopmin,
    enqueue_task,
    last_event,
    places_of,
    st,
    submission,
    variant,
    zpopmin,
)
from tests.support.waiting import until


@contextlib.asynccontextmanager
async def thief(b: Broker) -> AsyncIterator[Redis]:
    """A plain redis-py client that knows hiveq's layout, named like a rogue process would be."""
    r = Redis.from_url(b.settings.redis_url, decode_responses=True, client_name="rogue-thief")
    try:
        yield r
    finally:
        await r.aclose()


async def test_healthy_work_is_never_marked_and_the_tripwire_stays_quiet(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=0.001, backoff_max_s=0.001)
    watch = Watch(b)
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)), st("f", max_attempts=2), st("z"))
    for _ in range(3):
        for job in await claim(b, "w", ["a"], 10):
            if job.subtask_id == "f":
                await fail(b, [Failure(job.lease, "boom")])
            else:
                await complete(b, [Completion(job.lease, 1)])
        r = await watch.tick()
        assert r.held and r.places is not None and r.places.deficit == 0
        assert (r.marked, r.searched) == ([], 0)
    assert await watch.settle() == []
    assert (await audit(b)).ok and len(res.job_ids) == 4


@pytest.mark.parametrize("place", ["queue", "blocked", "delayed", "leases"])
async def test_a_job_taken_from_any_place_is_marked_vanished_at_the_next_tick(
    any_broker: Broker, place: str
) -> None:
    b = variant(any_broker, backoff_base_s=600)
    res = await enqueue_task(b, st("x", max_attempts=3), st("y", deps=("x",)))
    x, y = res.job_ids
    key = {"queue": b.keys.queue("a"), "blocked": b.keys.blocked, "delayed": b.keys.delayed}.get(
        place, b.keys.leases
    )
    if place in ("delayed", "leases"):
        [job] = await claim(b, "w", ["a"], 1)
        if place == "delayed":
            await fail(b, [Failure(job.lease, "rate limited")])
    watch = Watch(b)
    await watch.settle()
    victim = y if place == "blocked" else x
    async with thief(b) as r:
        if place == "blocked":
            assert await r.zrem(key, victim) == 1
        else:
            assert await zpopmin(r, key) == [victim]
        report = await watch.tick()
    assert report.marked == [victim]
    assert await places_of(b, victim) == ["vanished"]
    record = await get_job(b, victim)
    assert (
        record.vanished_key == key and record.suspect is not None and "name='rogue-thief'" in record.suspect
    )
    assert ("last command zpopmin" if place != "blocked" else "last command zrem") in record.suspect
    ev = await last_event(b, victim)
    assert ev.to == "vanished" and any(s["name"] == "rogue-thief" for s in ev.data["suspects"])
    assert (await stats(b))["vanished"] == 1
    assert (await watch.tick()).searched == 0  # explained: the tripwire is quiet again
    answer = await why(b, victim)
    assert answer.state == "vanished" and f"hiveq recover {victim}" in answer.summary
    assert answer.details["key"] == key
    doctor = await audit_check(b)
    assert doctor.verdict == "fail" and doctor.summary.startswith("1 vanished of 2 jobs")
    assert (await audit(b)).ok  # conservation holds: vanished is a place


async def test_a_blocking_pop_waiting_for_the_next_job_is_named_as_the_taker(any_broker: Broker) -> None:
    b = any_broker
    watch = Watch(b)
    await watch.settle()
    async with thief(b) as r:
        take = asyncio.create_task(bzpopmin(r, b.keys.queue("a"), 30))

        async def blocked() -> bool:
            return any(
                c.get("name") == "rogue-thief" and "b" in c.get("flags", "")
                for c in await b.redis.client_list()
            )

        await until(blocked, 20, "the thief to block on the queue")
        res = await enqueue_task(b, st("x"))
        assert await take == res.job_ids[0]  # served before any claim could run
        report = await watch.tick()
    assert report.marked == res.job_ids
    job = await get_job(b, res.job_ids[0])
    assert job.suspect is not None and "name='rogue-thief'" in job.suspect and "bzpopmin" in job.suspect


async def test_a_deleted_job_record_is_found_by_the_record_sweep_and_rebuilt(any_broker: Broker) -> None:
    b = any_broker
    many = await enqueue(b, [submission(st("s")) for _ in range(MIN_WINDOW + 10)])
    victim = many[-1].job_ids[0]  # last in the queue: only the second window of the sweep reaches it
    watch = Watch(b)
    async with thief(b) as r:
        await r.delete(b.keys.job(victim))
        marked = await watch.settle()
    assert marked == [victim]
    job = await get_job(b, victim)
    assert job.state == JobState.VANISHED and job.rebuilt and job.agent == "a"
    assert job.reason is not None and "its record was deleted outside hiveq" in job.reason
    assert job.suspect is not None and "last command del" in job.suspect
    assert (await audit(b)).ok


async def test_jobs_missing_while_finished_are_counted_once_not_searched_every_tick(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, 1)])
    await b.redis.zrem(b.keys.succeeded, job.id)  # a finished job: nothing to recover
    watch = Watch(b)
    first = await watch.tick()
    assert first.searched == 1 and first.marked == [] and watch.baseline == 1
    assert (await watch.tick()).searched == 0
    assert [m.job_id for m in (await audit(b)).missing] == res.job_ids  # the audit still lists it


async def test_one_process_holds_the_watch_and_another_takes_over_when_it_stops(any_broker: Broker) -> None:
    b = any_broker
    first, second = Watch(b, "first"), Watch(b, "second")
    assert (await first.tick()).held
    report = await second.tick()
    assert (report.held, report.holder) == (False, "first")

    async def took_over() -> bool:
        return (await second.tick()).held

    await until(took_over, 10, "the second watch to take the lease over")  # first stopped ticking
    assert not (await first.tick()).held


async def test_auto_mode_recovers_at_once_and_dead_letters_a_job_stolen_again_and_again(
    any_broker: Broker,
) -> None:
    b = variant(any_broker, recover_vanished="auto", max_deliveries=3)
    res = await enqueue_task(b, st("x"))
    watch = Watch(b)
    async with thief(b) as r:
        for n in (1, 2):
            assert await zpopmin(r, b.keys.queue("a")) == res.job_ids
            report = await watch.tick()
            assert report.recovered == {res.job_ids[0]: "waiting"}
            assert (await get_job(b, res.job_ids[0])).attempts == n
        await r.zpopmin(b.keys.queue("a"))
        report = await watch.tick()
    assert report.recovered == {res.job_ids[0]: "dead"}
    job = await get_job(b, res.job_ids[0])
    assert job.reason is not None and "deliveries used up (delivery 3 of 3)" in job.reason
    assert "rogue-thief" in job.reason
    vanished = [e for e in (await b.redis.lrange(b.keys.job_log(job.id), 0, -1)) if '"to":"vanished"' in e]
    assert len(vanished) == 3 and all('"recover":"auto"' in e for e in vanished)


@pytest.mark.slow
async def test_with_sampling_on_the_monitor_sample_names_who_touched_our_keys(broker: Broker) -> None:
    b = variant(broker, watch_sample_s=1.0)
    res = await enqueue_task(b, *(st(f"s{i}") for i in range(40)))
    watch = Watch(b)
    await watch.settle()
    with script(THIEF, b.settings.redis_url, "sampled-thief", b.keys.queue("a")) as proc:
        addr = await read_line(proc)
        assert "WRONGTYPE" in await read_line(proc)
        await read_line(proc)  # it stole one and keeps stealing every 50 ms
        report = await watch.tick()
    assert report.marked
    ev = await last_event(b, report.marked[0])
    sample = ev.data["sample"]
    assert sample["allowed"] and any(
        c["addr"] == addr and "zpopmin" in c["commands"] for c in sample["clients"]
    )
    assert (await get_job(b, report.marked[0])).suspect.startswith(f"{addr} name='sampled-thief' ran zpopmin")  # type: ignore[union-attr]
    assert len(res.job_ids) == 40


async def test_with_keyspace_notifications_a_deleted_record_is_heard_of_at_the_next_tick(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server("valkey", extra=["--notify-keyspace-events", "Kgxe"])
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    try:
        many = await enqueue(b, [submission(st("s")) for _ in range(2000)])
        watch = Watch(b)
        await watch.settle()
        assert watch.events.on and watch.window() == MIN_WINDOW  # the sweep is a slow safety net now
        victim = many[-1].job_ids[0]  # the last the sweep would reach: eight ticks away
        async with thief(b) as r:
            await r.delete(b.keys.job(victim))
            report = await watch.tick()
        assert report.marked == [victim]
        assert (await get_job(b, victim)).rebuilt
    finally:
        await purge_namespace(b.redis, b.keys)
        await b.close()


@pytest.mark.slow
@pytest.mark.parametrize("notified", [False, True])
async def test_an_evicted_job_record_is_named_an_eviction_not_blamed_on_a_client(
    private_server: Callable[..., ServerProcess], notified: bool
) -> None:
    extra = ["--maxmemory-policy", "volatile-lru"] + (
        ["--notify-keyspace-events", "Kgxe"] if notified else []
    )
    srv = private_server("redis", extra=extra)
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    filler = Redis.from_url(srv.url, decode_responses=True)
    try:
        res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
        watch = Watch(b)
        await watch.settle()
        # Only keys with a TTL are evictable under volatile-lru: give one to the victim record.
        await b.redis.pexpire(b.keys.job(res.job_ids[1]), 3_600_000)
        used = int((await filler.info("memory"))["used_memory"])
        await filler.config_set("maxmemory", used + 512 * 1024)

        async def evicted() -> bool:
            with contextlib.suppress(Exception):  # OOM once nothing is left to evict
                await filler.set(f"other-app:{await filler.incr('other-app:n')}", "x" * 10_000)
            return not await b.redis.exists(b.keys.job(res.job_ids[1]))

        await until(evicted, 30, "Redis to evict the job record", interval_s=0)
        await filler.config_set("maxmemory", 0)
        marked = await watch.settle()
        assert marked == [res.job_ids[1]]
        job = await get_job(b, res.job_ids[1])
        assert job.reason is not None and "evicted by Redis: maxmemory-policy volatile-lru" in job.reason
        assert watch.events.on is notified
        assert job.suspect is not None and job.suspect.startswith("Redis itself")
    finally:
        await filler.aclose()
        await b.close()
