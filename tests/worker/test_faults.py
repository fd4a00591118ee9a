"""Process-level faults with real worker subprocesses (`python -m hiveq.worker`) on a real server:
SIGKILL, SIGTERM, a poison job that kills its worker, and a Redis outage under load."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from hiveq.contract.states import JobState
from hiveq.queue import inspect, registry
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.support.waiting import until
from tests.support.worker import kill_group, spawn_worker, stop_proc, submit

pytestmark = pytest.mark.slow


async def workers_named(b: Broker) -> set[str]:
    return {w.id for w in await registry.list_workers(b)}


async def wait_states(b: Broker, ids: list[str], state: JobState, wait_s: float = 30.0) -> None:
    async def check() -> bool:
        return all(j.state == state for j in await inspect.get_jobs(b, ids))

    await until(check, wait_s, f"{len(ids)} jobs to be {state}")


async def test_sigkilled_worker_jobs_run_again_on_another_worker_exactly_once(broker: Broker) -> None:
    enq = await submit(broker, "t.sleep", [{"s": 0.2}] * 4)
    first = spawn_worker(broker.settings, "t.sleep", concurrency=4, HIVEQ_TEST_SLEEP="600")
    try:
        await wait_states(broker, enq.job_ids, JobState.ACTIVE)
        [w1] = await workers_named(broker)
        second = spawn_worker(broker.settings, "t.sleep", concurrency=4)
        try:

            async def two() -> bool:
                return len(await workers_named(broker)) == 2

            await until(two, 30, "the second worker to register")
            [w2] = await workers_named(broker) - {w1}
            kill_group(first, signal.SIGKILL)
            killed_at = time.monotonic()
            first.wait(10)

            async def running_on_w2() -> bool:
                jobs = await inspect.get_jobs(broker, enq.job_ids)
                return all(j.worker == w2 and j.state in (JobState.ACTIVE, JobState.SUCCEEDED) for j in jobs)

            await until(running_on_w2, 30, "the jobs to run on the second worker")
            rerun_after = time.monotonic() - killed_at
            await wait_states(broker, enq.job_ids, JobState.SUCCEEDED)
        finally:
            assert stop_proc(second) == 0
    finally:
        kill_group(first)
    print(f"\nSIGKILL -> jobs running again on another worker after {rerun_after:.2f} s")
    # The product promise: a dead worker is recognised by its missed heartbeats (lease 5 s by
    # default), so its jobs run again within 10 s, not after a long lease timeout.
    assert rerun_after < 10.0
    assert (await inspect.stats(broker))["succeeded"] == 4
    for job_id in enq.job_ids:
        hist = await job_history(broker, job_id)
        assert [e.to for e in hist if e.type == "job"].count("succeeded") == 1
        takers = [e.worker for e in hist if e.to == "active"]
        assert takers == [w1, w2]
        reaped = [e for e in hist if e.frm == "active" and e.to == "waiting"]
        assert reaped and w1 in (reaped[0].reason or "")
    assert (await audit(broker)).ok


async def test_sigterm_lets_short_jobs_finish_and_hands_long_ones_back_at_once(broker: Broker) -> None:
    short = await submit(broker, "t.sleep", [{"s": 0.5}] * 2)
    long = await submit(broker, "t.sleep", [{"s": 600}] * 2)
    first = spawn_worker(broker.settings, "t.sleep", concurrency=4, HIVEQ_SHUTDOWN_GRACE="2")
    try:
        await wait_states(broker, short.job_ids + long.job_ids, JobState.ACTIVE)
        [w1] = await workers_named(broker)
        kill_group(first, signal.SIGTERM)
        sent = time.monotonic()
        assert first.wait(20) == 0
        stopped_in = time.monotonic() - sent
    finally:
        kill_group(first)
    assert stopped_in < 2 + 5  # grace + hand-back, never a 5 s lease expiry on top
    assert [j.state for j in await inspect.get_jobs(broker, short.job_ids)] == [JobState.SUCCEEDED] * 2
    assert [j.state for j in await inspect.get_jobs(broker, long.job_ids)] == [JobState.WAITING] * 2
    hist = await job_history(broker, long.job_ids[0])
    assert hist[-1].to == "waiting" and "shutting down" in (hist[-1].reason or "")
    assert await workers_named(broker) == set()  # deregistered
    second = spawn_worker(broker.settings, "t.sleep", concurrency=4, HIVEQ_TEST_SLEEP="0.01")
    try:
        await wait_states(broker, long.job_ids, JobState.SUCCEEDED)
    finally:
        stop_proc(second)
    for job_id in long.job_ids:
        takers = [e.worker for e in await job_history(broker, job_id) if e.to == "active"]
        assert len(takers) == 2 and takers[0] == w1 and takers[1] != w1


async def test_poison_job_that_kills_its_worker_is_dead_lettered(broker: Broker, tmp_path: Path) -> None:
    b = await Broker.connect(broker.settings.with_(max_deliveries=3, lease_s=1.0), role="test")
    try:
        poison = await submit(b, "t.crash", [None])
        fine = await submit(b, "t.echo", list(range(5)))
        env = {"HIVEQ_LEASE_SECONDS": "1", "HIVEQ_REAP_INTERVAL": "0.2"}
        # One slot per process: a job running beside the poison would die with it each time.
        sup = spawn_worker(
            b.settings, "t.crash,t.echo", concurrency=1, processes=2, log=tmp_path / "w.log", **env
        )
        try:
            await wait_states(b, poison.job_ids, JobState.DEAD, wait_s=60)
            await wait_states(b, fine.job_ids, JobState.SUCCEEDED)
        finally:
            assert stop_proc(sup) == 0
        job = await inspect.get_job(b, poison.job_ids[0])
        assert job.attempts == 3
        assert job.reason is not None and "delivered 3 times" in job.reason and "poison" in job.reason
        assert "exited with code -9" in (tmp_path / "w.log").read_text()  # the supervisor restarted it
    finally:
        await b.close()


async def test_worker_survives_a_redis_outage_under_load(private_server: object, tmp_path: Path) -> None:
    srv: ServerProcess = private_server(persistent=True)  # type: ignore[operator]
    settings = fresh_settings(srv.url)
    b = await Broker.connect(settings, role="test")
    try:
        ids = [j for _ in range(3) for j in (await submit(b, "t.sleep", [{"s": 0.05}] * 100)).job_ids]
    finally:
        await b.close()
    log = tmp_path / "worker.log"
    proc = spawn_worker(settings, "t.sleep", concurrency=20, log=log)
    try:
        b = await Broker.connect(settings, role="test")
        try:

            async def some_done() -> bool:
                return (await inspect.counts(b)).get("succeeded", 0) >= 40

            await until(some_done, 30, "the worker to get going")
        finally:
            await b.close()
        srv.stop()  # SIGTERM: the server writes its AOF and exits
        await asyncio.sleep(2.0)  # the outage itself (not synchronisation)
        srv.start()
        b = await Broker.connect(settings, role="test")
        try:
            await wait_states(b, ids, JobState.SUCCEEDED, wait_s=60)
            assert proc.poll() is None  # recovered by itself, no restart
            report = await audit(b)
            stats = await inspect.stats(b)
        finally:
            await b.close()
    finally:
        assert stop_proc(proc) == 0
    text = log.read_text()
    assert text.count("Redis lost") == 1 and text.count("Redis restored") == 1, text[-3000:]
    assert report.ok and report.total == 300 and report.by_place["succeeded"] == 300
    assert stats["succeeded"] == 300  # nothing counted twice
