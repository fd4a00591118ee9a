"""Worker benchmark: drain 20,000 queued no-op jobs with one and with two worker processes, and
measure enqueue-to-start latency on an idle worker (one job at a time).

    .venv/bin/python bench/worker.py [--jobs 20000] [--concurrency 200] [--redis-url URL]

Without --redis-url it starts a private Valkey (custody events are always on: every claim and
completion appends to the event stream and the job's custody log). Prints jobs/s, p50/p99 and the
ratios to the goals (>= 8,000 jobs/s with one process; p50 <= 1 ms, p99 <= 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from redis.asyncio import Redis

from hiveq.agents.registry import AgentContext, agent
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


@agent("bench.noop")
async def noop(ctx: AgentContext) -> dict[str, float]:
    """Does nothing but note when it started (wall clock, comparable across processes)."""
    return {"t": time.time()}


async def poll(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], interval: float) -> None:
    """Wait for a condition in another process (the agent's own clock is what gets measured)."""
    while True:
        if done(await read()):
            return
        await asyncio.sleep(interval)


def spawn(settings: Settings, processes: int, concurrency: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        REDIS_URL=settings.redis_url,
        HIVEQ_APP=settings.app,
        HIVEQ_ENV=settings.env,
        PYTHONPATH=str(HERE),
    )
    args = [
        sys.executable,
        "-m",
        "hiveq.worker",
        "--agents",
        "bench.noop",
        "--module",
        "worker",
        "--processes",
        str(processes),
        "--concurrency",
        str(concurrency),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(args, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(30)


async def fill(b: Broker, n: int) -> list[str]:
    ids: list[str] = []
    per_task = 100
    subs = [SubtaskSpec(id=f"s{i}", agent="bench.noop") for i in range(per_task)]
    batch = [TaskSubmission(description="bench", subtasks=subs) for _ in range(n // per_task)]
    for i in range(0, len(batch), 20):
        for e in await enqueue(b, batch[i : i + 20]):
            ids += e.job_ids
    return ids


async def drain(url: str, jobs: int, processes: int, concurrency: int) -> tuple[float, float]:
    """(jobs/s from the first start to the last finish by the jobs' own stamps, wall seconds from
    spawning the worker processes until the last job was seen succeeded, start-up included)."""
    settings = Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench")
    b = await Broker.connect(settings, role="bench")
    try:
        ids = await fill(b, jobs)
        t0 = time.monotonic()
        proc = spawn(settings, processes, concurrency)
        try:
            await poll(lambda: inspect.counts(b), lambda c: c.get("succeeded", 0) >= len(ids), 0.02)
            wall = time.monotonic() - t0
        finally:
            stop(proc)
        pipe = b.redis.pipeline(transaction=False)
        for j in ids:
            pipe.hmget(b.keys.job(j), "started", "finished")
        rows = await pipe.execute()
        first = min(int(r[0]) for r in rows)
        last = max(int(r[1]) for r in rows)
        return len(ids) / ((last - first) / 1000), wall
    finally:
        await purge_namespace(Redis.from_url(url, decode_responses=True), b.keys)
        await b.close()


async def latency(url: str, samples: int) -> tuple[list[float], list[float]]:
    """Per job, ms from (a) calling enqueue and (b) enqueue's reply until the agent starts."""
    settings = Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench")
    b = await Broker.connect(settings, role="bench")
    proc = spawn(settings, 1, 10)
    out: list[float] = []
    acked: list[float] = []
    try:
        await poll(lambda: b.redis.zcard(b.keys.workers), bool, 0.05)
        await asyncio.sleep(0.5)
        sub = [SubtaskSpec(id="one", agent="bench.noop")]
        for _ in range(samples):
            t0 = time.time()
            e = (await enqueue(b, [TaskSubmission(description="latency", subtasks=sub)]))[0]
            t1 = time.time()
            key = b.keys.job(e.job_ids[0])
            await poll(functools.partial(b.redis.hget, key, "state"), lambda s: s == "succeeded", 0.001)
            result = await inspect.get_job(b, e.job_ids[0])
            out.append((result.result["t"] - t0) * 1000)
            acked.append((result.result["t"] - t1) * 1000)
            await asyncio.sleep(0.005)  # idle worker: back to waiting before the next job
    finally:
        stop(proc)
        await purge_namespace(Redis.from_url(url, decode_responses=True), b.keys)
        await b.close()
    return out, acked


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--redis-url", default=None)
    a = ap.parse_args()
    server = None
    url = a.redis_url
    if url is None:
        server = ServerProcess(find_server_binary("valkey")).start()
        url = server.url
    try:
        for procs in (1, 2):
            rate, wall = await drain(url, a.jobs, procs, a.concurrency)
            goal = f" ({rate / 8000:.2f}x the 8,000 jobs/s goal)" if procs == 1 else ""
            print(
                f"drain {a.jobs:,} no-op jobs, {procs} process(es) x {a.concurrency} slots: "
                f"{rate:,.0f} jobs/s{goal}; {wall:.2f} s wall including process start-up"
            )
        lat, acked = await latency(url, a.samples)
        for name, xs in (("from the enqueue call", lat), ("from enqueue's reply", acked)):
            p50, p99 = pct(xs, 50), pct(xs, 99)
            print(
                f"enqueue-to-start on an idle worker, {name} ({len(xs)} jobs): p50 {p50:.2f} ms "
                f"({p50 / 1:.2f}x the 1 ms goal), p99 {p99:.2f} ms ({p99 / 5:.2f}x the 5 ms goal), "
                f"mean {statistics.mean(xs):.2f} ms"
            )
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
