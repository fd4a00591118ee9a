"""Durable agents on real worker processes (`python -m hiveq.worker`) and a real server: steps
survive a SIGKILL, a parent waiting for children holds no slot, signals reach waits exactly once
(sent before, during, twice; or a timeout), and a wait survives a worker SIGKILL and a Redis
restart with AOF. Side effects are counted in Redis outside hiveq's namespace (`sidefx:`)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator

import pytest

from hiveq.contract.models import JobRecord
from hiveq.contract.states import JobState
from hiveq.queue import inspect, registry
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.events import job_history
from hiveq.queue.suspend import signal as send_signal
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.conftest import fresh_settings
from tests.support.agents import sidefx_key
from tests.support.waiting import until
from tests.support.worker import kill_group, spawn_worker, stop_proc, submit

pytestmark = pytest.mark.slow


def fast_worker(settings: Settings, agents: str, **env: str) -> subprocess.Popen[bytes]:
    """A worker whose leases last 1 s: a killed one is noticed within about a second."""
    fast = {"HIVEQ_LEASE_SECONDS": "1", "HIVEQ_REAP_INTERVAL": "0.1", **env}
    return spawn_worker(settings, agents, concurrency=4, processes=1, log=None, **fast)


async def state_is(b: Broker, job_id: str, state: JobState, wait_s: float = 30.0) -> JobRecord:
    async def check() -> JobRecord | None:
        job = await inspect.get_job(b, job_id)
        return job if job.state == state else None

    found: JobRecord = await until(check, wait_s, f"{job_id} to be {state}")
    return found


async def counted(b: Broker, job_id: str, what: str) -> int:
    return int(await b.redis.get(sidefx_key(job_id, what)) or 0)


@pytest.fixture
async def sidefx(broker: Broker) -> AsyncIterator[None]:
    yield
    async for key in broker.redis.scan_iter(match="sidefx:*"):
        await broker.redis.delete(key)


@pytest.mark.usefixtures("sidefx")
async def test_a_sigkill_between_two_steps_runs_the_first_once_and_the_next_worker_finishes(
    broker: Broker,
) -> None:
    b = broker
    [jid] = (await submit(b, "t.two_steps", [None])).job_ids
    first = fast_worker(b.settings, "t.two_steps", HIVEQ_TEST_HANG_BETWEEN="1")
    try:

        async def first_step_stored() -> bool:
            return any(e.type == "step" for e in await job_history(b, jid))

        await until(first_step_stored, 30, "the first step to be stored")
        kill_group(first, signal.SIGKILL)
        first.wait(10)
    finally:
        kill_group(first)
    second = fast_worker(b.settings, "t.two_steps")
    try:
        job = await state_is(b, jid, JobState.SUCCEEDED)
    finally:
        assert stop_proc(second) == 0
    assert await counted(b, jid, "first") == 1  # its side effect happened exactly once
    assert await counted(b, jid, "second") == 1
    assert job.result == {"first": 1, "second": 1, "attempt": 2}  # the stored result, on delivery 2
    history = await job_history(b, jid)
    takers = [e.worker for e in history if e.to == "active"]
    steps = [(e.reason, e.worker) for e in history if e.type == "step"]
    assert len(takers) == 2 and takers[0] != takers[1]
    assert steps == [("first", takers[0]), ("second", takers[1])]
    assert (await audit(b)).ok


@pytest.mark.usefixtures("sidefx")
async def test_a_parent_waiting_for_three_children_on_one_slot_lets_them_run_and_gets_their_results(
    broker: Broker,
) -> None:
    b = broker
    [jid] = (await submit(b, "t.fan_out", [[1, 2, 3]])).job_ids
    proc = spawn_worker(b.settings, "t.fan_out,t.square", concurrency=1)
    try:
        job = await state_is(b, jid, JobState.SUCCEEDED)
        [worker] = await registry.list_workers(b)
    finally:
        assert stop_proc(proc) == 0
    assert job.result is not None
    assert (job.result["sum"], job.result["results"], job.result["runs"]) == (14, [1, 4, 9], 2)
    kids = await inspect.get_jobs(b, job.result["children"])
    assert [k.state for k in kids] == [JobState.SUCCEEDED] * 3 and {k.worker for k in kids} == {worker.id}
    moves = [(e.frm, e.to) for e in await job_history(b, jid) if e.type == "job"]
    assert moves == [
        ("", "waiting"),
        ("waiting", "active"),
        ("active", "suspended"),  # its slot is given back: the one slot runs the children
        ("suspended", "waiting"),
        ("waiting", "active"),
        ("active", "succeeded"),
    ]
    task = await inspect.get_task(b, job.task_id)
    assert (task.status, task.total, task.succeeded) == ("succeeded", 4, 4)


async def test_a_signal_sent_before_the_wait_is_received_without_suspending(broker: Broker) -> None:
    b = broker
    [jid] = (await submit(b, "t.approval", [None])).job_ids
    sent = await send_signal(b, jid, "approval", {"ok": True}, "ann")
    assert not sent.delivered and sent.pending == 1
    proc = spawn_worker(b.settings, "t.approval")
    try:
        job = await state_is(b, jid, JobState.SUCCEEDED)
    finally:
        assert stop_proc(proc) == 0
    assert job.result == {"approval": {"ok": True}}
    assert "suspended" not in [e.to for e in await job_history(b, jid)]


async def test_a_signal_sent_during_the_wait_resumes_the_job_on_a_worker(broker: Broker) -> None:
    b = broker
    [jid] = (await submit(b, "t.approval", [None])).job_ids
    proc = spawn_worker(b.settings, "t.approval")
    try:
        await state_is(b, jid, JobState.SUSPENDED)
        assert (await registry.list_workers(b))[0].running == 0  # the wait holds no slot
        sent = await send_signal(b, jid, "approval", "yes", "ann")
        assert sent.delivered
        job = await state_is(b, jid, JobState.SUCCEEDED)
    finally:
        assert stop_proc(proc) == 0
    assert job.result == {"approval": "yes"}
    assert (await inspect.get_job(b, jid)).output_bytes == len("asking\ngot 'yes'\n")  # "asking" once


async def test_two_signals_for_one_wait_deliver_exactly_one_and_keep_the_other(broker: Broker) -> None:
    b = broker
    [jid] = (await submit(b, "t.approval", [{"then": "done"}])).job_ids
    proc = spawn_worker(b.settings, "t.approval")
    try:
        await state_is(b, jid, JobState.SUSPENDED)
        sent = await asyncio.gather(*(send_signal(b, jid, "approval", n, f"p{n}") for n in (1, 2)))
        [winner] = [n for n, s in zip((1, 2), sent, strict=True) if s.delivered]

        async def waits_for_done() -> bool:
            wait = (await inspect.get_job(b, jid)).wait
            return wait is not None and wait.name == "done"

        await until(waits_for_done, 30, "the job to wait for `done`")
        kept = await b.redis.lrange(b.keys.job_signals(jid), 0, -1)
        assert len(kept) == 1 and f'"data":{3 - winner}' in kept[0]  # the other one: kept, not lost
        assert (await send_signal(b, jid, "done", None, "ann")).delivered
        job = await state_is(b, jid, JobState.SUCCEEDED)
    finally:
        assert stop_proc(proc) == 0
    assert job.result == {"approval": winner}
    assert await b.redis.llen(b.keys.job_signals(jid)) == 1  # a later wait for `approval` would get it


async def test_a_signal_wait_that_times_out_raises_signal_timeout_in_the_agent(broker: Broker) -> None:
    b = broker
    [jid] = (await submit(b, "t.approval", [{"timeout_s": 0.3}])).job_ids
    proc = spawn_worker(b.settings, "t.approval", HIVEQ_REAP_INTERVAL="0.1")
    try:
        job = await state_is(b, jid, JobState.SUCCEEDED)
    finally:
        assert stop_proc(proc) == 0
    assert job.result == {"timed_out": True}
    assert any("timed out" in (e.reason or "") for e in await job_history(b, jid))


async def test_a_signal_wait_survives_a_worker_sigkill_and_a_redis_restart_with_aof(
    private_server: object,
) -> None:
    srv: ServerProcess = private_server(persistent=True)  # type: ignore[operator]
    settings = fresh_settings(srv.url)
    b = await Broker.connect(settings, role="test")
    try:
        [jid] = (await submit(b, "t.approval", [None])).job_ids
        first = fast_worker(settings, "t.approval")
        try:
            await state_is(b, jid, JobState.SUSPENDED)
            kill_group(first, signal.SIGKILL)
            first.wait(10)
        finally:
            kill_group(first)
    finally:
        await b.close()
    srv.stop()  # SIGTERM: the server writes its AOF and exits
    srv.start()
    b = await Broker.connect(settings, role="test")
    try:
        assert (await inspect.get_job(b, jid)).state == JobState.SUSPENDED  # the wait came back
        second = fast_worker(settings, "t.approval")
        try:
            sent = await send_signal(b, jid, "approval", {"after": "restart"}, "ann")
            assert sent.delivered
            job = await state_is(b, jid, JobState.SUCCEEDED)
        finally:
            assert stop_proc(second) == 0
        assert job.result == {"approval": {"after": "restart"}}
        assert (await audit(b)).ok
    finally:
        await b.close()


@pytest.mark.usefixtures("sidefx")
async def test_a_cancel_reaches_a_sync_agent_at_once_and_the_history_says_who(broker: Broker) -> None:
    b = broker
    enq = await submit(b, "t.sync_cancel", [None])
    [jid] = enq.job_ids
    proc = spawn_worker(b.settings, "t.sync_cancel")
    try:

        async def started() -> bool:
            return (await inspect.get_job(b, jid)).progress == 0.1

        await until(started, 30, "the sync agent to start")
        await cancel_task(b, enq.task_id, reason="cancelled from the CLI by ann@laptop")
        await until(lambda: counted(b, jid, "saw_cancel"), 10, "the agent to see ctx.is_cancelled()")
    finally:
        assert stop_proc(proc) == 0
    last = (await job_history(b, jid))[-1]
    assert (last.frm, last.to, last.reason) == ("active", "cancelled", "cancelled from the CLI by ann@laptop")
