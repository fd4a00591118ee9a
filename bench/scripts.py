"""Redis CPU per call of the scripts a worker runs most, one job per call, and of idle maintenance.

Starts its own private server (never touches a shared Redis). Each script call is made once
through its typed wrapper and recorded (script, KEYS, ARGV); the recorded call is then sent
again many times in pipelines of 100 (with the job or task id replaced where it must differ), so
the network round trip and the client do not count, and the server's CPU time (INFO cpu, user +
system) before and after gives the cost of one call. The cost of an empty script (`return 1`)
sent the same way is printed first, as the unit; the best of three rounds is kept.
Run: .venv/bin/python bench/scripts.py [--server valkey|redis] [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from hiveq.contract.lease import Lease
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.maintain import expire_finished, promote_due, reap_expired
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import register_worker
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

Call = tuple[str, list[Any], list[Any]]  # script, KEYS, ARGV
BATCH = 100


def one_job() -> TaskSubmission:
    return TaskSubmission(description="bench", subtasks=[SubtaskSpec(id="s", agent="noop", input={"i": 1})])


async def cpu_us(r: Redis) -> float:
    cpu = await r.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


class Recorder:
    """Runs a wrapper once for real and keeps the script call it made."""

    def __init__(self, b: Broker) -> None:
        self.b = b
        self.calls: list[Call] = []
        self.real = b.scripts.run

        async def record(name: str, keys: list[Any], args: list[Any], client: Any = None) -> Any:
            self.calls.append((name, list(keys), list(args)))
            return await self.real(name, keys, args, client)

        b.scripts.run = record  # type: ignore[method-assign]

    async def one(self, op: Awaitable[object]) -> Call:
        self.calls.clear()
        await op
        [call] = self.calls
        return call


async def replay(b: Broker, real: Callable[..., Awaitable[Any]], calls: list[Call]) -> float:
    """Server CPU µs per call for sending `calls`, BATCH per pipeline."""
    before = await cpu_us(b.redis)
    for i in range(0, len(calls), BATCH):
        pipe = b.redis.pipeline(transaction=False)
        for name, keys, args in calls[i : i + BATCH]:
            await real(name, keys, args, pipe)
        await pipe.execute()
    return (await cpu_us(b.redis) - before) / len(calls)


async def run(url: str, n: int) -> None:
    s = Settings(redis_url=url, app="bench" + secrets.token_hex(3), env="bench").with_(lease_s=600.0)
    b = await Broker.connect(s, role="bench")
    rec = Recorder(b)
    real = rec.real
    await register_worker(b, "bench-worker", ["noop"], 1)
    empty = b.redis.register_script("return 1")

    async def empty_cost() -> float:
        before = await cpu_us(b.redis)
        for _ in range(n // BATCH):
            pipe = b.redis.pipeline(transaction=False)
            for _ in range(BATCH):
                await empty(client=pipe)
            await pipe.execute()
        return (await cpu_us(b.redis) - before) / (n // BATCH * BATCH)

    unit = min([await empty_cost() for _ in range(3)])
    print(f"{'empty script (return 1), the unit':<40} {unit:6.2f} µs")
    best: dict[str, float] = {}
    for _ in range(3):
        # enqueue: one one-job task per call, each with its own task id
        name, keys, args = await rec.one(enqueue(b, [one_job()]))
        tid = json.loads(args[2])[0][0]
        calls = [(name, keys, [*args[:2], args[2].replace(tid, f"t{i:016x}"), *args[3:]]) for i in range(n)]
        cost = {"enqueue one one-job task": await replay(b, real, calls)}
        # claim: one job per call (the same token each time: the lease is what matters)
        name, keys, args = await rec.one(claim(b, "bench-worker", ["noop"], 1, token="bench"))
        cost["claim one job"] = await replay(b, real, [(name, keys, args)] * n)
        # complete: each claimed job once (they are leased with the token "bench")
        ids = [str(m) for m in await b.redis.zrange(b.keys.leases, 0, -1)]
        first = Lease(ids[0], "bench", "bench-worker")
        name, keys, args = await rec.one(complete(b, [Completion(first, None)]))
        calls = [(name, keys, [*args[:3], job_id, *args[4:]]) for job_id in ids[1 : n + 1]]
        cost["complete one job"] = await replay(b, real, calls)
        # heartbeat with one lease held, and the maintenance scripts when there is nothing to do
        await enqueue(b, [one_job()])
        [job] = await claim(b, "bench-worker", ["noop"], 1)
        cost["heartbeat, one lease held"] = await replay(
            b, real, [await rec.one(heartbeat(b, "bench-worker", [job.lease], 1))] * n
        )
        for label, op in (
            ("promote_due, nothing due", promote_due(b)),
            ("reap_expired, nothing expired", reap_expired(b)),
            ("expire_finished, nothing to expire", expire_finished(b)),
        ):
            cost[label] = await replay(b, real, [await rec.one(op)] * n)
        for label, us in cost.items():
            best[label] = min(best.get(label, us), us)
        await purge_namespace(b.redis, b.keys)
        await b.claim_namespace()
        await register_worker(b, "bench-worker", ["noop"], 1)
    for label, us in best.items():
        print(f"{label:<40} {us:6.2f} µs   {us / unit:5.1f} x empty")
    await purge_namespace(b.redis, b.keys)
    await b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--server", choices=["valkey", "redis"], default="valkey")
    ap.add_argument("--calls", type=int, default=3000, help="calls per measure and round (three rounds)")
    args = ap.parse_args()
    srv = ServerProcess(find_server_binary(args.server)).start()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"server: {srv.binary} on port {srv.port}; {os.cpu_count()} cores, load average {load}")
        asyncio.run(run(srv.url, args.calls))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
