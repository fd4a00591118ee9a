"""streaq (Redis streams and consumer groups, coredis client).

Bulk: `Worker.enqueue_many` (one pipeline per call). Worker: `streaq run --workers P` with
`concurrency=10` (its default is 16); the task is `silent`, as streaq logs two lines per job
otherwise.
"""

from __future__ import annotations

import contextlib

from shared import redis_url, stamp
from streaq import Worker

PACKAGE = "streaq"
WORKER = "1 process x 10 asyncio slots (Worker(concurrency=10))"

worker: Worker[None] = Worker(redis_url=redis_url(), concurrency=10)


@worker.task(silent=True)  # no two log lines per job (the others log none either)
async def noop(i: int) -> None:
    stamp()


class Producer:
    async def start(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        await self.stack.enter_async_context(worker)

    async def enqueue(self, i: int) -> None:
        await noop.enqueue(i)

    async def enqueue_many(self, ids: range) -> None:
        await worker.enqueue_many([noop.enqueue(i) for i in ids])

    async def close(self) -> None:
        await self.stack.aclose()


def worker_argv(processes: int) -> list[list[str]] | None:
    return [["streaq", "run", "streaq_peer:worker", "--workers", str(processes)]]
