"""Schedules benchmark: what firing costs Redis when nothing is due (every API and worker process
pays it every `reap_interval_s`), compared in the same run with an idle `promote_due` (which every
worker already pays as often), and how late a tick's task is enqueued after its tick with three
processes' worth of brokers racing (a per-second cron, the firing loop every 0.1 s).

    .venv/bin/python bench/schedules.py [--server valkey|redis] [--runs 5] [--calls 2000] [--ticks 8]

Starts its own private server (never touches a shared Redis). Redis CPU is `INFO commandstats`
time of EVALSHA; the lateness is Redis time of the task's creation minus its tick. Prints
min–median–max over the runs and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
from datetime import datetime

from hiveq.contract.views import ScheduleRequest
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.maintain import promote_due
from hiveq.queue.purge import purge_namespace
from hiveq.schedule import store
from hiveq.schedule.fire import fire_due
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings


async def evalsha_usec(b: Broker) -> float:
    stats = await b.redis.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def spread(xs: list[float]) -> str:
    return f"{min(xs):.1f} – {statistics.median(xs):.1f} – {max(xs):.1f}"


async def idle_cost(b: Broker, calls: int) -> tuple[float, float]:
    """Redis µs per idle due_schedules call and per idle promote_due call (10 schedules, none due)."""
    for i in range(10):
        await store.put(b, f"s{i}", ScheduleRequest(cron="@yearly", task={"description": "x"}))
    out = []
    for op in (lambda: fire_due(b), lambda: promote_due(b)):
        before = await evalsha_usec(b)
        for _ in range(calls):
            await op()
        out.append((await evalsha_usec(b) - before) / calls)
    return out[0], out[1]


async def lateness(brokers: list[Broker], ticks: int) -> list[float]:
    """ms from each tick to its task's creation, three brokers firing every 0.1 s."""
    b = brokers[0]
    await store.put(b, "often", ScheduleRequest(cron="* * * * * *", task={"description": "tick"}))
    stop = asyncio.Event()

    async def loop(x: Broker) -> None:
        while not stop.is_set():
            await fire_due(x)
            await asyncio.sleep(0.1)

    runners = [asyncio.create_task(loop(x)) for x in brokers]
    for _ in range(3000):  # at most 10 minutes
        if (await store.get(b, "often")).fired >= ticks:
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*runners)
    await store.remove(b, "often")
    page = await inspect.list_tasks(b, None, 0, 1000)
    late = []
    for t in page.items:
        tick = t.metadata.get("schedule_tick")
        if tick and t.created_ms:
            late.append(t.created_ms - datetime.fromisoformat(str(tick)).timestamp() * 1000)
    return late


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--server", default="valkey", choices=["valkey", "redis"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--ticks", type=int, default=8)
    args = p.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    server = ServerProcess(find_server_binary(args.server)).start()
    fire_us, promote_us, late_ms = [], [], []
    try:
        for _ in range(args.runs):
            s = Settings(redis_url=server.url, app="b" + secrets.token_hex(4), env="bench")
            brokers = [await Broker.connect(s, role="bench", ident=str(i)) for i in range(3)]
            try:
                f, pr = await idle_cost(brokers[0], args.calls)
                fire_us.append(f)
                promote_us.append(pr)
                late_ms += await lateness(brokers, args.ticks)
            finally:
                await purge_namespace(brokers[0].redis, brokers[0].keys)
                for x in brokers:
                    await x.close()
    finally:
        server.stop()
    ratio = [f / pr for f, pr in zip(fire_us, promote_us, strict=True)]
    print(f"{args.server}, {args.runs} runs (min – median – max)")
    print(f"idle due_schedules, Redis µs per call:   {spread(fire_us)}")
    print(f"idle promote_due, Redis µs per call:     {spread(promote_us)}")
    print(f"ratio due_schedules / promote_due:       {spread(ratio)}")
    print(f"tick -> task enqueued, ms ({len(late_ms)} ticks, 3 brokers, 0.1 s loop): {spread(late_ms)}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
