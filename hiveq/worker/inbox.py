"""inbox: a worker hears at once that one of its jobs was cancelled.

cancel.lua marks `inbox:<worker id>` (a one-member sorted set, like the agents' wake markers) when
it revokes one of the worker's leases. The worker waits on it with BZPOPMIN on a connection of
its own and, woken, heartbeats at once: the cancelled agent is stopped within a round trip (its
HTTP call aborted) instead of at the next heartbeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis

from hiveq.contract.errors import HiveqError
from hiveq.queue import connection
from hiveq.queue.broker import Broker
from hiveq.worker.reconnect import ReconnectDelay


class Inbox:
    def __init__(self, b: Broker, worker_id: str, wait_s: float, conn: Redis) -> None:
        self.key = b.keys.inbox(worker_id)
        self.wait_s = wait_s
        self.conn = conn

    @classmethod
    async def open(cls, b: Broker, worker_id: str, wait_s: float) -> Inbox:
        """With a connection of its own (socket timeout over the BZPOPMIN timeout)."""
        return cls(b, worker_id, wait_s, await b.dedicated("worker-inbox", worker_id, wait_s + 5.0))

    async def listen(self, broker: Callable[[], Broker], woken: asyncio.Event) -> None:
        """Set `woken` each time the inbox is marked; runs until cancelled. While Redis is away
        (the heartbeat loop reports the outage) or the key is not ours, it waits and listens again."""
        delay = ReconnectDelay(cap=5.0)
        while True:
            try:
                got = await broker().guard(self.conn.bzpopmin([self.key], timeout=self.wait_s))
            except HiveqError:  # Redis away, or a foreign type on the inbox key: heartbeats still tell
                await asyncio.sleep(delay.next_delay())
                continue
            delay.reset()
            if got is not None:
                woken.set()

    async def hang_up(self) -> None:
        """End a blocked BZPOPMIN at once (on the way out, before the listener is awaited)."""
        await connection.hang_up(self.conn)

    async def close(self) -> None:
        await self.conn.aclose()
