"""Scheduled starts with real worker processes: a delayed task's jobs start no earlier than its
run_at (measured from each job's own start time in Redis), and a task cancelled before its start
never runs (its runs counted outside hiveq's namespace)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from hiveq.contract.models import TaskRequest
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.events import job_history
from hiveq.submit import submit_task
from tests.support.agents import executions_key
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc

pytestmark = pytest.mark.slow


def request(agent: str, **start: object) -> TaskRequest:
    return TaskRequest.model_validate(
        {
            "description": "later",
            "subtasks": [{"id": "a", "agent": agent}, {"id": "b", "agent": agent}],
            **start,
        }
    )


async def succeeded(b: Broker, task_ids: list[str]) -> bool:
    for t in task_ids:
        if (await inspect.get_task(b, t)).status != "succeeded":
            return False
    return True


async def test_delayed_jobs_start_no_earlier_than_their_run_at_on_two_workers(broker: Broker) -> None:
    procs = [spawn_worker(broker.settings, "t.noop", HIVEQ_REAP_INTERVAL="0.1") for _ in range(2)]
    try:
        await until(lambda: broker.redis.zcard(broker.keys.workers), 30, "workers to register")
        at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
        tasks = [await submit_task(broker, request("t.noop", delay_s=1.0 + i * 0.2)) for i in range(4)]
        tasks.append(await submit_task(broker, request("t.noop", run_at=at)))
        ids = [t.task_id for t in tasks]
        await until(lambda: succeeded(broker, ids), 30, "the delayed tasks to succeed")
    finally:
        for p in procs:
            assert stop_proc(p) == 0
    for tid in ids:
        task = await inspect.get_task(broker, tid)
        assert task.run_at_ms is not None
        for job in await inspect.get_jobs(broker, task.job_ids):
            assert job.started_ms is not None and job.started_ms >= task.run_at_ms, (job, task.run_at_ms)
        hist = await job_history(broker, task.job_ids[0])
        promoted = [e for e in hist if (e.frm, e.to) == ("delayed", "waiting")]
        assert [e.reason for e in promoted] == ["run_at reached"]
        assert promoted[0].ts >= task.run_at_ms


async def test_a_task_cancelled_before_its_start_never_runs(broker: Broker) -> None:
    proc = spawn_worker(broker.settings, "t.count", HIVEQ_REAP_INTERVAL="0.1")
    r = Redis.from_url(broker.settings.redis_url, decode_responses=True)
    counted: list[str] = []
    try:
        await until(lambda: broker.redis.zcard(broker.keys.workers), 30, "the worker to register")
        doomed = await submit_task(broker, request("t.count", delay_s=1.0))
        control = await submit_task(broker, request("t.count", delay_s=1.2))  # starts after doomed's time
        assert await cancel_task(broker, doomed.task_id, reason="test") == 2
        await until(lambda: succeeded(broker, [control.task_id]), 30, "the control task to run")
        ns = broker.settings.namespace
        counted = [executions_key(ns, f"{t.task_id}.{s}") for t in (doomed, control) for s in "ab"]
        doomed_runs = [await r.get(k) for k in counted[:2]]
        control_runs = [await r.get(k) for k in counted[2:]]
        assert (doomed_runs, control_runs) == ([None, None], ["1", "1"])
        jobs = await inspect.get_jobs(broker, (await inspect.get_task(broker, doomed.task_id)).job_ids)
        assert {j.state for j in jobs} == {JobState.CANCELLED}
    finally:
        assert stop_proc(proc) == 0
        if counted:
            await r.delete(*counted)
        await r.aclose()
