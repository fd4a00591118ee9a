"""One phase of one system, run in that system's virtualenv by run.py; prints one JSON line.

    python side.py ADAPTER PHASE JOBS [SAMPLES]

Phases: `describe` (version, worker commands, bulk API or not), `enqueue` (one call per job,
sequential), `bulk` (the adapter's `enqueue_many`, 1,000
jobs per call), `fill` (pre-enqueue, the fastest way the adapter has), `latency` (a worker is
running: one job at a time on an idle system, start stamp minus the time just before the call).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import json
import os
import sys
import time
from typing import Any

import shared

BULK_BATCH = 1000
WARMUP = 5  # latency jobs run and thrown away first: connections, imports, first wake-up
WAIT_S = 30.0  # one latency job not started after this long: the worker is broken
IDLE_GAP_S = 0.005  # pause between latency jobs, so each one meets an idle worker


async def call(fn: Any, *args: Any) -> None:
    r = fn(*args)
    if inspect.isawaitable(r):
        await r


async def one_by_one(producer: Any, n: int) -> float:
    """Seconds for n sequential enqueue calls (a sync client is called without awaits)."""
    one = producer.enqueue
    if inspect.iscoroutinefunction(one):
        t0 = time.perf_counter()
        for i in range(n):
            await one(i)
        return time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n):
        one(i)
    return time.perf_counter() - t0


async def bulk(producer: Any, n: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, BULK_BATCH):
        await call(producer.enqueue_many, range(start, min(n, start + BULK_BATCH)))
    return time.perf_counter() - t0


async def wait_started(path: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while shared.count(path) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"job {count} did not start within {WAIT_S:.0f} s: is the worker running?")
        await asyncio.sleep(0.0002)


async def latency(producer: Any, samples: int) -> list[float]:
    """ms from just before each enqueue call to the job's own start stamp."""
    path = os.environ[shared.STAMPS_ENV]
    out: list[float] = []
    for k in range(WARMUP + samples):
        t0 = time.time()
        await call(producer.enqueue, k)
        await wait_started(path, k + 1)
        if k >= WARMUP:
            out.append((shared.read(path)[k] - t0) * 1000)
        await asyncio.sleep(IDLE_GAP_S)
    return out


async def run(adapter: Any, phase: str, jobs: int, samples: int) -> dict[str, Any]:
    producer = adapter.Producer()
    await producer.start()
    try:
        if phase == "enqueue":
            return {"seconds": await one_by_one(producer, jobs)}
        if phase == "bulk":
            if not hasattr(producer, "enqueue_many"):
                return {"seconds": None}
            return {"seconds": await bulk(producer, jobs)}
        if phase == "fill":
            fast = hasattr(producer, "enqueue_many")
            return {"seconds": await (bulk(producer, jobs) if fast else one_by_one(producer, jobs))}
        if phase == "latency":
            return {"ms": await latency(producer, samples)}
        raise SystemExit(f"unknown phase {phase!r}: use enqueue, bulk, fill or latency")
    finally:
        await producer.close()


def describe(adapter: Any) -> dict[str, Any]:
    return {
        "worker": adapter.WORKER,
        "bulk": hasattr(adapter.Producer, "enqueue_many"),
        "argv": {p: adapter.worker_argv(p) for p in (1, 2)},
    }


def main() -> None:
    name, phase, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    samples = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    adapter = importlib.import_module(name)
    out = describe(adapter) if phase == "describe" else asyncio.run(run(adapter, phase, jobs, samples))
    out["version"] = importlib.metadata.version(adapter.PACKAGE)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
