"""Huey with its Redis storage (`RedisHuey`: LPUSH to a list, workers BRPOP it).

Bulk: n/a (`Task.map` and groups call `enqueue` once per task). Worker: one `huey_consumer`
process with 10 worker threads (`-k thread -w 10`; Huey's default is 1 thread); P processes =
P consumers.
"""

from __future__ import annotations

from huey import RedisHuey
from shared import redis_url, stamp

PACKAGE = "huey"
WORKER = "1 huey_consumer process x 10 threads (-k thread -w 10)"

huey = RedisHuey("peers", url=redis_url())


@huey.task()
def noop(i: int) -> None:
    stamp()


class Producer:
    async def start(self) -> None:
        return None

    def enqueue(self, i: int) -> None:
        noop(i)

    async def close(self) -> None:
        huey.storage.pool.disconnect()


def worker_argv(processes: int) -> list[list[str]] | None:
    return [["huey_consumer", "huey_peer.huey", "-k", "thread", "-w", "10", "-q"]] * processes
