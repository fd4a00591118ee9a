"""The worker loop in-process on a real Valkey: batching, retries, timeouts, quarantine,
cancellation, registration. (Process-level faults are in test_faults.py.)"""

from __future__ import annotations

import asyncio

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.contract.states import JobState
from hiveq.queue import cancel, inspect, registry
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.events import job_history
from tests.support import agents as test_agents
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


async def states(b: Broker, ids: list[str]) -> list[JobState]:
    return [j.state for j in await inspect.get_jobs(b, ids)]


async def all_in(b: Broker, ids: list[str], state: JobState, wait_s: float = 20.0) -> None:
    async def check() -> bool:
        return all(s == state for s in await states(b, ids))

    await until(check, wait_s, f"jobs {ids[:3]}… to be {state}")


async def evalsha_calls(b: Broker) -> int:
    return int((await b.redis.info("commandstats"))["cmdstat_evalsha"]["calls"])


async def test_worker_runs_jobs_with_few_round_trips(broker: Broker) -> None:
    enq = await submit(broker, "t.echo", list(range(100)))
    before = await evalsha_calls(broker)
    async with worker_in_process(broker.settings, ["t.echo"], concurrency=50):
        await all_in(broker, enq.job_ids, JobState.SUCCEEDED)
        calls = await evalsha_calls(broker) - before
    jobs = await inspect.get_jobs(broker, enq.job_ids)
    assert [j.result["input"] for j in jobs] == list(range(100))
    # 100 jobs with 50 slots: a handful of claim and complete calls (+ namespace check, register,
    # maybe a heartbeat or maintenance), never one round trip per job.
    assert calls < 25, calls


async def test_sync_agent_runs_in_thread_pool_and_reports_progress(broker: Broker) -> None:
    enq = await submit(broker, "t.sync", [None])
    async with worker_in_process(broker.settings, ["t.sync"]):
        await all_in(broker, enq.job_ids, JobState.SUCCEEDED)
    job = await inspect.get_job(broker, enq.job_ids[0])
    assert job.result["thread"].startswith("hiveq-agent")
    assert job.progress == 1.0 and job.progress_message == "half way"  # succeeded: 1, not 0.5
    hist = await job_history(broker, enq.job_ids[0])
    assert any(e.type == "progress" and e.reason == "half way" and e.data == {"progress": 0.5} for e in hist)


async def test_job_over_its_timeout_fails_with_a_clear_reason(broker: Broker) -> None:
    enq = await submit(broker, "t.sleep", [{"s": 30}], timeout_s=0.3, max_attempts=1)
    async with worker_in_process(broker.settings, ["t.sleep"]):
        await all_in(broker, enq.job_ids, JobState.DEAD)
    job = await inspect.get_job(broker, enq.job_ids[0])
    assert job.error is not None and "timed out after 0.3 s" in job.error
    assert "timeout_s" in job.error


async def test_failing_job_is_retried_with_backoff_until_it_succeeds(broker: Broker) -> None:
    b = await Broker.connect(broker.settings.with_(backoff_base_s=0.1), role="test")
    enq = await submit(b, "t.flaky", [{"ok_at": 3}], max_attempts=3)
    async with worker_in_process(b.settings, ["t.flaky"]):
        await all_in(b, enq.job_ids, JobState.SUCCEEDED)
    job = await inspect.get_job(b, enq.job_ids[0])
    assert job.result == {"attempt": 3} and job.failures == 2
    delayed = [e for e in await job_history(b, job.id) if e.to == "delayed"]
    assert [e.reason.split(" in ")[0] for e in delayed if e.reason] == ["retry 2 of 3", "retry 3 of 3"]
    assert "flaky failure on attempt 1" in (delayed[0].reason or "")
    await b.close()


async def test_job_failing_every_attempt_is_dead_lettered(broker: Broker) -> None:
    b = await Broker.connect(broker.settings.with_(backoff_base_s=0.05), role="test")
    enq = await submit(b, "t.flaky", [{}], max_attempts=2)
    async with worker_in_process(b.settings, ["t.flaky"]):
        await all_in(b, enq.job_ids, JobState.DEAD)
    job = await inspect.get_job(b, enq.job_ids[0])
    assert job.attempts == 2
    assert job.reason is not None and "failed 2 of 2 attempts" in job.reason
    assert [d.id for d in await inspect.list_dead(b)] == [job.id]
    await b.close()


