"""Conservation-watch benchmark: the watch's Redis CPU per tick and per 1,000 unfinished jobs, and
the time it takes to mark `vanished` a job popped from the head of its queue (ZPOPMIN), one
taken from the middle (ZREM of a random queued job) and one whose record was deleted (DEL), at
10,000 and 100,000 unfinished jobs.

    .venv/bin/python bench/watch.py [--server valkey|redis] [--sizes 10000,100000] [--runs 7]
                                    [--finished N] [--notify]

Starts its own private server (never touches a shared Redis). The namespace holds the given
number of unfinished jobs (80% waiting over 4 agents, 20% leased), plus as many finished ones as
`--finished` says (they lengthen the jobs index the targeted sweep reads). The watch ticks every
`reap_interval_s` (0.5 s) as it does in a worker; each theft happens at a random moment of the
tick. Redis CPU is `INFO commandstats` time of EVALSHA (the watch's scripts, nothing else runs
meanwhile), and, as the ratio asked for, compared with what one worker's `maintain()` costs per
tick in the same run and with the tick interval (the share of one Redis core). With --notify the
server publishes keyspace notifications (`notify-keyspace-events Kgxe`): deleted records are heard
of at once and the record sweep slows to a safety net.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import time
from typing import cast

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.diagnose.watch import Watch
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.maintain import maintain
from hiveq.queue.purge import purge_namespace
from hiveq.queue.vanish import recover
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

AGENTS = ("a0", "a1", "a2", "a3")


async def evalsha_usec(b: Broker) -> float:
    stats = await b.redis.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def cpu_s(b: Broker) -> float:
    """The server process's CPU seconds (user + sys): unlike command time, not inflated when the
    server waits for a core on a busy machine."""
    cpu = await b.redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def fill(b: Broker, unfinished: int, finished: int) -> None:
    """`finished` jobs that succeeded, then `unfinished` jobs: 80% waiting, 20% leased."""
    total = unfinished + finished
    for at in range(0, total, 1000):
        n = min(1000, total - at)
        subs = [
            TaskSubmission(description="bench", subtasks=[SubtaskSpec(id="s", agent=AGENTS[(at + i) % 4])])
            for i in range(n)
        ]
        await enqueue(b, subs)
    for _ in range(finished // 100):
        got = await claim(b, "bench-done", list(AGENTS), 100)
        await complete(b, [Completion(j.lease, None) for j in got])
    held = unfinished // 5
    while held > 0:
        got = await claim(b, "bench-holder", list(AGENTS), min(1000, held))
        held -= len(got)


def spread(xs: list[float], unit: str = "s", scale: float = 1.0) -> str:
    xs = [x * scale for x in xs]
    return f"{min(xs):.2f} – {statistics.median(xs):.2f} – {max(xs):.2f} {unit}"


async def tick_cost(b: Broker, watch: Watch, ticks: int) -> tuple[float, float, int, int]:
    """Mean EVALSHA µs and server CPU µs per quiet tick; the record-sweep window; ticks per pass."""
    before, cpu = await evalsha_usec(b), await cpu_s(b)
    for _ in range(ticks):
        await watch.tick()
    per_tick = (await evalsha_usec(b) - before) / ticks
    cpu_per_tick = (await cpu_s(b) - cpu) * 1e6 / ticks
    return per_tick, cpu_per_tick, watch.window(), -(-watch.pending // watch.window())


async def maintain_cost(b: Broker, ticks: int) -> float:
    before = await evalsha_usec(b)
    for _ in range(ticks):
        await maintain(b)
    return (await evalsha_usec(b) - before) / ticks


async def detect(b: Broker, watch: Watch, kind: str) -> tuple[float, float, int]:
    """Steal (ZREM from its queue) or delete (DEL its record) a random waiting job at a random
    moment between two ticks; seconds until a tick marks it vanished, EVALSHA µs of that tick,
    index entries the targeted sweep read. The job is recovered afterwards."""
    agent = random.choice(AGENTS)
    q = b.keys.queue(agent)
    at = 0 if kind == "pop" else random.randrange(int(await b.redis.zcard(q)))
    [victim] = cast("list[str]", await b.redis.zrange(q, at, at))
    await watch.tick()
    phase = random.uniform(0, watch.interval_s)
    await asyncio.sleep(phase)
    if kind == "delete":
        await b.redis.delete(b.keys.job(victim))
    else:
        await b.redis.zrem(q, victim)  # at rank 0 for "pop": what a ZPOPMIN takes
    t0 = time.perf_counter()
    await asyncio.sleep(watch.interval_s - phase)
    while True:
        before = await evalsha_usec(b)
        report = await watch.tick()
        if victim in report.marked:
            took = time.perf_counter() - t0
            cost = await evalsha_usec(b) - before
            break
        await asyncio.sleep(watch.interval_s)
    await recover(b, victim, "bench")
    return took, cost, report.searched


async def size_run(url: str, unfinished: int, finished: int, runs: int) -> None:
    s = Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench").with_(lease_s=3600.0)
    b = await Broker.connect(s, role="bench")
    try:
        t0 = time.perf_counter()
        await fill(b, unfinished, finished)
        took_s = time.perf_counter() - t0
        print(f"\n{unfinished:,} unfinished + {finished:,} finished jobs (filled in {took_s:.0f} s)")
        watch = Watch(b, "bench")
        await watch.settle()
        per_tick, cpu_tick, window, ticks_per_pass = await tick_cost(b, watch, 40)
        base = await maintain_cost(b, 40)
        pass_us = per_tick * ticks_per_pass
        interval_ms = watch.interval_s * 1000
        print(
            f"  quiet tick: {per_tick:,.0f} µs of Redis command time ({cpu_tick:,.0f} µs of server CPU) for "
            f"the tripwire + {window:,} records: {per_tick / (interval_ms * 10):.2f}% of one core at one "
            f"tick per {interval_ms:.0f} ms; {per_tick / base:.1f}x one worker's maintain() ({base:,.0f} µs)"
        )
        print(
            f"  whole record pass: {ticks_per_pass} ticks = {ticks_per_pass * watch.interval_s:.1f} s, "
            f"{pass_us / 1000:,.1f} ms of Redis, "
            f"{pass_us / (unfinished / 1000):,.0f} µs per 1,000 unfinished jobs"
        )
        for kind, label in (
            ("pop", "ZPOPMIN (a head)"),
            ("theft", "ZREM (a random one)"),
            ("delete", "DEL of a record"),
        ):
            took, cost, searched = [], [], []
            for _ in range(runs):
                t, c, n = await detect(b, watch, kind)
                took.append(t)
                cost.append(c)
                searched.append(n)
            print(
                f"  {label:<20} marked vanished after {spread(took)} (min – median – max of {runs}); "
                f"detecting tick {spread(cost, 'ms', 0.001)} of Redis, targeted sweep read "
                f"{statistics.median(searched):,.0f} index entries (median)"
            )
    finally:
        await purge_namespace(b.redis, b.keys)
        await b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--server", choices=["valkey", "redis"], default="valkey")
    ap.add_argument("--sizes", default="10000,100000", help="unfinished jobs, comma-separated")
    ap.add_argument("--finished", type=int, default=0, help="finished jobs in the index besides")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--notify", action="store_true", help="server publishes keyspace notifications")
    args = ap.parse_args()
    extra = ["--notify-keyspace-events", "Kgxe"] if args.notify else []
    srv = ServerProcess(find_server_binary(args.server), extra_args=extra).start()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        mode = "keyspace notifications on" if args.notify else "no keyspace notifications (the default)"
        print(f"server: {srv.binary} on port {srv.port}, {mode}; {os.cpu_count()} cores, load average {load}")
        for n in (int(x) for x in args.sizes.split(",")):
            asyncio.run(size_run(srv.url, n, args.finished, args.runs))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\nload average at the end {load}")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
