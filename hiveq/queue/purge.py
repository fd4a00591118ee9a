"""purge: delete every key of one namespace with SCAN + UNLINK (never KEYS, never FLUSHALL)."""

from __future__ import annotations

from redis.asyncio import Redis

from hiveq.queue.keys import Keyspace


async def purge_namespace(redis: Redis, keys: Keyspace, batch: int = 500) -> int:
    """Returns the number of keys removed. Other applications' keys are never touched.

    The jobs index goes first: a conservation watch still running sees no indexed job from then
    on, so it never marks (and rebuilds) the records the purge is deleting."""
    removed = int(await redis.unlink(keys.jobs))
    chunk: list[str] = []
    async for key in redis.scan_iter(match=keys.prefix + "*", count=1000):
        chunk.append(key)
        if len(chunk) >= batch:
            removed += int(await redis.unlink(*chunk))
            chunk = []
    if chunk:
        removed += int(await redis.unlink(*chunk))
    return removed