async def test_fatal_error_and_unusable_result_dead_letter_without_retry(broker: Broker) -> None:
    fatal = await submit(broker, "t.fatal", [None], max_attempts=5)
    bad = await submit(broker, "t.bad_result", [None], max_attempts=5)
    ok = await submit(broker, "t.echo", ["fine"])
    async with worker_in_process(broker.settings, ["t.fatal", "t.bad_result", "t.echo"]):
        await all_in(broker, fatal.job_ids + bad.job_ids, JobState.DEAD)
        await all_in(broker, ok.job_ids, JobState.SUCCEEDED)
    f, x = await inspect.get_jobs(broker, fatal.job_ids + bad.job_ids)
    assert f.attempts == 1 and "set T_CONFIG" in (f.reason or "")
    assert x.attempts == 1 and "unusable result" in (x.reason or "") and "JSON" in (x.reason or "")


async def test_job_for_an_agent_nobody_serves_stays_waiting_and_visible(broker: Broker) -> None:
    lonely = await submit(broker, "t.nobody", ["x"])
    served = await submit(broker, "t.echo", ["y"])
    async with worker_in_process(broker.settings, ["t.echo"]):
        await all_in(broker, served.job_ids, JobState.SUCCEEDED)
    assert await states(broker, lonely.job_ids) == [JobState.WAITING]
    depth = {q.agent: q.waiting for q in await inspect.queue_depths(broker)}
    assert depth["t.nobody"] == 1


async def test_undecodable_input_is_quarantined_with_the_reason(broker: Broker) -> None:
    enq = await submit(broker, "t.echo", ["ok"])
    job_id = enq.job_ids[0]
    await broker.redis.hset(broker.keys.job(job_id), "input", "{not json")  # a foreign writer
    async with worker_in_process(broker.settings, ["t.echo"]):
        await all_in(broker, [job_id], JobState.QUARANTINED)
    job = await inspect.get_job(broker, job_id)
    assert job.reason is not None and "not valid JSON" in job.reason and "{not json" in job.reason


async def test_cancelling_a_task_stops_its_running_agent(broker: Broker) -> None:
    b = await Broker.connect(broker.settings.with_(heartbeat_s=0.1), role="test")
    enq = await submit(b, "t.wait_cancel", [None])
    async with worker_in_process(b.settings, ["t.wait_cancel"]):
        await all_in(b, enq.job_ids, JobState.ACTIVE)
        await cancel.cancel_task(b, enq.task_id)

        async def agent_saw_it() -> bool:
            return enq.job_ids[0] in test_agents.CANCELLED

        await until(agent_saw_it, 10, "the agent to be cancelled")
    assert await states(b, enq.job_ids) == [JobState.CANCELLED]
    await b.close()


async def test_dependency_results_reach_the_dependent_job(broker: Broker) -> None:
    subs = [
        SubtaskSpec(id="a", agent="t.echo", input="first"),
        SubtaskSpec(id="b", agent="t.echo", input="second", depends_on=["a"]),
    ]
    enq = (await enqueue(broker, [TaskSubmission(description="chain", subtasks=subs)]))[0]
    async with worker_in_process(broker.settings, ["t.echo"]):
        await all_in(broker, enq.job_ids, JobState.SUCCEEDED)
    b_job = await inspect.get_job(broker, enq.job_ids[1])
    assert b_job.result["deps"] == {"a": {"input": "first", "deps": {}, "attempt": 1}}


async def test_worker_registers_reregisters_when_reaped_and_deregisters(broker: Broker) -> None:
    settings = broker.settings.with_(heartbeat_s=0.1)
    async with worker_in_process(settings, ["t.echo"], worker_id="w-reg"):

        async def listed() -> bool:
            return [w.id for w in await registry.list_workers(broker)] == ["w-reg"]

        await until(listed, 10, "the worker to register")
        w = (await registry.list_workers(broker))[0]
        assert w.agents == ["t.echo"] and w.concurrency == 4
        await broker.redis.delete(broker.keys.worker("w-reg"))  # as the reaper would
        await until(listed, 10, "the worker to register again")
    assert await registry.list_workers(broker) == []


async def test_sigterm_style_stop_hands_back_unfinished_jobs_at_once(broker: Broker) -> None:
    settings = broker.settings.with_(shutdown_grace_s=0.3)
    short = await submit(broker, "t.sleep", [{"s": 0.05}] * 2)
    long = await submit(broker, "t.sleep", [{"s": 60}] * 2)
    async with worker_in_process(settings, ["t.sleep"], concurrency=4, worker_id="w-stop"):
        await all_in(broker, short.job_ids, JobState.SUCCEEDED)
        await all_in(broker, long.job_ids, JobState.ACTIVE)
        stopped_at = asyncio.get_running_loop().time()
    took = asyncio.get_running_loop().time() - stopped_at
    assert took < 5.0  # grace (0.3 s) + release; never a lease expiry
    assert await states(broker, long.job_ids) == [JobState.WAITING] * 2
    hist = await job_history(broker, long.job_ids[0])
    assert hist[-1].to == "waiting" and "grace period" in (hist[-1].reason or "")
    assert (await inspect.get_job(broker, long.job_ids[0])).attempts == 0  # a hand-back is no delivery
