"""suspects: who took a job that vanished, as far as Redis can tell, at the moment it was seen.

CLIENT LIST names every connection; hiveq names its own `hiveq:<app>:<env>:<role>…`, so the
others are the suspects, the ones blocked or whose last command can take a job (a pop, a ZREM,
a DEL, a script) first. When sampling is on, a short MONITOR sample shows who touches this
namespace's keys. INFO says whether Redis evicted keys under a maxmemory policy that may evict
ours, in which case the loss is named an eviction, not blamed on a client.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, cast

from hiveq.diagnose.consumers import Client, list_clients
from hiveq.diagnose.monitor import Sample, sample_monitor
from hiveq.queue import connection
from hiveq.queue.audit import EVICTING
from hiveq.queue.broker import Broker
from hiveq.queue.vanish import Seen

MAX_SUSPECTS = 10
FOREIGN_WINDOW_MS = 3_600_000  # mark_vanished keeps the suspects of the last hour in `foreign`


def foreign(clients: list[Client], db: int) -> list[Client]:
    """Connections that are not hiveq's (of any namespace) on our database, most suspicious first."""
    others = [c for c in clients if not c.name.startswith("hiveq:") and c.db == db]
    return sorted(others, key=lambda c: (not c.taking, c.idle_s))


def _row(c: Client) -> dict[str, Any]:
    return {
        "addr": c.addr,
        "name": c.name,
        "lib": c.lib,
        "cmd": c.cmd,
        "blocked": c.blocked,
        "age_s": c.age_s,
        "idle_s": c.idle_s,
    }


def database(b: Broker) -> int:
    return connection.database(b.redis)


EVICTION_RECENT_S = 60.0  # after evicted_keys last moved, a record found gone is still named evicted


@dataclass
class EvictionClock:
    """Redis's evicted-keys counter as last read, to tell whether keys were evicted lately."""

    evicted_keys: int | None = None
    since_ms: int = 0
    moved: str = ""  # what the last movement of the counter said
    moved_at: float = -math.inf  # when (monotonic)

    async def read(self, b: Broker) -> tuple[int, str]:
        stats = await b.node_command("INFO", "stats")
        memory = await b.node_command("INFO", "memory")
        return int(stats.get("evicted_keys") or 0), str(memory.get("maxmemory_policy") or "noeviction")

    async def start(self, b: Broker) -> None:
        self.evicted_keys, _ = await self.read(b)
        self.since_ms = int(time.time() * 1000)

    async def evicted(self, b: Broker) -> str:
        """'' unless Redis evicted keys under an evicting policy since the last read, or within
        EVICTION_RECENT_S before it (one wave of evictions is found over several watch ticks)."""
        count, policy = await self.read(b)
        before = self.evicted_keys if self.evicted_keys is not None else count
        since = time.strftime("%H:%M:%S", time.localtime(self.since_ms / 1000)) if self.since_ms else "start"
        self.evicted_keys, self.since_ms = count, int(time.time() * 1000)
        if not policy.startswith(EVICTING):
            return ""
        if count > before:
            self.moved = f"maxmemory-policy {policy} ({count - before} keys evicted since {since})"
            self.moved_at = time.monotonic()
            return self.moved
        return self.moved if time.monotonic() - self.moved_at <= EVICTION_RECENT_S else ""


def _sampled(sample: Sample, clients: dict[str, Client]) -> list[dict[str, Any]]:
    """The sample's clients that touched our keys and are not hiveq's."""
    out = []
    for addr, seen in sorted(sample.clients.items()):
        name = clients[addr].name if addr in clients else seen.name
        if not seen.our_keys or name.startswith("hiveq:"):
            continue
        out.append({"addr": addr, "name": name, "commands": seen.commands, "keys": sorted(seen.our_keys)[:5]})
    return out[:MAX_SUSPECTS]


async def observe(b: Broker, *, sample_s: float, clock: EvictionClock, auto_recover: bool) -> Seen:
    """What the watch records with jobs it marks vanished (bounded: a few CLIENT LIST rows, a
    sample of at most `sample_s` seconds)."""
    evicted = await clock.evicted(b)
    sample = None
    if sample_s > 0:
        name = b.keys.client_name("watch-monitor", str(os.getpid()))
        sample = await sample_monitor(b.redis, b.settings.redis_url, b.keys, sample_s, name)
    listed, error = await list_clients(b)
    by_addr = {c.addr: c for c in listed or []}
    suspects = foreign(listed or [], database(b))
    touched = _sampled(sample, by_addr) if sample is not None and sample.allowed else []
    prime = [t["addr"] for t in touched] + [c.addr for c in suspects if c.taking]
    if touched:
        t = touched[0]
        cmds = ", ".join(f"{k}×{v}" for k, v in sorted(t["commands"].items()))
        on = ", ".join(t["keys"])
        line = f"{t['addr']} name={t['name'] or '(none)'!r} ran {cmds} on {on} (MONITOR sample)"
    elif listed is None:
        line = f"unknown: this server does not allow CLIENT LIST ({error})"
    elif suspects and suspects[0].taking:
        line = suspects[0].describe()
    elif suspects:
        line = (
            f"no client outside hiveq took data just now; {len(suspects)} other client(s) connected, "
            f"first {suspects[0].describe()}"
        )
    else:
        line = "no client outside hiveq is connected now (it came and went)"
    if evicted:
        line = f"Redis itself ({evicted})"
    sampled: dict[str, Any] | None = None
    if sample is not None:
        sampled = {
            "allowed": sample.allowed,
            "error": sample.error,
            "seconds": sample.seconds,
            "lines": sample.lines,
            "clients": touched,
        }
    return Seen(
        suspect=line,
        suspects=[_row(c) for c in suspects[:MAX_SUSPECTS]],
        prime=list(dict.fromkeys(prime))[:MAX_SUSPECTS],
        sample=sampled,
        evicted=evicted,
        auto_recover=auto_recover,
    )


async def foreign_clients(b: Broker) -> int:
    """Non-hiveq clients touching this namespace's keys, as far as Redis can tell: the prime
    suspects of vanishings in the last hour (and what MONITOR samples caught) still connected."""
    now_s, now_us = await b.guard(b.redis.time())
    since = int(now_s) * 1000 + int(now_us) // 1000 - FOREIGN_WINDOW_MS
    recent = set(cast("list[str]", await b.guard(b.redis.zrangebyscore(b.keys.foreign, since, "+inf"))))
    if not recent:
        return 0
    listed, _ = await list_clients(b)
    if listed is None:
        return len(recent)
    return sum(1 for c in foreign(listed, database(b)) if c.addr in recent)
