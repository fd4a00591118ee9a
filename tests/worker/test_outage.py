"""Outages and freezes never run a job twice: real redis-server, real worker processes, every
execution counted outside Redis (the t.ledger agent appends to a file).

- Redis SIGKILLed and restarted from its AOF (`appendfsync always`) after 10 s, and Redis frozen
  by SIGSTOP for 10 s, with 3 worker processes and jobs longer than the 2 s lease in flight:
  every job runs exactly once, none is lost, no worker exits.
- One worker through a Redis freeze: it neither reaps its own leases nor cancels its jobs.
- A worker frozen (SIGSTOP) longer than its lease loses the job to another worker (correct), and
  its late result is refused and recorded in the job's custody history.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hiveq.contract.models import Event
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.conftest import fresh_settings
from tests.support.agents import ledger_counts
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc, submit

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0  # the fault itself: how long Redis is away (the test's subject, not a wait)
RUNS = 3
FROZEN_S = 4.0  # the frozen worker sleeps this long: past its 2 s lease and its 3 s job


def aof_server(private_server: Callable[..., ServerProcess]) -> ServerProcess:
    return private_server(kind="redis", persistent=True, extra=["--appendfsync", "always"])


async def in_flight(b: Broker, ids: list[str], n: int) -> None:
    async def enough() -> bool:
        return sum(j.state == JobState.ACTIVE for j in await inspect.get_jobs(b, ids)) >= n

    await until(enough, 60, f"{n} jobs to be running")


async def all_succeeded(settings: Settings, ids: list[str], wait_s: float = 90.0) -> Broker:
    b = await Broker.connect(settings, role="test")

    async def done() -> bool:
        return all(j.state == JobState.SUCCEEDED for j in await inspect.get_jobs(b, ids))

    try:
        await until(done, wait_s, "every job to succeed", interval_s=0.1)
    except BaseException:
        await b.close()
        raise
    return b


def freeze(srv: ServerProcess) -> Callable[[], None]:
    """SIGSTOP the server; returns the SIGCONT."""
    assert srv.proc is not None
    pid = srv.proc.pid
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


async def outage(srv: ServerProcess, kind: str) -> None:
    if kind == "sigkill":
        srv.stop(kill=True)
        await asyncio.sleep(OUTAGE_S)
        srv.start()
    else:
        thaw = freeze(srv)
        try:
            await asyncio.sleep(OUTAGE_S)
        finally:
            thaw()


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("kind", ["sigkill", "sigstop"])
async def test_a_10_s_redis_outage_with_3_workers_runs_no_job_twice_and_loses_none(
    private_server: Callable[..., ServerProcess], tmp_path: Path, kind: str, run: int
) -> None:
    srv = aof_server(private_server)
    settings = fresh_settings(srv.url, lease_s=2.0)
    ledger = tmp_path / "ledger"
    b = await Broker.connect(settings, role="test")
    try:
        # 12 slots: 6 jobs finish during the outage (their results wait in the outboxes), 6 run on
        # after it, 3 wait in the queue; all longer than the lease.
        ids = (await submit(b, "t.ledger", [{"s": 3}] * 6 + [{"s": 13}] * 6 + [{"s": 2.5}] * 3)).job_ids
    finally:
        await b.close()
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [
        spawn_worker(
            settings,
            "t.ledger",
            concurrency=4,
            log=log,
            HIVEQ_TEST_LEDGER=str(ledger),
            HIVEQ_LEASE_SECONDS="2",
        )
        for log in logs
    ]
    try:
        b = await Broker.connect(settings, role="test")
        try:
            await in_flight(b, ids, 12)
        finally:
            await b.close()
        await outage(srv, kind)
        b = await all_succeeded(settings, ids)
        try:
            assert [p.poll() for p in procs] == [None, None, None]  # no worker exited
            report = await audit(b)
            stats = await inspect.stats(b)
            reaped = [
                e
                for job_id in ids
                for e in await job_history(b, job_id)
                if e.frm == "active" and e.to != "succeeded"
            ]
        finally:
            await b.close()
    finally:
        codes = [stop_proc(p) for p in procs]
    counts = ledger_counts(ledger)
    texts = [log.read_text() for log in logs]
    assert {j: n for j, n in counts.items() if n != 1} == {}, "jobs that ran twice"
    assert sorted(counts) == sorted(ids)  # none lost
    assert reaped == []
    assert report.ok and stats["succeeded"] == len(ids)
    assert codes == [0, 0, 0]
    assert not any("lease lost" in t or "data loss" in t for t in texts), texts


async def test_one_worker_rides_out_a_redis_freeze_without_reaping_its_own_leases(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = aof_server(private_server)
    settings = fresh_settings(srv.url, lease_s=2.0)
    ledger, log = tmp_path / "ledger", tmp_path / "w.log"
    b = await Broker.connect(settings, role="test")
    try:
        ids = (await submit(b, "t.ledger", [{"s": 6}] * 4)).job_ids
    finally:
        await b.close()
    proc = spawn_worker(
        settings, "t.ledger", concurrency=4, log=log, HIVEQ_TEST_LEDGER=str(ledger), HIVEQ_LEASE_SECONDS="2"
    )
    try:
        b = await Broker.connect(settings, role="test")
        try:
            await in_flight(b, ids, 4)
        finally:
            await b.close()
        thaw = freeze(srv)
        try:
            await asyncio.sleep(8.0)  # the freeze: four leases long
        finally:
            thaw()
        b = await all_succeeded(settings, ids)
        try:
            history = {j: await job_history(b, j) for j in ids}
        finally:
            await b.close()
        assert proc.poll() is None
    finally:
        assert stop_proc(proc) == 0
    assert ledger_counts(ledger) == dict.fromkeys(ids, 1)
    for hist in history.values():
        assert [e.to for e in hist if e.type == "job"] == ["waiting", "active", "succeeded"]
    assert "lease lost" not in log.read_text()


async def test_a_worker_frozen_past_its_lease_loses_the_job_and_its_late_result_is_history(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = aof_server(private_server)
    settings = fresh_settings(srv.url, lease_s=2.0)
    ledger = tmp_path / "ledger"
    b = await Broker.connect(settings, role="test")
    try:
        [job_id] = (await submit(b, "t.ledger", [{"s": 3}])).job_ids
        led = str(ledger)
        frozen = spawn_worker(
            settings,
            "t.ledger",
            concurrency=1,
            log=tmp_path / "a.log",
            HIVEQ_TEST_LEDGER=led,
            HIVEQ_LEASE_SECONDS="2",
        )
        other = None
        try:
            await in_flight(b, [job_id], 1)
            first = (await inspect.get_job(b, job_id)).worker
            os.kill(frozen.pid, signal.SIGSTOP)  # frozen mid-job, longer than its lease
            frozen_at = time.monotonic()
            try:
                other = spawn_worker(
                    settings,
                    "t.ledger",
                    concurrency=1,
                    log=tmp_path / "b.log",
                    HIVEQ_TEST_LEDGER=led,
                    HIVEQ_TEST_SLEEP="0.1",
                    HIVEQ_LEASE_SECONDS="2",
                )

                async def done_elsewhere() -> bool:
                    j = await inspect.get_job(b, job_id)
                    return j.state == JobState.SUCCEEDED and j.worker != first

                await until(done_elsewhere, 60, "another worker to take the job over", interval_s=0.05)
                # The freeze outlasts the job's own 3 s, so on waking its agent is done before any
                # heartbeat reply can stop it: its result goes out, late.
                await asyncio.sleep(max(0.0, FROZEN_S - (time.monotonic() - frozen_at)))
            finally:
                os.kill(frozen.pid, signal.SIGCONT)

            async def late() -> list[Event]:
                return [e for e in await job_history(b, job_id) if e.type == "late"]

            [ev] = await until(late, 30, "the late result to be recorded")
        finally:
            assert stop_proc(frozen) == 0
            if other is not None:
                assert stop_proc(other) == 0
        hist = await job_history(b, job_id)
        job = await inspect.get_job(b, job_id)
    finally:
        await b.close()
    assert ledger_counts(ledger) == {job_id: 2}  # the second execution is real, and shown
    assert ev.worker == first and ev.attempt == 1
    assert f"late result refused from worker {first}, attempt 1" in (ev.reason or "")
    assert job.state == JobState.SUCCEEDED and job.attempts == 2
    assert [e.to for e in hist if e.type == "job"].count("succeeded") == 1
