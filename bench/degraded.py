"""A foreign value and a full Redis: what the checks cost and how soon service resumes.

1. `/health`'s degraded check (`diagnose.degraded.problems`: one INFO, the agents set and a
   pipeline of TYPE calls over the fixed keys and every agent's queue and wake keys) per call,
   with 10 and 200 agents, and its ratio to one PING round trip measured in the same run;
2. how soon a worker serves a poisoned agent again after `set_aside` (what `hiveq repair` runs):
   a list sits on the agent's queue key for 3 s or 12 s (the worker's backoff grows from 0.5 s to
   5 s meanwhile), then it is set aside and a job of that agent is enqueued; the time from the
   repair to the job's success.
Starts its own private Valkey; prints min-median-max over --runs runs with the load average.
Run: .venv/bin/python bench/degraded.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import statistics
import time
from collections.abc import Sequence

from hiveq.agents.registry import AgentContext, agent
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.contract.states import JobState
from hiveq.diagnose.degraded import problems
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.repair import find_foreign, set_aside
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings
from hiveq.worker.main import run_worker


@agent("bench.ok")
async def ok(ctx: AgentContext) -> str:
    return "ok"


@agent("bench.other")
async def other(ctx: AgentContext) -> str:
    return "ok"


def spread(xs: Sequence[float], unit: str) -> str:
    return f"{min(xs):.2f} – {statistics.median(xs):.2f} – {max(xs):.2f} {unit}"


async def connect(url: str) -> Broker:
    return await Broker.connect(
        Settings(redis_url=url, app="b" + secrets.token_hex(4), env="bench"), role="bench"
    )


async def health_cost(url: str, agents: int, calls: int = 300) -> tuple[float, float]:
    """(µs per problems() call, µs per PING), both timed in this run."""
    b = await connect(url)
    try:
        await b.redis.sadd(b.keys.agents, *[f"agent{i}" for i in range(agents)])
        t0 = time.perf_counter()
        for _ in range(calls):
            await b.redis.ping()
        ping = (time.perf_counter() - t0) / calls * 1e6
        t0 = time.perf_counter()
        for _ in range(calls):
            assert await problems(b) == []
        check = (time.perf_counter() - t0) / calls * 1e6
        return check, ping
    finally:
        await b.close()


async def succeeded(b: Broker, job_id: str) -> None:
    """Follow the event stream (blocking reads, no polling) until the job succeeded."""
    last = "0-0"
    while True:
        for _, entries in await b.redis.xread({b.keys.events: last}, block=1000) or []:
            for entry_id, fields in entries:
                last = entry_id
                ev = json.loads(fields["e"])
                if ev.get("job") == job_id and ev.get("to") == JobState.SUCCEEDED:
                    return


async def resume_after_repair(url: str, poisoned_s: float) -> float:
    """Seconds from set_aside to the success of a job of the agent whose queue key was foreign."""
    b = await connect(url)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(b.settings, agents=["bench.ok", "bench.other"], concurrency=2, stop=stop)
    )
    try:
        await b.redis.lpush(b.keys.queue("bench.ok"), "another app's item")
        await asyncio.sleep(poisoned_s)  # the poison lasting this long is what is measured
        [foreign] = await find_foreign(b)
        t0 = time.perf_counter()
        await set_aside(b, foreign)
        sub = TaskSubmission(description="bench", subtasks=[SubtaskSpec(id="s", agent="bench.ok")])
        [enq] = await enqueue(b, [sub])
        await succeeded(b, enq.job_ids[0])
        return time.perf_counter() - t0
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
        await b.close()


async def main(runs: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    srv = ServerProcess(find_server_binary("valkey")).start()
    try:
        for agents in (10, 200):
            checks, ratios = [], []
            for _ in range(runs):
                check, ping = await health_cost(srv.url, agents)
                checks.append(check)
                ratios.append(check / ping)
            per_call, to_ping = spread(checks, "µs"), spread(ratios, "x")
            print(f"degraded check, {agents} agents: {per_call} per call; {to_ping} a PING")
        for poisoned in (3.0, 12.0):
            took = [await resume_after_repair(srv.url, poisoned) for _ in range(runs)]
            print(
                f"poisoned {poisoned:g} s, then repaired: the agent's job succeeded {spread(took, 's')} later"
            )
    finally:
        srv.stop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
