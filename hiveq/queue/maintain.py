"""maintain: promote due retries and wake timed-out signal waits (promote_due.lua), reclaim
expired leases (reap_expired.lua) and expire finished tasks past retention (expire_finished.lua;
with an archive attached, archived tasks past HIVEQ_REDIS_RETENTION). Every worker runs this
every `reap_interval_s`; the scripts are atomic and idempotent, so several runners are safe."""

from __future__ import annotations

from dataclasses import dataclass

from hiveq.queue.broker import Broker
from hiveq.queue.heartbeat import gap_ms, grace_ms


@dataclass(frozen=True)
class Maintenance:
    promoted: int
    requeued: int
    dead_lettered: int
    workers_lost: int
    expired_tasks: int
    paused_ms: int = 0  # > 0: Redis was away; reaping waits this long for live workers to beat


async def promote_due(b: Broker, limit: int = 1000) -> int:
    """Due retries back to their queues, and timed-out signal waits woken (both count)."""
    return int(await b.run("promote_due", [limit]))


async def reap_expired(b: Broker, limit: int = 1000) -> tuple[int, int, int]:
    requeued, dead, lost, _ = await reap(b, limit)
    return requeued, dead, lost


async def reap(b: Broker, limit: int = 1000) -> tuple[int, int, int, int]:
    """{requeued, dead-lettered, workers lost, paused ms}: after a gap in which no worker reached
    Redis (an outage, a freeze), nothing is reaped for a lease period (paused ms > 0)."""
    stale_ms = int(max(b.settings.leases.lease_s * 3, b.settings.leases.heartbeat_s * 10) * 1000)
    res = await b.run("reap_expired", [limit, stale_ms, gap_ms(b), grace_ms(b)])
    return int(res[0]), int(res[1]), int(res[2]), int(res[3])


async def expire_finished(b: Broker, limit: int = 200) -> int:
    s = b.settings
    tail_ms = s.archive.redis_retention_s * 1000  # with an archive attached (meta.archive)
    return int(await b.run("expire_finished", [s.retention.retention_s * 1000, limit, tail_ms]))


async def maintain(b: Broker) -> Maintenance:
    promoted = await promote_due(b)
    requeued, dead, lost, paused = await reap(b)
    expired = await expire_finished(b)
    return Maintenance(promoted, requeued, dead, lost, expired, paused)
