"""Claim throughput with a limit key on every job versus no limits, in one run (docs/limits.md).

    .venv/bin/python bench/limits.py [--jobs 20000] [--batch 100] [--runs 3] [--server valkey|redis]

Starts a private server (never a shared Redis). Each round enqueues --jobs one-job tasks in a
fresh namespace, then one client claims them --batch at a time as fast as it can (the claim is
what limits change; running and completing jobs is the same either way). Three kinds, run in
turn (alternating, so a change of machine load hits them alike):
  free     no limit keys
  keyed    every job under one of 10 keys tenant:0..9, with a rule `tenant:*` concurrency 10^6
           (so nothing is held: the cost of looking the rule up, counting and reserving)
  rated    the same keys with a rule `tenant:*` rate 10^6/s and concurrency 10^6
Prints claims/s min–median–max per kind, the load average, and the ratio of each kind's median
to free's (goal: keyed and rated >= 0.80), plus Redis CPU µs per claimed job.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time

from redis.asyncio import Redis

from hiveq.contract.limit_rules import LimitRule
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.limits import set_limit
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

KINDS = ("free", "keyed", "rated")


async def cpu_us(r: Redis) -> float:
    cpu = await r.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


async def one_round(url: str, kind: str, jobs: int, batch: int) -> tuple[float, float]:
    """(claims per second, Redis CPU µs per claimed job) for one kind."""
    s = Settings(redis_url=url, app="bench", env=f"l{secrets.token_hex(4)}")
    b = await Broker.connect(s, role="bench")
    try:
        if kind != "free":
            rate = "1000000/s" if kind == "rated" else None
            await set_limit(b, "tenant:*", LimitRule(concurrency=1_000_000, rate=rate))
        subs = [
            TaskSubmission(
                description="bench",
                subtasks=[
                    SubtaskSpec(
                        id="s",
                        agent="noop",
                        input={"i": i},
                        limits=[] if kind == "free" else [f"tenant:{i % 10}"],
                    )
                ],
            )
            for i in range(jobs)
        ]
        await enqueue(b, subs)
        cpu0, t0 = await cpu_us(b.redis), time.perf_counter()
        got = 0
        while got < jobs:
            n = len(await claim(b, "bench-worker", ["noop"], batch))
            if n == 0:
                raise RuntimeError(f"{kind}: claimed {got} of {jobs}, then nothing")
            got += n
        took, cpu = time.perf_counter() - t0, await cpu_us(b.redis) - cpu0
        await purge_namespace(b.redis, b.keys)
        return got / took, cpu / got
    finally:
        await b.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--server", default="valkey")
    args = ap.parse_args()
    srv = ServerProcess(find_server_binary(args.server)).start()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"server {srv.binary} port {srv.port}; {os.cpu_count()} cores; load average before {load}")
        print(f"{args.jobs} jobs a round, {args.batch} a claim, {args.runs} rounds a kind (alternating)")
        rates: dict[str, list[float]] = {k: [] for k in KINDS}
        cpus: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(args.runs):
            for kind in KINDS:
                r, c = await one_round(srv.url, kind, args.jobs, args.batch)
                rates[kind].append(r)
                cpus[kind].append(c)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after {load}")
        free = statistics.median(rates["free"])
        for kind in KINDS:
            xs = sorted(rates[kind])
            med = statistics.median(xs)
            print(
                f"{kind:6} claims/s min {xs[0]:,.0f}  median {med:,.0f}  max {xs[-1]:,.0f}  "
                f"ratio to free {med / free:.2f}  Redis CPU {statistics.median(cpus[kind]):.1f} µs/job"
            )
    finally:
        srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
