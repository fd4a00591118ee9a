"""Data that Redis lost is reported as data loss, at once and everywhere: a redis-server without
persistence restarted under running jobs, two real worker processes and an API app.

Within 5 s each worker logs it with the jobs it held, the event stream carries one `data_loss`
event per worker, `/metrics` counts it, and the doctor's `data loss` check fails with when, why
and how many jobs; the workers register again and serve new jobs. Also: a stale heartbeat reply
(about a claim the worker no longer runs) never stops the fresh claim of the same job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hiveq.api.app import create_app
from hiveq.contract.errors import NotFound
from hiveq.contract.lease import Lease
from hiveq.contract.states import JobState
from hiveq.diagnose.doctor import run_doctor
from hiveq.queue import heartbeat, inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history, read_events
from hiveq.server import ServerProcess
from tests.api.live import asgi_client
from tests.conftest import fresh_settings
from tests.support.agents import ledger_counts
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc, submit, worker_in_process

pytestmark = pytest.mark.slow


async def test_a_redis_restarted_empty_under_running_jobs_is_reported_as_data_loss_everywhere(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = private_server(kind="redis")  # no persistence: a restart comes back empty
    settings = fresh_settings(srv.url, lease_s=2.0)
    ledger = tmp_path / "ledger"
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    b = await Broker.connect(settings, role="test")
    procs = []
    try:
        enq = await submit(b, "t.ledger", [{"s": 60}] * 4)
        ids = enq.job_ids
        procs = [
            spawn_worker(
                settings,
                "t.ledger",
                concurrency=2,
                log=log,
                HIVEQ_TEST_LEDGER=str(ledger),
                HIVEQ_LEASE_SECONDS="2",
            )
            for log in logs
        ]
        async with asgi_client(create_app(settings, watch=False)) as api:

            async def running() -> bool:
                return all(j.state == JobState.ACTIVE for j in await inspect.get_jobs(b, ids))

            await until(running, 60, "the four jobs to run")
            held = {j.id: j.worker for j in await inspect.get_jobs(b, ids)}
            srv.restart()  # SIGTERM, start again: no AOF, no RDB, so the namespace is gone
            await b.close()
            b = await Broker.connect(settings, role="test", check_namespace=False)

            async def both_said_so() -> bool:
                return all("data loss: Redis lost this namespace's data" in log.read_text() for log in logs)

            await until(both_said_so, 5.0, "both workers to report the data loss", interval_s=0.05)
            _, events = await read_events(b, "0")
            losses = [e for e in events if e.type == "data_loss"]
            report = await run_doctor(b, remember=False)
            with pytest.raises(NotFound) as unknown:
                await inspect.get_task(b, enq.task_id)

            async def counted() -> str:
                text = (await api.get("/metrics")).text
                return text if "hiveq_data_loss_events_total 1.0" in text else ""

            await until(counted, 5.0, "/metrics to count the data loss")
            # The workers registered again and keep serving.
            [fresh] = (await submit(b, "t.ledger", [{"s": 0.1}])).job_ids

            async def served() -> bool:
                return (await inspect.get_job(b, fresh)).state == JobState.SUCCEEDED

            await until(served, 30, "a job submitted after the loss to run")
            assert [p.poll() for p in procs] == [None, None]
    finally:
        codes = [stop_proc(p) for p in procs]
        await b.close()
    assert codes == [0, 0]
    by_worker: dict[str, list[str]] = {}
    for job, worker in held.items():
        by_worker.setdefault(str(worker), []).append(job)
    reported = {str(e.worker): sorted((e.data or {}).get("jobs") or []) for e in losses}
    # Each worker reports the jobs it held; the API process, if its check ran first, held none.
    assert {w: jobs for w, jobs in reported.items() if w in by_worker} == {
        w: sorted(jobs) for w, jobs in by_worker.items()
    }
    assert all(jobs == [] and ":api:" in w for w, jobs in reported.items() if w not in by_worker)
    check = report.check("data loss")
    assert check.verdict == "fail", check
    assert "Redis lost this namespace's data at " in check.summary
    assert "restarted empty: uptime" in check.summary and "run_id changed" in check.summary
    assert "4 jobs that live workers held are gone; persistence is off" in check.summary
    assert all(any(job in line for line in check.evidence) for job in ids)
    assert "gone when Redis lost this namespace's data at" in str(unknown.value)
    namespace = report.check("namespace")
    assert "has not been used yet" not in namespace.summary and "data loss" in namespace.summary
    for log in logs:
        text = log.read_text()
        assert "lease lost" not in text and "registered again after the data loss" in text, text
        assert "restarted empty: uptime" in text
    assert ledger_counts(ledger) == {**dict.fromkeys(ids, 1), fresh: 1}


async def test_a_stale_heartbeat_reply_never_stops_a_fresh_claim_of_the_same_job(
    private_server: Callable[..., ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat held back (as by a freeze) carries the first claim's token; meanwhile the lease
    expires and this same worker claims the job again. The late reply lists the job as lost:
    the worker must keep running the fresh claim."""
    srv = private_server(kind="redis")
    settings = fresh_settings(srv.url, lease_s=1.5, heartbeat_s=0.3)
    monkeypatch.setenv("HIVEQ_TEST_LEDGER", str(tmp_path / "ledger"))
    real = heartbeat.heartbeat
    held: asyncio.Queue[list[Lease]] = asyncio.Queue()
    release = asyncio.Event()
    armed = True

    async def held_back(b: Broker, worker_id: str, leases: Any, running: int) -> heartbeat.Beat:
        nonlocal armed
        if armed and leases:
            armed = False
            held.put_nowait(list(leases))
            await release.wait()
        return await real(b, worker_id, leases, running)

    monkeypatch.setattr(heartbeat, "heartbeat", held_back)
    b = await Broker.connect(settings, role="test")
    try:
        [job_id] = (await submit(b, "t.ledger", [{"s": 3}])).job_ids
        async with worker_in_process(settings, ["t.ledger"], concurrency=2, worker_id="w1"):
            [first] = await asyncio.wait_for(held.get(), 30)

            async def claimed_again() -> bool:
                j = await inspect.get_job(b, job_id)
                return j.state == JobState.ACTIVE and j.attempts == 2

            await until(claimed_again, 30, "the same worker to claim the job again")
            release.set()  # the reply about the first claim arrives now

            async def finished() -> bool:
                return (await inspect.get_job(b, job_id)).state == JobState.SUCCEEDED

            await until(finished, 30, "the job to finish")
        job = await inspect.get_job(b, job_id)
        hist = await job_history(b, job_id)
    finally:
        await b.close()
    assert first.job_id == job_id
    assert job.attempts == 2, "\n".join(str((e.frm, e.to, e.type, e.attempt, e.reason, e.ts)) for e in hist)
    assert [e.attempt for e in hist if e.type == "job" and e.to == "active"] == [1, 2]
    late = [e for e in hist if e.type == "late"]
    assert len(late) == 1 and "late result refused from worker w1, attempt 1" in (late[0].reason or "")
