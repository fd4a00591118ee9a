"""The scripts' side of outages, freezes and data loss (docs/protocol.md "Outages and freezes",
"Data loss"): reap_expired waits out a gap in `clock`; heartbeat refuses another epoch and
writes nothing; record_loss records one loss per lost epoch; complete and fail record a late
outcome in the job's custody (and a resend of one's own recorded outcome is not one)."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.epoch import EpochGuard, read_loss
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.maintain import reap
from hiveq.queue.registry import register_worker
from hiveq.queue.retry import Failure, fail
from tests.queue.helpers import enqueue_task, places_of, server_ms, snapshot, st, stream_events, variant
from tests.support.waiting import until


async def _expired(b: Broker, worker: str = "w1") -> Lease:
    """A job whose lease (claimed by `worker`) has passed its deadline; returns that lease."""
    await enqueue_task(b, st("x"))
    [job] = await claim(variant(b, lease_s=0.001), worker, ["a"], 1)
    deadline = int(await b.redis.hget(b.keys.job(job.id), "deadline") or 0)
    await until(lambda: _after(b, deadline), what="the lease deadline to pass")
    return job.lease


async def _after(b: Broker, ms: int) -> bool:
    return await server_ms(b) > ms


async def test_after_a_gap_no_expired_lease_is_reaped_for_a_lease_period(any_broker: Broker) -> None:
    b = variant(any_broker, lease_s=5.0)
    job_id = (await _expired(b)).job_id
    # Redis was away 30 s (as after a SIGKILL and an AOF restart, or a SIGSTOP): the last call
    # any worker made is that old.
    await b.redis.hset(b.keys.key("clock"), mapping={"seen": await server_ms(b) - 30_000, "up_since": 0})
    requeued, dead, lost, paused = await reap(b)
    assert (requeued, dead, lost) == (0, 0, 0) and 4_000 < paused <= 5_000
    assert await places_of(b, job_id) == ["active"]
    # A lease period after Redis came back, the dead worker's lease is reaped as usual.
    up = int(await b.redis.hget(b.keys.key("clock"), "up_since") or 0)
    await b.redis.hset(b.keys.key("clock"), "up_since", up - 5_000)
    assert (await reap(b))[:2] == (1, 0)
    assert await places_of(b, job_id) == ["waiting"]


async def test_without_a_gap_an_expired_lease_is_reaped_at_once(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w1", ["a"], 1)  # ticks the clock
    job_id = (await _expired(b)).job_id
    assert await reap(b) == (1, 0, 0, 0)
    assert await places_of(b, job_id) == ["waiting"]


async def test_heartbeat_in_another_epoch_changes_nothing_and_says_so(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w1", ["a"], 1)
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w1", ["a"], 1)
    await b.redis.hset(b.keys.meta, "epoch", "another")  # as after a loss another process noticed
    before = await snapshot(b)
    beat = await heartbeat(b, "w1", [job.lease], 1)
    assert (beat.registered, beat.epoch_ok, beat.lost) == (False, False, [])
    assert await snapshot(b) == before


async def test_record_loss_recreates_the_namespace_and_keeps_one_loss_with_every_reporters_jobs(
    any_broker: Broker,
) -> None:
    b = any_broker
    old = b.epoch
    other = variant(b)  # a second process that knew the same epoch
    await b.redis.delete(*[k async for k in b.redis.scan_iter(match=b.keys.prefix + "*")])  # FLUSHALL-like
    first = await EpochGuard(b, "w1").report(["j1", "j2"])
    second = await EpochGuard(other, "w2").report(["j3"])
    assert first is not None and second is not None
    assert first.first and not second.first
    assert first.lost_epoch == second.lost_epoch == old
    assert b.epoch == other.epoch == first.epoch != old
    loss = await read_loss(b)
    assert loss is not None
    assert (loss.jobs, loss.reported_by, loss.count) == (["j1", "j2", "j3"], ["w1", "w2"], 1)
    assert "run_id unchanged" in loss.cause  # the same server: a flush, not a restart
    meta = await b.redis.hgetall(b.keys.meta)
    assert (meta["app"], meta["previous_epoch"], meta["epoch"]) == (b.settings.app, old, b.epoch)
    assert int(meta["lost_at"]) > 0
    events = [e for e in await stream_events(b) if e.type == "data_loss"]
    assert [(e.worker, e.data["jobs"]) for e in events] == [("w1", ["j1", "j2"]), ("w2", ["j3"])]
    assert await EpochGuard(b, "w1").report([]) is None  # the new epoch is there: no loss


async def test_a_late_result_is_refused_and_recorded_in_the_jobs_custody(any_broker: Broker) -> None:
    b = any_broker
    stale = await _expired(b)
    job_id = stale.job_id
    assert (await reap(b))[0] == 1
    [fresh] = await claim(b, "w2", ["a"], 1)
    assert await complete(b, [Completion(fresh.lease, "by w2")]) == [Code.OK]
    assert await complete(b, [Completion(fresh.lease, "by w2")]) == [Code.STALE_TOKEN]  # a resend
    assert await complete(b, [Completion(stale, "by w1")]) == [Code.STALE_TOKEN]
    late = [e for e in await job_history(b, job_id) if e.type == "late"]
    assert len(late) == 1  # the resend of w2's own recorded result is not a late result
    assert (late[0].worker, late[0].attempt, late[0].data) == (
        "w1",
        1,
        {"state": "succeeded", "holder": "w2"},
    )
    assert late[0].frm is None and late[0].to is None  # not a transition: no live view moves the job
    assert "late result refused from worker w1, attempt 1" in (late[0].reason or "")


async def test_a_late_failure_is_recorded_too(any_broker: Broker) -> None:
    b = any_broker
    stale = await _expired(b)
    job_id = stale.job_id
    assert (await reap(b))[0] == 1
    assert await fail(b, [Failure(stale, "boom")]) == [Code.STALE_TOKEN]
    [late] = [e for e in await job_history(b, job_id) if e.type == "late"]
    assert (late.worker, late.attempt, late.data["state"]) == ("w1", 1, "waiting")
    assert "late failure refused from worker w1, attempt 1" in (late.reason or "")
