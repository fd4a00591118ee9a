"""keyspace_events: the watch hears of a deleted, expired or evicted job record at once, when the
server publishes keyspace notifications (`notify-keyspace-events` with K and g, plus e and x for
evictions and expiries). hiveq never turns them on itself (a server-wide setting); with them on,
the rolling record sweep is only a safety net (a message lost while reconnecting) and runs a
whole pass every SAFETY_PASS_S instead of every few seconds.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from hiveq.diagnose.suspects import database
from hiveq.queue import connection
from hiveq.queue.broker import Broker

SAFETY_PASS_S = 30.0
RECHECK_S = 60.0  # how often the server's setting is read again (an operator may change it)
MAX_PER_TICK = 10_000
GONE = {"del": "deleted", "expired": "expired", "evicted": "evicted"}


def publishes(flags: str) -> bool:
    """Does `notify-keyspace-events` publish DEL on the keyspace channel (K, and g or the alias A)?"""
    return "K" in flags and ("g" in flags or "A" in flags)


class KeyspaceEvents:
    """A pattern subscription to this namespace's job records, drained once per watch tick."""

    def __init__(self, b: Broker) -> None:
        self.b = b
        self.pubsub: PubSub | None = None
        self._node: Redis | None = None  # a client of our own on the namespace's cluster node
        self._owned = False
        self.checked = -math.inf
        self.channel_prefix = f"__keyspace@{database(b)}__:{b.keys.prefix}job:"

    @property
    def on(self) -> bool:
        return self.pubsub is not None

    async def refresh(self) -> None:
        """Subscribe (or stop) according to the server's setting, at most every RECHECK_S."""
        if time.monotonic() - self.checked < RECHECK_S:
            return
        self.checked = time.monotonic()
        try:
            got = await self.b.node_command("CONFIG GET", "notify-keyspace-events")
            flags = str(got.get("notify-keyspace-events", ""))
        except (rex.ResponseError, rex.NoPermissionError):
            flags = ""  # CONFIG refused (managed Redis): the sweep alone then
        if publishes(flags) and self.pubsub is None:
            # Notifications are node-local: on a cluster, subscribe on the namespace's primary.
            node, self._owned = await connection.node_for_pubsub(
                self.b.redis, self.b.keys.meta, self.b.client_name
            )
            self._node = node if self._owned else None
            self.pubsub = node.pubsub()
            await self.pubsub.psubscribe(self.channel_prefix + "*")
        elif not publishes(flags):
            await self.close()

    async def drain(self) -> dict[str, str]:
        """Job ids whose record went away since the last call -> deleted | expired | evicted."""
        if self.pubsub is None:
            return {}
        out: dict[str, str] = {}
        try:
            for _ in range(MAX_PER_TICK):
                msg: dict[str, Any] | None = await self.pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=0
                )
                if msg is None:
                    break
                job_id = str(msg["channel"]).removeprefix(self.channel_prefix)
                how = GONE.get(str(msg["data"]))
                if how and not job_id.endswith(":log"):
                    out[job_id] = how
        except (rex.ConnectionError, rex.TimeoutError, OSError):
            await self.close()  # the sweep covers what was missed; subscribe again later
            self.checked = -math.inf
        return out

    async def close(self) -> None:
        if self.pubsub is not None:
            pubsub, self.pubsub = self.pubsub, None
            with contextlib.suppress(rex.RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._node is not None:
            node, self._node = self._node, None
            with contextlib.suppress(rex.RedisError, OSError):
                await node.aclose()
