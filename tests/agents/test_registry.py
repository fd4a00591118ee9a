"""The agent registry: @agent, lookup, loading user modules, and the context's progress bridge."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hiveq import AgentContext, agent
from hiveq.agents.registry import get_agent, load_modules, registered_agents
from hiveq.contract.errors import ConfigError


def test_builtin_and_decorated_agents_are_registered() -> None:
    @agent("reg.async", timeout_s=3)
    async def a(ctx: AgentContext) -> int:
        return 1

    @agent("reg.sync")
    def s(ctx: AgentContext) -> int:
        return 2

    names = registered_agents()
    assert {"demo", "llm", "reg.async", "reg.sync"} <= set(names)
    spec_a, spec_s = get_agent("reg.async"), get_agent("reg.sync")
    assert spec_a is not None and spec_a.is_async and spec_a.timeout_s == 3
    assert spec_s is not None and not spec_s.is_async
    assert get_agent("reg.missing") is None


def test_two_functions_under_one_name_are_refused() -> None:
    @agent("reg.dup")
    def first(ctx: AgentContext) -> None:
        return None

    def second(ctx: AgentContext) -> None:
        return None

    with pytest.raises(ConfigError, match="registered twice"):
        agent("reg.dup")(second)


def test_invalid_agent_name_is_refused_with_the_rule() -> None:
    with pytest.raises(ConfigError, match="a-z, 0-9"):
        agent("Bad Name")(lambda ctx: None)


def test_module_that_fails_to_import_is_named() -> None:
    with pytest.raises(ConfigError, match=r"'tests\.support\.no_such_module'.*--module"):
        load_modules(["tests.support.no_such_module"])
    assert "t.echo" in load_modules(["tests.support.agents"])


async def test_progress_works_from_async_and_from_a_sync_agent_thread() -> None:
    seen: list[tuple[float, str, str]] = []

    async def report(fraction: float, message: str) -> None:
        seen.append((fraction, message, threading.current_thread().name))

    ctx = AgentContext(
        job_id="j", task_id="t", subtask_id="s", agent="a", _progress=report, _loop=asyncio.get_running_loop()
    )
    await ctx.progress(0.25, "async")
    await asyncio.to_thread(ctx.progress, 0.5, "from a thread")
    assert [(f, m) for f, m, _ in seen] == [(0.25, "async"), (0.5, "from a thread")]
    assert seen[1][2] == threading.current_thread().name  # ran on the loop, not in the thread
    assert not ctx.is_cancelled()
    ctx.cancelled.set()
    assert ctx.is_cancelled()
