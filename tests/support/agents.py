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

from redis.asyncio import Redis

from hiveq.agents.registry import AgentContext, FatalError, agent
from hiveq.contract.errors import ChildFailed, SignalTimeout
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


# -- durable agents (docs/durable.md) ---------------------------------------------------------
# Side effects are counted outside hiveq's namespace (`sidefx:<job id>:<what>`), in the same
# Redis, so a test sees how often a step's code really ran.
SIDEFX = "sidefx:"


def sidefx_key(job_id: str, what: str) -> str:
    return f"{SIDEFX}{job_id}:{what}"


async def _count(ctx: AgentContext, what: str) -> int:
    from redis.asyncio import Redis

    r = Redis.from_url(ctx.settings.redis_url, decode_responses=True)
    try:
        return int(await r.incr(sidefx_key(ctx.job_id, what)))
    finally:
        await r.aclose()


@agent("t.two_steps")
async def two_steps(ctx: AgentContext) -> dict[str, Any]:
    """Two counted steps; with HIVEQ_TEST_HANG_BETWEEN set, hangs after the first (to be killed)."""
    first = await ctx.step("first", _count, ctx, "first")
    if os.environ.get("HIVEQ_TEST_HANG_BETWEEN"):
        await asyncio.sleep(3600)
    second = await ctx.step("second", _count, ctx, "second")
    return {"first": first, "second": second, "attempt": ctx.attempt}


@agent("t.square")
async def square(ctx: AgentContext) -> int:
    n = int(ctx.input)
    return n * n


@agent("t.fan_out")
async def fan_out(ctx: AgentContext) -> dict[str, Any]:
    """Spawns one t.square child per input number and sums their results; counts its runs."""
    runs = await _count(ctx, "runs")
    numbers = list(ctx.input or [])
    kids = await ctx.spawn([{"id": f"sq{n}", "agent": "t.square", "input": n} for n in numbers])
    try:
        results = await ctx.wait_for(kids)
    except ChildFailed as exc:
        return {"failed": [o.subtask_id for o in exc.failed], "runs": runs}
    return {"sum": sum(results), "results": results, "children": kids, "runs": runs}


@agent("t.approval")
async def approval(ctx: AgentContext) -> dict[str, Any]:
    """Waits for signal `approval` (input {"timeout_s": …} optional), emitting before and after;
    with input {"then": name}, waits for that signal too before it returns."""
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    await ctx.emit("asking\n")
    try:
        got = await ctx.wait_for_signal("approval", timeout_s=inp.get("timeout_s"))
    except SignalTimeout:
        return {"timed_out": True}
    await ctx.emit(f"got {got!r}\n")
    if inp.get("then"):
        await ctx.wait_for_signal(inp["then"])
    return {"approval": got}


@agent("t.emitter")
async def emitter(ctx: AgentContext) -> str:
    """Emits input["n"] numbered lines (n from a step), waits for signal `more`, then emits as
    many again."""
    n = int(await ctx.step("count", lambda: (ctx.input or {}).get("n", 5)))
    for i in range(n):
        await ctx.emit(f"line {i}\n")
    await ctx.wait_for_signal("more")
    for i in range(n, 2 * n):
        await ctx.emit(f"line {i}\n")
    return "done"


@agent("t.sync_cancel")
def sync_cancel(ctx: AgentContext) -> str:
    """A blocking agent that polls ctx.is_cancelled(); counts (`sidefx:<job>:saw_cancel`) that it saw it."""
    import redis

    ctx.progress(0.1, "started")
    deadline = time.monotonic() + 60
    while not ctx.is_cancelled() and time.monotonic() < deadline:
        time.sleep(0.01)
    if ctx.is_cancelled():
        with redis.Redis.from_url(ctx.settings.redis_url) as r:
            r.incr(sidefx_key(ctx.job_id, "saw_cancel"))
    return "stopped" if ctx.is_cancelled() else "never cancelled"


GATE = asyncio.Event()  # opened by a test, one line at a time (in-process workers only)


@agent("t.gated")
async def gated(ctx: AgentContext) -> str:
    """Emits a line, then waits for the test to open GATE, three times."""
    for i in range(3):
        await ctx.emit(f"line {i}\n")
        await GATE.wait()
        GATE.clear()
    return "done"


def executions_key(namespace: str, job_id: str) -> str:
    """Where `t.count` counts its runs: outside hiveq's namespace, so hiveq cannot fake it."""
    return f"executions:{namespace}:{job_id}"


@agent("t.count")
async def count(ctx: AgentContext) -> dict[str, Any]:
    """Counts each execution in a key outside hiveq's namespace, fails while input["fail_until"]
    is above the attempt, then waits until the list input["gate"] gets an element (if given)."""
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    name = f"hiveq:{ctx.settings.app}:{ctx.settings.env}:test-agent:{os.getpid()}"  # not a suspect
    r = Redis.from_url(ctx.settings.redis_url, decode_responses=True, client_name=name)
    try:
        n = await r.incr(executions_key(ctx.settings.namespace, ctx.job_id))
        if ctx.attempt < int(inp.get("fail_until", 0)):
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
        if inp.get("gate"):
            await r.blpop([str(inp["gate"])], timeout=300)
    finally:
        await r.aclose()
    return {"runs": n}


FIXED: set[str] = set()  # jobs whose cause of failure a test has "fixed" (in-process workers)


@agent("t.fixable")
async def fixable(ctx: AgentContext) -> dict[str, int]:
    """Fails until a test puts the job id into FIXED (e.g. before retrying it from the DLQ)."""
    if ctx.job_id not in FIXED:
        raise RuntimeError(f"not fixed yet (attempt {ctx.attempt})")
    return {"attempt": ctx.attempt}


