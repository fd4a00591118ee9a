"""Celery with the Redis transport (kombu: a list per queue, an unacked hash), no result backend.

Bulk: n/a (a `group` publishes one message per task). Worker: `celery worker -c 10` (prefork
pool of 10 processes; its default is one per core); two processes: n/a, the pool already is 10.
"""

from __future__ import annotations

from celery import Celery
from shared import redis_url, stamp

PACKAGE = "celery"
WORKER = "celery worker, prefork pool of 10 processes (-c 10)"

app = Celery("celery_peer", broker=redis_url())


@app.task
def noop(i: int) -> None:
    stamp()


class Producer:
    async def start(self) -> None:
        return None

    def enqueue(self, i: int) -> None:
        noop.delay(i)

    async def close(self) -> None:
        app.close()


def worker_argv(processes: int) -> list[list[str]] | None:
    if processes > 1:
        return None
    return [["celery", "-A", "celery_peer", "worker", "-c", "10", "-l", "WARNING"]]
