"""SAQ with its Redis queue (a list of ids plus one JSON blob per job, pub/sub wake-ups).

Bulk: n/a (`Queue.map` enqueues one job per call and then waits for the results). Worker:
`saq saq_peer.settings --workers P` with `concurrency=10` (its default).
"""

from __future__ import annotations

from typing import Any

from saq import Queue
from shared import redis_url, stamp

PACKAGE = "saq"
WORKER = "1 process x 10 asyncio slots (saq, concurrency=10: its default)"

queue = Queue.from_url(redis_url())


async def noop(ctx: dict[str, Any], *, i: int) -> None:
    stamp()


settings = {"queue": queue, "functions": [noop], "concurrency": 10}


class Producer:
    async def start(self) -> None:
        await queue.connect()

    async def enqueue(self, i: int) -> None:
        await queue.enqueue("noop", i=i)

    async def close(self) -> None:
        await queue.disconnect()


def worker_argv(processes: int) -> list[list[str]] | None:
    return [["saq", "saq_peer.settings", "--workers", str(processes)]]
