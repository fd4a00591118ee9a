"""reconnect: how a worker lives through a Redis outage.

Every loop of the worker (claim, flush, heartbeat, maintain) reports success or a
`RedisUnavailable` to one shared `Link`. The link logs exactly one line when Redis is lost and
one when it is back; each loop waits growing, jittered `ReconnectDelay`s between its attempts
so that the loops retry without hammering a restarting server. (A failed job's retry backoff is
another thing, computed inside fail.lua.)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from hiveq.contract.errors import NotReplicated
from hiveq.contract.redact import redact
from hiveq.queue.connection import open_redis


class ReconnectDelay:
    """How long a loop waits before it tries Redis again: base, 2*base, ... capped at `cap`, each
    jittered down to half, so loops that failed together do not retry together."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        """Redis answered: the next outage starts again from `base`."""
        self.attempt = 0


async def reachable(url: str, client_name: str) -> bool:
    """One PING on a fresh connection (never a pooled one that may have died with the server)."""
    try:
        # The URL's own node (or the sentinels' primary): a PING, not a cluster's topology read.
        r = await open_redis(
            url, client_name=client_name, socket_connect_timeout=1.0, socket_timeout=2.0, cluster=False
        )
    except (RedisError, OSError):
        return False
    try:
        return bool(await r.ping())
    except (RedisError, OSError):
        return False
    finally:
        await r.aclose()


class Link:
    """The worker's view of its Redis connection: up or down, with one log line per change."""

    def __init__(
        self,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        url: str,
        *,
        probe_name: str = "hiveq:probe",
        drop_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.log = logger
        self.url = url
        self.where = redact(url)  # for log lines: never the password
        self.probe_name = probe_name
        self.drop_idle = drop_idle  # forgets pooled connections that died with the server
        self.down_since: float | None = None
        self.generation = 0  # +1 on every restore, so loops can tell "since Redis came back"
        self.outages = 0
        self.replicas_short = False  # HIVEQ_MIN_REPLICAS not met since the last warning

    @property
    def up(self) -> bool:
        return self.down_since is None

    async def failed(self, exc: BaseException | str) -> None:
        """A call failed to reach Redis. If a fresh connection still gets through, it was one stale
        pooled connection (after a restart): drop those and carry on without calling it an outage.
        A write the replicas did not confirm (HIVEQ_MIN_REPLICAS) is said once until they do."""
        if isinstance(exc, NotReplicated):
            if not self.replicas_short:
                self.replicas_short = True
                self.log.warning("%s; retrying with backoff", exc)
            return
        reason = str(exc)
        if self.down_since is not None:
            return
        if await reachable(self.url, self.probe_name):
            self.log.debug("a pooled Redis connection was stale (%s); reconnecting", reason)
            if self.drop_idle is not None:
                await self.drop_idle()
            return
        self.lost(reason)

    def lost(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            self.log.warning(
                "Redis lost at %s (%s); running jobs continue, their results are kept and "
                "recorded when it is back; reconnecting with backoff",
                self.where,
                reason,
            )

    def confirmed(self) -> None:
        """An acknowledged write (claim, completion) was confirmed by the replicas again."""
        if self.replicas_short:
            self.replicas_short = False
            self.log.warning("replicas confirm writes again (HIVEQ_MIN_REPLICAS); resuming")

    def restored(self) -> None:
        if self.down_since is not None:
            took = time.monotonic() - self.down_since
            self.down_since = None
            self.generation += 1
            self.log.warning("Redis restored at %s after %.1f s; resuming", self.where, took)
