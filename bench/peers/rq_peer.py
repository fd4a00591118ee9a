"""RQ (a list of ids plus one hash per job; a worker forks a work horse for every job).

Bulk: `Queue.enqueue_many` (one pipeline). Worker: `rq worker-pool -n 10` (10 worker
processes, RQ's way to run 10 jobs at once); two processes: n/a, the pool already is 10.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from shared import redis_url, stamp

PACKAGE = "rq"
WORKER = "rq worker-pool -n 10 (10 processes, a fork per job: RQ's default worker class)"


def noop(i: int) -> None:
    stamp()


class Producer:
    async def start(self) -> None:
        self.conn = Redis.from_url(redis_url())
        self.q = Queue(connection=self.conn)

    def enqueue(self, i: int) -> None:
        self.q.enqueue(noop, i)

    def enqueue_many(self, ids: range) -> None:
        self.q.enqueue_many([Queue.prepare_data(noop, (i,)) for i in ids])

    async def close(self) -> None:
        self.conn.close()


def worker_argv(processes: int) -> list[list[str]] | None:
    if processes > 1:
        return None
    return [["rq", "worker-pool", "-n", "10", "-u", redis_url(), "-l", "WARNING"]]
