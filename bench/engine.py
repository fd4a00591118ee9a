"""Engine benchmark: raw Redis ceiling vs hiveq enqueue, claim+complete and memory per task.

Starts its own private server (never touches a shared Redis), prints numbers and ratios.
Run: .venv/bin/python bench/engine.py [--server valkey|redis] [--jobs 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings


def one_job() -> TaskSubmission:
    return TaskSubmission(description="bench", subtasks=[SubtaskSpec(id="s", agent="noop", input={"i": 1})])


def four_jobs() -> TaskSubmission:
    subs = [
        SubtaskSpec(id="plan", agent="noop", input={"i": 1}),
        SubtaskSpec(id="a", agent="noop", input={"i": 2}, depends_on=["plan"]),
        SubtaskSpec(id="b", agent="noop", input={"i": 3}, depends_on=["plan"]),
        SubtaskSpec(id="join", agent="noop", input={"i": 4}, depends_on=["a", "b"]),
    ]
    return TaskSubmission(description="bench four", subtasks=subs)


def fan_out(n: int = 100) -> TaskSubmission:
    subs = [SubtaskSpec(id=f"s{i}", agent="noop", input={"i": i}) for i in range(n)]
    return TaskSubmission(description="bench fan-out", subtasks=subs)


def raw_ceiling(port: int, n: int) -> tuple[float, str]:
    """LPUSH+RPOP ops/s: redis-benchmark when installed (50 clients), else a redis-py pipeline."""
    exe = shutil.which("redis-benchmark")
    if exe:
        out = subprocess.run(
            [exe, "-p", str(port), "-t", "lpush,rpop", "-n", str(n), "-q"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rates = [float(x) for x in re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))]
        return sum(rates[-2:]) / 2, f"redis-benchmark -t lpush,rpop -n {n} (50 clients), mean of both"
    return asyncio.run(_pipeline_ceiling(port, n)), "redis-py pipeline loop (redis-benchmark not found)"


async def _pipeline_ceiling(port: int, n: int) -> float:
    r = Redis(port=port)
    t0 = time.perf_counter()
    for _ in range(n // 1000):
        pipe = r.pipeline(transaction=False)
        for _ in range(500):
            pipe.lpush("bench:list", "x")
            pipe.rpop("bench:list")
        await pipe.execute()
    rate = (n // 1000) * 1000 / (time.perf_counter() - t0)
    await r.aclose()
    return rate


async def server_cpu_us(r: Redis) -> float:
    """CPU time the server process has used so far (INFO cpu, user + system), in µs."""
    cpu = await r.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


async def timed(b: Broker, label: str, jobs: int, ceiling: float, fn: Callable[[], Awaitable[None]]) -> float:
    used = await server_cpu_us(b.redis)
    t0 = time.perf_counter()
    await fn()
    rate = jobs / (time.perf_counter() - t0)
    per_job = (await server_cpu_us(b.redis) - used) / jobs
    share = rate / ceiling
    print(f"{label:<46} {rate:>10,.0f} jobs/s   {share:6.1%} of ceiling   {per_job:5.1f} µs Redis CPU/job")
    return rate


async def sequential(b: Broker, jobs: int) -> None:
    for _ in range(jobs):
        await enqueue(b, [one_job()])


async def concurrent(b: Broker, jobs: int, n: int = 32) -> None:
    async def one(k: int) -> None:
        for _ in range(k):
            await enqueue(b, [one_job()])

    await asyncio.gather(*[one(jobs // n) for _ in range(n)])


async def batched(b: Broker, jobs: int) -> None:
    for _ in range(jobs // 1000):
        await enqueue(b, [one_job() for _ in range(1000)])


async def batched_fan_out(b: Broker, jobs: int) -> None:
    for _ in range(jobs // 1000):
        await enqueue(b, [fan_out() for _ in range(10)])


async def drain(b: Broker, jobs: int | None = None, batch: int = 100) -> None:
    """Claim and complete `jobs` (all that wait when None), `batch` per call."""
    done = 0
    while jobs is None or done < jobs:
        got = await claim(b, "bench-worker", ["noop"], batch)
        if not got:
            return
        await complete(b, [Completion(j.lease, None) for j in got])
        done += len(got)


async def run(url: str, jobs: int, ceiling: float) -> dict[str, float]:
    s = Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench")
    b = await Broker.connect(s, role="bench", max_connections=64)
    out: dict[str, float] = {}
    quarter = jobs // 4 // 1000 * 1000
    out["enqueue_one"] = await timed(
        b, "enqueue, one at a time (sequential awaits)", quarter, ceiling, lambda: sequential(b, quarter)
    )
    out["enqueue_concurrent"] = await timed(
        b,
        "enqueue, one at a time (32 coroutines)",
        quarter // 32 * 32,
        ceiling,
        lambda: concurrent(b, quarter),
    )
    out["enqueue_batched"] = await timed(
        b,
        "enqueue, batched (1,000 one-job tasks per call)",
        jobs // 1000 * 1000,
        ceiling,
        lambda: batched(b, jobs),
    )
    out["enqueue_fan_out"] = await timed(
        b, "enqueue, batched (10 tasks x 100 subtasks)", quarter, ceiling, lambda: batched_fan_out(b, quarter)
    )
    one_by_one = quarter // 4
    out["claim_complete_one"] = await timed(
        b, "claim+complete, one job per call", one_by_one, ceiling, lambda: drain(b, one_by_one, batch=1)
    )
    total = int(await b.redis.zcard(b.keys.queue("noop")))
    out["claim_complete"] = await timed(
        b, "claim+complete, batches of 100, events on", total, ceiling, lambda: drain(b)
    )
    await purge_namespace(b.redis, b.keys)
    out["bytes_per_task"] = await memory_per_task(b)
    await purge_namespace(b.redis, b.keys)
    await b.close()
    return out


async def memory_per_task(b: Broker, tasks: int = 2000) -> float:
    """used_memory delta for finished four-subtask tasks (records, results, logs, stream share)."""
    await b.claim_namespace()
    before = int((await b.redis.info("memory"))["used_memory"])
    for _ in range(tasks // 500):
        await enqueue(b, [four_jobs() for _ in range(500)])
    while True:
        got = await claim(b, "bench-worker", ["noop"], 100)
        if not got:
            break
        await complete(b, [Completion(j.lease, {"ok": True}) for j in got])
    after = int((await b.redis.info("memory"))["used_memory"])
    finished = int(await b.redis.zcard(b.keys.finished))
    assert finished == tasks, f"only {finished} of {tasks} tasks finished"
    per = (after - before) / tasks
    label = "memory per finished four-subtask task"
    print(f"{label:<46} {per:>10,.0f} bytes   (INFO used_memory delta / {tasks})")
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--server", choices=["valkey", "redis"], default="valkey")
    ap.add_argument("--jobs", type=int, default=40_000, help="jobs for the batched run; others use a quarter")
    args = ap.parse_args()
    srv = ServerProcess(find_server_binary(args.server)).start()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"server: {srv.binary} on port {srv.port}; {os.cpu_count()} cores, load average {load}")
        ceiling, how = raw_ceiling(srv.port, 200_000)
        print(f"{'raw LPUSH+RPOP ceiling':<46} {ceiling:>10,.0f} ops/s    ({how})")
        res = asyncio.run(run(srv.url, args.jobs, ceiling))
        goals = {"enqueue_one": 5_000, "enqueue_batched": 50_000, "claim_complete": 10_000}
        for key, goal in goals.items():
            verdict = "met" if res[key] >= goal else "MISSED"
            print(f"goal {key:<20} >= {goal:>6,} jobs/s: {verdict} ({res[key]:,.0f})")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
