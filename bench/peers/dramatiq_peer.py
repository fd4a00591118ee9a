"""Dramatiq with its Redis broker (Lua scripts over a list, a hash of messages and ack sets).

Bulk: n/a (`group(...).run()` sends one message at a time). Worker: `dramatiq --processes P
--threads 10` (its default is one process per core with 8 threads each).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from shared import redis_url, stamp

PACKAGE = "dramatiq"
WORKER = "1 process x 10 threads (dramatiq --processes 1 --threads 10)"

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(i: int) -> None:
    stamp()


class Producer:
    async def start(self) -> None:
        return None

    def enqueue(self, i: int) -> None:
        noop.send(i)

    async def close(self) -> None:
        broker.close()


def worker_argv(processes: int) -> list[list[str]] | None:
    return [["dramatiq", "dramatiq_peer", "--processes", str(processes), "--threads", "10"]]
