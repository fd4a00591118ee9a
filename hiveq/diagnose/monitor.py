"""A bounded MONITOR sample: which client addresses touch our keys or a generic queue name.

MONITOR streams every command the server runs, so it is expensive: it runs on its own connection
(closed afterwards, never returned to a pool), for at most `MAX_SAMPLE_S` and `MAX_LINES` lines.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from redis import exceptions as rex
from redis.asyncio import Redis

from hiveq.queue import connection
from hiveq.queue.keys import Keyspace

MAX_SAMPLE_S = 30.0
MAX_LINES = 50_000
# Queue names other frameworks or hand-written loops use; the seed incident's thief popped one.
GENERIC_NAMES = frozenset({"work_queue", "celery", "default", "queue", "jobs", "tasks"})
GENERIC_PREFIXES = ("rq:", "bull:", "arq:", "dramatiq:", "saq:")


def is_generic(arg: str) -> bool:
    return arg in GENERIC_NAMES or arg.startswith(GENERIC_PREFIXES)


@dataclass
class Seen:
    """What one client address did during the sample."""

    address: str
    name: str = ""  # from a CLIENT SETNAME seen during the sample (the client may be gone later)
    commands: dict[str, int] = field(default_factory=dict)
    our_keys: set[str] = field(default_factory=set)
    generic_keys: set[str] = field(default_factory=set)


@dataclass
class Sample:
    allowed: bool
    error: str = ""
    seconds: float = 0.0
    lines: int = 0
    truncated: bool = False
    clients: dict[str, Seen] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # address -> name set during the sample


def _note(sample: Sample, keys: Keyspace, address: str, command: str) -> None:
    parts = command.split(" ")
    if not parts or not parts[0]:
        return
    if len(parts) == 3 and parts[0].lower() == "client" and parts[1].lower() == "setname":
        sample.names[address] = parts[2]
        return
    ours = {p for p in parts[1:] if p.startswith(keys.prefix)}
    generic = {p for p in parts[1:] if is_generic(p)}
    if not (ours or generic):
        return
    seen = sample.clients.setdefault(address, Seen(address, sample.names.get(address, "")))
    cmd = parts[0].lower()
    seen.commands[cmd] = seen.commands.get(cmd, 0) + 1
    if len(seen.our_keys) < 20:
        seen.our_keys.update(ours)
    if len(seen.generic_keys) < 20:
        seen.generic_keys.update(generic)


async def sample_monitor(via: Redis, url: str, keys: Keyspace, seconds: float, client_name: str) -> Sample:
    """Watch commands for `seconds` (capped); attribute those touching our or generic keys. On a
    cluster, MONITOR runs on the primary serving the namespace's slot (where its keys are read)."""
    seconds = max(0.0, min(seconds, MAX_SAMPLE_S))
    if connection.is_cluster(via):
        async with connection.home_node(via, keys.meta, client_name) as node:
            return await _sample(node, keys, seconds)
    r = await connection.open_redis(url, client_name=client_name, cluster=False)
    try:
        return await _sample(r, keys, seconds)
    finally:
        await r.aclose()


async def _sample(r: Redis, keys: Keyspace, seconds: float) -> Sample:
    sample = Sample(allowed=True)
    start = time.monotonic()
    try:
        async with r.monitor() as mon:
            while sample.lines < MAX_LINES:
                left = seconds - (time.monotonic() - start)
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        info = await mon.next_command()
                except TimeoutError:
                    break
                except (AttributeError, ValueError):  # a line redis-py could not parse
                    sample.lines += 1
                    continue
                sample.lines += 1
                if info["client_type"] == "lua":  # inside a script; the EVALSHA line names the caller
                    continue
                _note(sample, keys, f"{info['client_address']}:{info['client_port']}", info["command"])
            sample.truncated = sample.lines >= MAX_LINES
    except rex.ResponseError as exc:
        sample.allowed, sample.error = False, str(exc)
    finally:
        sample.seconds = round(time.monotonic() - start, 2)
    return sample
