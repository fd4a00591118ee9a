"""execute: run one job's agent with its context, under its timeout, and say how it ended.

The outcome is data (`Outcome`), never an exception, so the loop can batch completions and
failures. Errors are turned into sentences a user can read in the job record.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hiveq.agents.durable import Suspended
from hiveq.agents.registry import AgentContext, AgentSpec, FatalError, RateLimited
from hiveq.contract.codec import dumps_bounded
from hiveq.contract.errors import ChildFailed, HiveqError, SignalTimeout
from hiveq.contract.models import ClaimedJob
from hiveq.contract.redact import redact
from hiveq.worker.tracebacks import agent_traceback


class Ending(Enum):
    OK = "ok"
    FAILED = "failed"  # retried by the engine's policy (or dead-lettered when fatal/at the limit)
    QUARANTINE = "quarantine"  # the worker cannot run it at all: undecodable input, unknown agent
    SUSPENDED = "suspended"  # a durable wait: suspend.lua handed the job back, nothing to record
    RATE_LIMITED = "rate_limited"  # the agent raised RateLimited: hand back, cool its keys down


# Failures that a retry would meet again: dead-letter at once. A wait's outcome is stored, so an
# uncaught ChildFailed or SignalTimeout is replayed by every later run.
FATAL = (FatalError, ChildFailed, SignalTimeout)


@dataclass(frozen=True)
class Outcome:
    ending: Ending
    result: Any = None
    error: str = ""
    fatal: bool = False
    traceback: str = ""  # the agent's, when it raised; kept with the job (bounded by the engine)
    retry_after: float = 0.0  # RATE_LIMITED: how long its limit keys cool down
    cool_key: str | None = None  # RATE_LIMITED: the one key to cool (None: all of the job's)


def precheck(job: ClaimedJob, spec: AgentSpec | None, worker_id: str) -> Outcome | None:
    """Jobs this worker must not run: kept in quarantine with the reason, never dropped."""
    if job.raw_input is not None:
        return Outcome(
            Ending.QUARANTINE,
            error=f"input of job {job.id} is not valid JSON ({job.raw_input[:80]!r}); it was written "
            "by something other than hiveq's enqueue. Fix the input and retry it from the dead letters",
        )
    if job.limit_fail is not None:
        return Outcome(Ending.FAILED, error=job.limit_fail, fatal=True)
    if spec is None:
        return Outcome(
            Ending.QUARANTINE,
            error=f"worker {worker_id} has no agent {job.agent!r}; register it with @agent({job.agent!r}) "
            "in a module loaded with --module, then retry the job",
        )
    return None


def effective_timeout(job: ClaimedJob, spec: AgentSpec) -> float:
    if spec.timeout_s is not None:
        return min(spec.timeout_s, job.timeout_s)
    return job.timeout_s


async def execute(job: ClaimedJob, spec: AgentSpec, ctx: AgentContext, executor: Executor | None) -> Outcome:
    """Run the agent. Cancellation (lease lost, shutdown) propagates as CancelledError."""
    timeout = effective_timeout(job, spec)
    try:
        async with asyncio.timeout(timeout):
            if spec.is_async:
                result = await spec.fn(ctx)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(executor, functools.partial(spec.fn, ctx))
    except TimeoutError:
        ctx.cancelled.set()  # a cooperative sync agent still running in its thread stops now
        return Outcome(
            Ending.FAILED,
            error=f"timed out after {timeout:g} s (agent {job.agent!r}, attempt {job.attempt}); raise the "
            "subtask's timeout_s or HIVEQ_JOB_TIMEOUT if the work needs longer",
        )
    except Suspended:
        return Outcome(Ending.SUSPENDED)
    except RateLimited as exc:
        return Outcome(Ending.RATE_LIMITED, error=str(exc), retry_after=exc.retry_after, cool_key=exc.key)
    except asyncio.CancelledError:
        ctx.cancelled.set()
        raise
    except Exception as exc:
        fatal = isinstance(exc, FATAL)
        if not fatal:
            ctx.logger.warning("agent raised %s: %s", type(exc).__name__, exc, exc_info=True)
        error = f"{exc}" if fatal else f"{type(exc).__name__}: {exc}"
        secrets = ctx.settings.secrets
        return Outcome(
            Ending.FAILED,
            error=redact(error, secrets),
            fatal=fatal,
            traceback=agent_traceback(exc, secrets),
        )
    return Outcome(Ending.OK, result=result)


def check_result(job_id: str, result: Any, max_bytes: int) -> str | None:
    """Why a result cannot be stored (not JSON, too large), or None. Used only when a batch was
    refused, so the common case serialises each result once."""
    try:
        dumps_bounded(result, f"result of job {job_id}", max_bytes)
    except HiveqError as exc:
        return f"the agent returned an unusable result: {exc}"
    return None