@agent("t.ledger")
async def ledger(ctx: AgentContext) -> dict[str, Any]:
    """Appends one line per execution ("job attempt pid") to the file HIVEQ_TEST_LEDGER (outside
    Redis, so an outage cannot lose the count), then sleeps input["s"] seconds (HIVEQ_TEST_SLEEP
    overrides it per process)."""
    # One short append (atomic); blocking for microseconds, and the count must not need Redis.
    with open(os.environ["HIVEQ_TEST_LEDGER"], "a") as out:  # noqa: ASYNC230
        out.write(f"{ctx.job_id} {ctx.attempt} {os.getpid()}\n")
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    override = os.environ.get("HIVEQ_TEST_SLEEP")
    await asyncio.sleep(float(override) if override is not None else float(inp.get("s", 0.1)))
    return {"pid": os.getpid()}


def ledger_counts(path: Path) -> dict[str, int]:
    """Executions per job id, as the t.ledger agent recorded them."""
    counts: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            job = line.split()[0]
            counts[job] = counts.get(job, 0) + 1
    return counts


# -- counted runs (fault tests: every execution counted outside hiveq's namespace) -------------
RUNS_DIR = "HIVEQ_TEST_RUNS_DIR"  # where `_counted` appends one line per run, in a file per job


async def _counted(ctx: AgentContext) -> dict[str, Any]:
    """Counts its run in a file `$HIVEQ_TEST_RUNS_DIR/<job id>` (outside Redis, so that a full
    Redis cannot hide a run); with HIVEQ_TEST_GATE set, first waits for that file to exist."""
    gate = os.environ.get("HIVEQ_TEST_GATE")
    if gate:
        await until(lambda: Path(gate).exists(), 600, "the test to open the gate", interval_s=0.05)
    with (Path(os.environ[RUNS_DIR]) / ctx.job_id).open("a") as runs:
        runs.write(f"{os.getpid()}\n")
    return {"pid": os.getpid()}


for _name in ("t.count_a", "t.count_b", "t.count_c"):
    agent(_name)(_counted)
TALLY_ENV = "HIVEQ_TEST_TALLY"


@agent("t.tally")
async def tally(ctx: AgentContext) -> dict[str, Any]:
    """Appends its job id to the file named by HIVEQ_TEST_TALLY at every start (outside Redis
    altogether, so a failover can neither lose nor fake the count), then takes input["sleep"]."""
    fd = os.open(os.environ[TALLY_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one small atomic write
    try:
        os.write(fd, (ctx.job_id + "\n").encode())
    finally:
        os.close(fd)
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    await asyncio.sleep(float(inp.get("sleep", 0.01)))
    return {"ok": True}


# -- limits (docs/limits.md) -----------------------------------------------------------------
# Each job records its own start and end on the Redis server's clock (the same clock for every
# worker process), outside hiveq's namespace: `sidefx:<input["run"]>:timeline`.


def limits_timeline_key(run: str) -> str:
    return f"{SIDEFX}{run}:timeline"


def limits_gate_key(run: str) -> str:
    return f"{SIDEFX}{run}:gate"


async def _server_ms(r: Redis) -> int:
    sec, usec = await r.time()
    return int(sec) * 1000 + int(usec) // 1000


@agent("t.held")
async def held(ctx: AgentContext) -> dict[str, Any]:
    """Records its start, then (with input["gate"]) waits until the test pushes one token to the
    gate list, then records its end: a test decides when each job ends."""
    import json

    inp = ctx.input if isinstance(ctx.input, dict) else {}
    run = str(inp["run"])
    r = Redis.from_url(ctx.settings.redis_url, decode_responses=True)
    try:
        start = await _server_ms(r)
        await r.rpush(limits_timeline_key(run) + ":started", ctx.job_id)
        if inp.get("gate"):
            await r.blpop([limits_gate_key(run)], timeout=300)
        if inp.get("tokens"):
            await ctx.report_usage(tokens=int(inp["tokens"]))
        end = await _server_ms(r)
        await r.rpush(limits_timeline_key(run), json.dumps({"job": ctx.job_id, "start": start, "end": end}))
    finally:
        await r.aclose()
    return {"start": start, "end": end, "pid": os.getpid()}


@agent("t.ratelimited")
async def ratelimited(ctx: AgentContext) -> dict[str, Any]:
    """Its first run (counted outside the namespace) raises RateLimited(input["retry_after"])."""
    from hiveq.agents.registry import RateLimited

    inp = ctx.input if isinstance(ctx.input, dict) else {}
    runs = await _count(ctx, "runs")
    if runs == 1 and inp.get("retry_after"):
        raise RateLimited(retry_after=float(inp["retry_after"]))
    return {"runs": runs, "pid": os.getpid()}


def tick_runs_key(namespace: str) -> str:
    """Where `t.tick` counts its runs per schedule tick: a hash outside hiveq's namespace."""
    return f"sidefx:{namespace}:ticks"


@agent("t.tick")
async def tick(ctx: AgentContext) -> dict[str, Any]:
    """Counts one run for the schedule tick its task was fired for (metadata.schedule_tick), in a
    hash outside hiveq's namespace: a tick fired twice shows as a count of 2."""
    name = f"hiveq:{ctx.settings.app}:{ctx.settings.env}:test-agent:{os.getpid()}"  # not a suspect
    r = Redis.from_url(ctx.settings.redis_url, decode_responses=True, client_name=name)
    try:
        tick = str(ctx.metadata.get("schedule_tick"))
        return {"runs": int(await r.hincrby(tick_runs_key(ctx.settings.namespace), tick, 1))}
    finally:
        await r.aclose()
