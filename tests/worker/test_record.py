"""record: finished jobs reach Redis in batches (one `complete`, one `fail` call), survive an
outage in the outbox and are recorded once Redis is back, and a lease lost meanwhile is reported
by job, never counted twice. Real Redis; no worker runs here, the test plays its part."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import pytest

from hiveq.contract.errors import Code
from hiveq.contract.models import ClaimedJob
from hiveq.contract.states import JobState
from hiveq.logs import bound_logger
from hiveq.queue import cancel, fetch, inspect
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import job_history
from hiveq.server import ServerProcess
from hiveq.worker.execute import Ending, Outcome
from hiveq.worker.outbox import Outbox
from hiveq.worker.reconnect import Link
from hiveq.worker.record import Recorder
from hiveq.worker.trouble import Trouble
from tests.conftest import fresh_settings
from tests.support.waiting import until
from tests.support.worker import submit

WORKER = "w-rec"
LOG_NAME = "tests.record"


def ok(value: object) -> Outcome:
    return Outcome(Ending.OK, result=value)


async def claim_task(b: Broker, n: int) -> list[ClaimedJob]:
    """One task of `n` jobs, all leased to WORKER."""
    enq = await submit(b, "t.rec", list(range(n)))
    jobs = await fetch.claim(b, WORKER, ["t.rec"], n)
    assert sorted(j.id for j in jobs) == sorted(enq.job_ids)
    return sorted(jobs, key=lambda j: j.id)


def recorder(b: Broker, outbox: Outbox, link: Link | None = None) -> Recorder:
    log = bound_logger(LOG_NAME, worker_id=WORKER)
    return Recorder(lambda: b, outbox, link or Link(log, b.settings.redis_url), log, Trouble(log, b.keys, []))


@asynccontextmanager
async def flushing(rec: Recorder) -> AsyncIterator[Recorder]:
    task = asyncio.create_task(rec.flush_loop())
    try:
        yield rec
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def recorded(rec: Recorder, n: int) -> Callable[[], bool]:
    return lambda: rec.processed == n and len(rec.outbox) == 0


@pytest.fixture
async def own_broker(private_server: Callable[..., ServerProcess]) -> AsyncIterator[Broker]:
    """A broker on a server of its own: `script_calls` counts server-wide, so no other test's
    background loops (a watch, a schedule firer) may add calls to the count."""
    b = await Broker.connect(fresh_settings(private_server().url), role="test")
    try:
        yield b
    finally:
        await b.close()


async def script_calls(b: Broker) -> int:
    """Scripts that ran on the server (a NOSCRIPT reply before redis-py loads a script is not one)."""
    total = 0
    for name, c in (await b.redis.info("commandstats")).items():
        if name in ("cmdstat_evalsha", "cmdstat_eval"):
            total += int(c["calls"]) - int(c.get("failed_calls", 0)) - int(c.get("rejected_calls", 0))
    return total


async def test_outcomes_finishing_together_are_recorded_in_one_complete_and_one_fail_call(
    own_broker: Broker,
) -> None:
    broker = own_broker
    jobs = await claim_task(broker, 30)
    outbox = Outbox()
    before = await script_calls(broker)
    async with flushing(recorder(broker, outbox)) as rec:
        for job in jobs[:20]:
            outbox.add(job, ok({"n": job.subtask_id}))
        for job in jobs[20:]:
            outbox.add(job, Outcome(Ending.FAILED, error="rate limited"))
        await until(recorded(rec, 30), what="the outbox to be recorded")
    assert await script_calls(broker) - before == 2
    records = await inspect.get_jobs(broker, [j.id for j in jobs])
    assert [r.state for r in records] == [JobState.SUCCEEDED] * 20 + [JobState.DELAYED] * 10
    assert [r.result for r in records[:20]] == [{"n": j.subtask_id} for j in jobs[:20]]
    assert {r.error for r in records[20:]} == {"rate limited"}


async def test_a_lost_lease_is_reported_by_job_and_its_outcome_not_counted_twice(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    sent_before, fresh = await claim_task(broker, 2)
    [cancelled] = await claim_task(broker, 1)
    # An earlier send reached Redis before the connection dropped; the task of the other was cancelled.
    assert await complete(broker, [Completion(sent_before.lease, "first")]) == [Code.OK]
    await cancel.cancel_task(broker, cancelled.task_id)
    outbox = Outbox()
    with caplog.at_level(logging.WARNING, logger=LOG_NAME):
        async with flushing(recorder(broker, outbox)) as rec:
            outbox.add(sent_before, ok("again"))
            outbox.add(fresh, ok("fresh"))
            outbox.add(cancelled, Outcome(Ending.FAILED, error="late"))
            await until(recorded(rec, 3), what="the outbox to be recorded")
    stale = {getattr(r, "job_id", None): r.getMessage() for r in caplog.records if r.name == LOG_NAME}
    assert set(stale) == {sent_before.id, cancelled.id}
    assert stale[sent_before.id].startswith("result not recorded (stale_token)")
    assert stale[cancelled.id].startswith("failure not recorded (stale_token)")
    assert "not counted twice" in stale[sent_before.id]
    got = {r.id: (r.state, r.result) for r in await inspect.get_jobs(broker, [sent_before.id, fresh.id])}
    assert got == {sent_before.id: (JobState.SUCCEEDED, "first"), fresh.id: (JobState.SUCCEEDED, "fresh")}
    assert (await inspect.stats(broker))["succeeded"] == 2
    assert (await inspect.get_job(broker, cancelled.id)).state == JobState.CANCELLED


async def test_an_unusable_result_dead_letters_that_job_and_the_rest_are_recorded(broker: Broker) -> None:
    bad, good = await claim_task(broker, 2)
    outbox = Outbox()
    async with flushing(recorder(broker, outbox)) as rec:
        outbox.add(bad, ok({"ids": {1, 2}}))  # a set: not JSON
        outbox.add(good, ok([1, 2]))
        await until(recorded(rec, 2), what="the outbox to be recorded")
    b_rec, g_rec = await inspect.get_jobs(broker, [bad.id, good.id])
    assert (g_rec.state, g_rec.result) == (JobState.SUCCEEDED, [1, 2])
    assert b_rec.state == JobState.DEAD and b_rec.attempts == 1
    assert b_rec.error is not None and b_rec.error.startswith("the agent returned an unusable result")


async def test_the_final_flush_records_everything_pending_in_bounded_batches(own_broker: Broker) -> None:
    broker = own_broker
    jobs = await claim_task(broker, 5)
    outbox = Outbox(max_batch=2)
    for job in jobs:
        outbox.add(job, ok(job.subtask_id))
    rec = recorder(broker, outbox)
    before = await script_calls(broker)
    await rec.final_flush()
    assert await script_calls(broker) - before == 3  # 2 + 2 + 1
    assert rec.processed == 5 and len(outbox) == 0
    states = {r.state for r in await inspect.get_jobs(broker, [j.id for j in jobs])}
    assert states == {JobState.SUCCEEDED}


@pytest.mark.slow
async def test_outcomes_are_kept_through_an_outage_and_recorded_once_when_redis_is_back(
    private_server: Callable[..., ServerProcess], caplog: pytest.LogCaptureFixture
) -> None:
    srv = private_server(persistent=True)
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    try:
        jobs = await claim_task(b, 3)

        async def drop_idle() -> None:  # what the worker does: forget connections that died
            await b.redis.connection_pool.disconnect(inuse_connections=False)

        log = bound_logger(LOG_NAME, worker_id=WORKER)
        link = Link(log, srv.url, drop_idle=drop_idle)
        outbox = Outbox()
        with caplog.at_level(logging.WARNING, logger=LOG_NAME):
            async with flushing(recorder(b, outbox, link)) as rec:
                srv.stop()  # SIGTERM: the server writes its AOF and exits
                for job in jobs:
                    outbox.add(job, ok(job.subtask_id))
                await until(lambda: not link.up, what="the recorder to see the outage")
                # Put back, not dropped: the leases stay visible to the heartbeat meanwhile.
                assert sorted(outbox.leases(), key=lambda le: le.job_id) == [j.lease for j in jobs]
                assert rec.processed == 0
                srv.start()
                await until(recorded(rec, 3), 30, "the outbox to be recorded after the outage")
        assert link.up and link.outages == 1
        lines = [r.getMessage() for r in caplog.records if r.name == LOG_NAME]
        assert sum(m.startswith("Redis lost") for m in lines) == 1
        assert sum(m.startswith("Redis restored") for m in lines) == 1
        assert not any("not recorded" in m for m in lines), lines
        records = await inspect.get_jobs(b, [j.id for j in jobs])
        assert [(r.state, r.result) for r in records] == [(JobState.SUCCEEDED, j.subtask_id) for j in jobs]
        assert (await inspect.stats(b))["succeeded"] == 3
        for job in jobs:
            assert [e.to for e in await job_history(b, job.id)].count("succeeded") == 1
    finally:
        await b.close()
