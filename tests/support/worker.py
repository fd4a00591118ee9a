"""Helpers for worker tests: an in-process worker, a subprocess worker, submitting jobs, waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import Enqueued, enqueue
from hiveq.settings import Settings
from hiveq.worker.main import run_worker

ROOT = Path(__file__).resolve().parents[2]
TEST_AGENTS = "tests.support.agents"


async def submit(b: Broker, agent: str, inputs: Sequence[Any], **spec: Any) -> Enqueued:
    """One task with one independent subtask per input."""
    subs = [SubtaskSpec(id=f"s{i}", agent=agent, input=inp, **spec) for i, inp in enumerate(inputs)]
    return (await enqueue(b, [TaskSubmission(description="worker test", subtasks=subs)]))[0]


@asynccontextmanager
async def worker_in_process(
    settings: Settings,
    agents: Sequence[str],
    *,
    concurrency: int = 4,
    worker_id: str | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """A worker running in this event loop; stopped (gracefully) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            settings,
            agents=agents,
            concurrency=concurrency,
            modules=[TEST_AGENTS],
            stop=stop,
            worker_id=worker_id,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": settings.redis_url,
            "HIVEQ_APP": settings.app,
            "HIVEQ_ENV": settings.env,
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def spawn_worker(
    settings: Settings,
    agents: str,
    *,
    concurrency: int = 4,
    processes: int = 1,
    log: Path | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """`python -m hiveq.worker` in its own process group (so a test can SIGKILL all of it)."""
    args = [
        sys.executable,
        "-m",
        "hiveq.worker",
        "--agents",
        agents,
        "--concurrency",
        str(concurrency),
        "--processes",
        str(processes),
        "--module",
        TEST_AGENTS,
    ]
    if log is None:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=worker_env(settings, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            args, cwd=ROOT, env=worker_env(settings, **env), stdout=out, stderr=out, start_new_session=True
        )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_proc(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc, signal.SIGKILL)
        return proc.wait()
