"""Outage benchmark: what the epoch check and the clock cost, and how fast a data loss is seen.

1. The heartbeat script (epoch check + clock tick + lease extension) with 20 leases, per call,
   against a plain PING round trip on the same connection (the ratio is the number to watch).
2. Data-loss detection: an in-process worker on a redis-server without persistence; the server
   is restarted; the time until the loss is recorded in `meta` (the worker's heartbeat saw it),
   as a ratio to the heartbeat interval.

Starts its own private redis-server; prints min–median–max over several runs and the load.
Run: .venv/bin/python bench/outage.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import heartbeat
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import register_worker
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings
from hiveq.worker.main import run_worker


def spread(xs: list[float], unit: str) -> str:
    return f"{min(xs):.3g}–{statistics.median(xs):.3g}–{max(xs):.3g} {unit}"


async def poll(check: Callable[[], Awaitable[Any]], interval_s: float = 0.005) -> None:
    """Another process's (the worker's) write: nothing to await but Redis itself."""
    while True:
        if await check():
            return
        await asyncio.sleep(interval_s)


def settings(url: str) -> Settings:
    return Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench")


async def heartbeat_cost(url: str, runs: int, calls: int = 300) -> None:
    s = settings(url)
    b = await Broker.connect(s, role="bench")
    try:
        subs = [SubtaskSpec(id=f"s{i}", agent="demo", input=i) for i in range(20)]
        await enqueue(b, [TaskSubmission(description="bench", subtasks=subs)])
        await register_worker(b, "w", ["demo"], 20)
        leases = [j.lease for j in await claim(b, "w", ["demo"], 20)]
        beats, pings = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            for _ in range(calls):
                await heartbeat.heartbeat(b, "w", leases, 20)
            beats.append((time.perf_counter() - t0) / calls * 1e6)
            t0 = time.perf_counter()
            for _ in range(calls):
                await b.redis.ping()
            pings.append((time.perf_counter() - t0) / calls * 1e6)
        ratios = [h / p for h, p in zip(beats, pings, strict=True)]
        print(f"heartbeat, 20 leases: {spread(beats, 'µs')} per call; PING {spread(pings, 'µs')}")
        print(f"  ratio heartbeat/PING: {spread(ratios, 'x')}")
        await purge_namespace(b.redis, b.keys)
    finally:
        await b.close()


async def detection(srv: ServerProcess, runs: int) -> None:
    took: list[float] = []
    beat = 0.0
    for _ in range(runs):
        s = settings(srv.url)
        beat = s.leases.heartbeat_s
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(s, agents=["demo"], concurrency=1, stop=stop, worker_id="bench-w")
        )
        b = await Broker.connect(s, role="bench", check_namespace=False)
        try:
            await poll(lambda b=b: b.redis.exists(b.keys.worker("bench-w")))
            srv.restart()
            t0 = time.monotonic()
            await b.close()
            b = await Broker.connect(s, role="bench", check_namespace=False)
            await poll(lambda b=b: b.redis.hexists(b.keys.meta, "loss"))
            took.append(time.monotonic() - t0)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
            await b.close()
    print(f"data loss recorded after a restart: {spread(took, 's')} (heartbeat every {beat:g} s)")
    print(f"  ratio to the heartbeat interval: {spread([t / beat for t in took], 'x')}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    srv = ServerProcess(find_server_binary("redis")).start()
    try:
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        await heartbeat_cost(srv.url, args.runs)
        await detection(srv, args.runs)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
