"""degraded: what makes a reachable Redis unable to serve this namespace right now, for `/health`
and the doctor: a full Redis that refuses writes, and foreign values on hiveq's key names.

Cheap enough for a health probe: one INFO and one pipeline of TYPE calls (the fixed keys and
each agent's queue and wake keys), no SCAN.
"""

from __future__ import annotations

from typing import Any, cast

from hiveq.queue.broker import Broker


def refusing_writes(inf: dict[str, Any]) -> str:
    """A sentence when Redis refuses writes now: maxmemory reached under a policy that does not
    evict (noeviction; volatile-* finds nothing to evict only without TTLs, so it is not claimed).
    Redis compares used memory without its replication and AOF buffers, as here."""
    limit = int(inf.get("maxmemory") or 0)
    used = int(inf.get("used_memory") or 0) - int(inf.get("mem_not_counted_for_evict") or 0)
    policy = str(inf.get("maxmemory_policy") or "noeviction")
    if limit <= 0 or used < limit or policy != "noeviction":
        return ""
    return (
        f"Redis is full (maxmemory {inf.get('maxmemory_human', limit)} reached, policy {policy}): "
        "it refuses writes now, so new tasks get 507 and workers only finish what they hold; "
        "free memory or raise maxmemory"
    )


async def foreign_keys(b: Broker) -> list[tuple[str, str, str]]:
    """(key, type found, type hiveq keeps) for the fixed keys and the agents' queue/wake keys."""
    k = b.keys
    expected = dict(k.fixed_keys())
    agents = await b.redis.smembers(k.agents) if await b.redis.type(k.agents) == "set" else set()
    for agent in sorted(cast("set[str]", agents)):
        expected[k.queue(agent)] = expected[k.wake(agent)] = "zset"
    pipe = b.redis.pipeline(transaction=False)
    for key in expected:
        pipe.type(key)
    found = await b.guard(pipe.execute())
    return [
        (key, str(t), want)
        for (key, want), t in zip(expected.items(), found, strict=True)
        if t not in ("none", want)
    ]


async def problems(b: Broker) -> list[str]:
    """Each reason the namespace is degraded, as a sentence that says what to do ([] = healthy)."""
    out = []
    full = refusing_writes(await b.node_command("INFO", "memory"))
    if full:
        out.append(full)
    out += [
        f"Redis key {key!r} holds a {found}, but hiveq keeps a {want} there (another application "
        "wrote it): what needs it is refused (409) and workers retry it; run `hiveq repair` to move "
        "it aside (nothing is deleted)"
        for key, found, want in await b.guard(foreign_keys(b))
    ]
    return out
