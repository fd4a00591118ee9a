"""Agents the worker tests run (loaded with `--module tests.support.agents` in subprocesses).

Behaviour can be steered per process with environment variables, so one test can make the first
worker slow and the second one fast.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from hiveq.agents.registry import AgentContext, FatalError, agent
from tests.support.waiting import until


@agent("t.echo")
async def echo(ctx: AgentContext) -> dict[str, Any]:
    return {"input": ctx.input, "deps": ctx.dependency_results, "attempt": ctx.attempt}


@agent("t.noop")
async def noop(ctx: AgentContext) -> dict[str, float]:
    return {"t": time.time()}


@agent("t.sleep")
async def sleep(ctx: AgentContext) -> dict[str, Any]:
    """Sleeps input["s"] seconds, or HIVEQ_TEST_SLEEP when set (a per-process override); with
    HIVEQ_TEST_GATE set, first waits until that file exists (a test opens the gate)."""
    gate = os.environ.get("HIVEQ_TEST_GATE")
    if gate:
        await until(lambda: Path(gate).exists(), 600, "the test to open the gate", interval_s=0.05)
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    override = os.environ.get("HIVEQ_TEST_SLEEP")
    secs = float(override) if override is not None else float(inp.get("s", 0.1))
    await asyncio.sleep(secs)
    return {"slept": secs, "pid": os.getpid()}


@agent("t.sync")
def sync_work(ctx: AgentContext) -> dict[str, Any]:
    """A blocking agent: runs in the thread pool and reports progress from its thread."""
    ctx.progress(0.5, "half way")
    time.sleep(0.05)
    return {"thread": threading.current_thread().name}


@agent("t.flaky")
async def flaky(ctx: AgentContext) -> dict[str, int]:
    """Fails until attempt input["ok_at"] (a very large value: always fails)."""
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    if ctx.attempt < int(inp.get("ok_at", 10**9)):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@agent("t.fatal")
async def fatal(ctx: AgentContext) -> None:
    raise FatalError("configuration missing: set T_CONFIG")


@agent("t.crash")
async def crash(ctx: AgentContext) -> None:
    """A poison job: kills its own worker process."""
    os.kill(os.getpid(), signal.SIGKILL)


@agent("t.wait_cancel")
async def wait_cancel(ctx: AgentContext) -> str:
    """Runs until told to stop; records that it saw the cancellation signal."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        CANCELLED.add(ctx.job_id)
        raise
    return "never"


@agent("t.bad_result")
async def bad_result(ctx: AgentContext) -> object:
    return {"not json": {1, 2}}


def _connect(target: str) -> None:
    raise ConnectionError(f"cannot reach {target}")


@agent("t.leaky")
async def leaky(ctx: AgentContext) -> None:
    """Careless code: puts every secret the worker holds, and a URL with a password, in its error."""
    s = ctx.settings
    tokens = ",".join(s.api.api_tokens)
    _connect(f"{s.redis_url} token={tokens} key={s.llm.api_key} db=postgres://app:dbpw@db/x")


@agent("t.sync_raise")
def sync_raise(ctx: AgentContext) -> None:
    raise ValueError(f"sync agent failed on attempt {ctx.attempt}")


CANCELLED: set[str] = set()  # test registry of jobs whose agent saw cancellation
