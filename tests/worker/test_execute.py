"""execute: an agent's run ends as data (ok, failed, fatal, quarantine) with a sentence a user can
act on; its timeout and a cancellation reach the agent; unusable results are named.

The agents here are plain in-process functions; nothing talks to Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hiveq.agents.registry import AgentContext, AgentFn, AgentSpec, FatalError, RateLimited
from hiveq.contract.models import ClaimedJob
from hiveq.worker.execute import Ending, Outcome, check_result, effective_timeout, execute, precheck
from tests.worker.claimed import claimed


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="unit-agent")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def context(job: ClaimedJob) -> AgentContext:
    return AgentContext(
        job_id=job.id, task_id=job.task_id, subtask_id=job.subtask_id, agent=job.agent, input=job.input
    )


async def run(
    fn: AgentFn, pool: ThreadPoolExecutor, *, spec_timeout: float | None = None, **job: Any
) -> Outcome:
    j = claimed(**job)
    return await execute(j, AgentSpec("unit", fn, spec_timeout), context(j), pool)


async def test_an_async_agents_return_value_is_the_result(pool: ThreadPoolExecutor) -> None:
    async def agent(ctx: AgentContext) -> dict[str, Any]:
        return {"echo": ctx.input}

    assert await run(agent, pool, input=[1, 2]) == Outcome(Ending.OK, result={"echo": [1, 2]})


async def test_a_sync_agent_runs_in_the_pool_not_on_the_event_loop(pool: ThreadPoolExecutor) -> None:
    def agent(ctx: AgentContext) -> str:
        return threading.current_thread().name

    out = await run(agent, pool)
    assert out.ending is Ending.OK and out.result.startswith("unit-agent")


async def test_an_agent_over_its_timeout_fails_saying_how_long_and_what_to_raise(
    pool: ThreadPoolExecutor,
) -> None:
    async def agent(ctx: AgentContext) -> None:
        await asyncio.Event().wait()  # never finishes by itself

    out = await run(agent, pool, timeout_s=0.05, attempt=2)
    assert (out.ending, out.fatal) == (Ending.FAILED, False)
    assert "timed out after 0.05 s (agent 'unit', attempt 2)" in out.error
    assert "timeout_s" in out.error and "HIVEQ_JOB_TIMEOUT" in out.error


async def test_a_timed_out_sync_agent_is_told_to_stop(pool: ThreadPoolExecutor) -> None:
    stopped = threading.Event()

    def agent(ctx: AgentContext) -> str:
        while not ctx.is_cancelled():  # a cooperative agent checks between steps
            time.sleep(0.005)
        stopped.set()
        return "stopped"

    out = await run(agent, pool, timeout_s=0.05)
    assert out.ending is Ending.FAILED and "timed out" in out.error
    assert await asyncio.to_thread(stopped.wait, 5.0), "the agent's thread never saw the cancellation"


async def test_the_agents_own_timeout_caps_the_jobs_but_never_extends_it() -> None:
    async def agent(ctx: AgentContext) -> None:
        return None

    job = claimed(timeout_s=30.0)
    assert effective_timeout(job, AgentSpec("unit", agent, timeout_s=2.0)) == 2.0
    assert effective_timeout(job, AgentSpec("unit", agent, timeout_s=90.0)) == 30.0
    assert effective_timeout(job, AgentSpec("unit", agent)) == 30.0


async def test_cancelling_the_run_reaches_the_agent_and_is_not_an_outcome(pool: ThreadPoolExecutor) -> None:
    started, saw_cancel = asyncio.Event(), asyncio.Event()

    async def agent(ctx: AgentContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            saw_cancel.set()
            raise

    job = claimed()
    ctx = context(job)
    run_task = asyncio.create_task(execute(job, AgentSpec("unit", agent), ctx, pool))
    await started.wait()
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert saw_cancel.is_set() and ctx.is_cancelled()


async def test_fatal_error_dead_letters_with_its_message(pool: ThreadPoolExecutor) -> None:
    async def agent(ctx: AgentContext) -> None:
        raise FatalError("configuration missing: set T_CONFIG")

    out = await run(agent, pool)
    assert (out.ending, out.error, out.fatal) == (Ending.FAILED, "configuration missing: set T_CONFIG", True)
    assert out.traceback.endswith("FatalError: configuration missing: set T_CONFIG\n")


async def test_any_other_exception_is_a_retryable_failure_naming_its_type(
    pool: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    def agent(ctx: AgentContext) -> None:
        raise ValueError("bad row 7")

    out = await run(agent, pool)
    assert (out.ending, out.error, out.fatal) == (Ending.FAILED, "ValueError: bad row 7", False)
    tb = out.traceback.splitlines()  # the sync agent's own frame first, not the thread pool's
    assert (
        "in agent" in tb[1]
        and tb[-1] == "ValueError: bad row 7"
        and "concurrent/futures" not in out.traceback
    )
    [rec] = [r for r in caplog.records if r.name == "hiveq.agent"]
    assert rec.exc_info is not None and "agent raised ValueError" in rec.getMessage()


def test_undecodable_input_is_quarantined_with_the_text_and_what_to_do() -> None:
    out = precheck(claimed(input=None, raw_input="{not json"), None, "w-unit")
    assert out is not None and out.ending is Ending.QUARANTINE
    assert "is not valid JSON ('{not json')" in out.error and "retry it from the dead letters" in out.error


def test_a_job_for_an_agent_this_worker_lacks_is_quarantined_naming_both() -> None:
    out = precheck(claimed(agent="summarise"), None, "w-unit")
    assert out is not None and out.ending is Ending.QUARANTINE
    assert "worker w-unit has no agent 'summarise'" in out.error and "@agent('summarise')" in out.error


def test_a_runnable_job_passes_the_precheck() -> None:
    async def agent(ctx: AgentContext) -> None:
        return None

    assert precheck(claimed(), AgentSpec("unit", agent), "w-unit") is None


@pytest.mark.parametrize(
    ("result", "says"),
    [
        ({"ids": {1, 2}}, "must be JSON-serialisable"),
        (float("nan"), "must be JSON-serialisable"),
        ("x" * 101, "103 bytes, over the limit of 100 bytes"),  # quotes included
    ],
)
def test_an_unusable_result_is_named_with_the_rule_it_breaks(result: Any, says: str) -> None:
    why = check_result("t1.s1", result, max_bytes=100)
    assert why is not None and why.startswith("the agent returned an unusable result")
    assert "result of job t1.s1" in why and says in why


def test_a_json_result_within_the_limit_is_usable() -> None:
    assert check_result("t1.s1", {"ok": [1, 2.5, None]}, max_bytes=100) is None


def test_a_job_whose_budget_is_spent_with_on_exhausted_fail_is_failed_fatally_without_running() -> None:
    why = "budget of limit budget:x for budget:x is spent (900 tokens, 0 USD used); on_exhausted=fail"

    async def agent(ctx: AgentContext) -> str:
        raise AssertionError("must not run")

    out = precheck(claimed(limit_fail=why), AgentSpec("unit", agent), "w-unit")
    assert out is not None and (out.ending, out.fatal, out.error) == (Ending.FAILED, True, why)


async def test_an_agent_raising_rate_limited_ends_as_rate_limited_with_its_retry_after_and_key() -> None:
    async def agent(ctx: AgentContext) -> str:
        raise RateLimited(retry_after=2.5, key="model:m")

    out = await execute(claimed(), AgentSpec("unit", agent), AgentContext("j", "t", "s", "unit"), None)
    assert (out.ending, out.retry_after, out.cool_key) == (Ending.RATE_LIMITED, 2.5, "model:m")
