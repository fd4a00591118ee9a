"""The durable side of a run (hiveq/agents/durable.py) on its in-memory backend: a step runs once
per key and its JSON comes back the same on every run; the n-th call of a name is its own step;
output emitted while a run replays stored steps is not emitted again."""

from __future__ import annotations

import threading

import pytest

from hiveq.agents.durable import Durable, LocalBackend, NotDurable
from hiveq.agents.registry import AgentContext, FatalError


def run_of(backend: LocalBackend) -> AgentContext:
    """A fresh run of the same job: a new context on the same stored steps."""
    return AgentContext(
        job_id="t1.x", task_id="t1", subtask_id="x", agent="a", durable=Durable(backend, "t1.x")
    )


async def test_a_step_runs_once_and_a_later_run_gets_its_stored_json() -> None:
    backend = LocalBackend()
    calls: list[int] = []

    async def fetch(n: int) -> tuple[int, str]:
        calls.append(n)
        return n, "rows"

    first = await run_of(backend).step("fetch", fetch, 3)
    again = await run_of(backend).step("fetch", fetch, 3)
    assert first == again == [3, "rows"]  # JSON both times: a tuple comes back as a list
    assert calls == [3]
    assert backend.steps == {"fetch": '[3,"rows"]'}


async def test_each_call_of_a_name_in_a_run_is_its_own_step_and_sync_code_runs_in_a_thread() -> None:
    backend = LocalBackend()
    ctx = run_of(backend)
    threads: list[str] = []

    def work(i: int) -> int:
        threads.append(threading.current_thread().name)
        return i * 10

    assert [await ctx.step("item", work, i) for i in range(3)] == [0, 10, 20]
    assert sorted(backend.steps) == ["item", "item#2", "item#3"]
    assert threading.main_thread().name not in threads
    assert [await run_of(backend).step("item", work, 9)] == [0]  # matched by order on the next run


async def test_output_emitted_while_replaying_stored_steps_is_not_emitted_again() -> None:
    backend = LocalBackend()
    ctx = run_of(backend)
    await ctx.emit("planning\n")
    await ctx.step("plan", lambda: "p")
    await ctx.emit({"plan": "p"})
    await ctx.step("research", lambda: "r")  # ... and the worker dies here
    assert backend.output == ["planning\n", '{"plan":"p"}\n']
    backend.output.clear()
    again = run_of(backend)  # the redelivered run: its code runs again from the top
    await again.emit("planning\n")
    assert again.durable.replaying
    await again.step("plan", lambda: "never")
    await again.emit({"plan": "p"})
    await again.step("research", lambda: "never")  # the last stored step: live from here on
    assert not again.durable.replaying
    await again.emit("report\n")
    assert backend.output == ["report\n"]


async def test_bad_step_names_unstorable_results_and_calls_that_need_a_worker_are_refused() -> None:
    ctx = run_of(LocalBackend())
    with pytest.raises(ValueError, match="hiveq's own"):
        await ctx.step("hiveq.spawn", lambda: 1)
    with pytest.raises(ValueError, match="1-200 characters"):
        await ctx.step("", lambda: 1)
    with pytest.raises(FatalError, match="must be JSON-serialisable"):
        await ctx.step("bad", lambda: {1, 2})
    with pytest.raises(NotDurable, match=r"ctx\.spawn needs a worker"):
        await ctx.spawn([{"id": "k", "agent": "demo"}])
    with pytest.raises(NotDurable, match=r"ctx\.wait_for_signal needs a worker"):
        await ctx.wait_for_signal("approval")
