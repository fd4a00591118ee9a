"""Who could run a job nobody runs: the command that starts a worker for its agent (with the
`--module` a custom agent needs), and the live hiveq workers of OTHER namespaces on the same Redis
(a `HIVEQ_APP=shop` typo waits forever otherwise, while the workers serve `default:dev`).

Other namespaces' workers come from CLIENT LIST (a worker names its connection
`hiveq:<app>:<env>:worker:<id>`), or, where CLIENT LIST is refused, from a bounded SCAN for
their `workers` keys. Read-only: nothing here writes, in any namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from redis import exceptions as rex

from hiveq.diagnose.workers_check import liveness, now_ms, stale_after_ms
from hiveq.queue import connection
from hiveq.queue.broker import Broker
from hiveq.queue.keys import (
    ANY_WORKERS_PATTERN,
    Keyspace,
    namespace_of_worker_client,
    namespace_of_workers_key,
)
from hiveq.queue.registry import agent_module
from hiveq.submit import BUILTIN_AGENTS

MAX_NAMESPACES = 10  # named in a hint; more would not help a reader
SCAN_CALLS = 20  # bound on the SCAN fallback (COUNT 1000 each)


@dataclass(frozen=True)
class Neighbour:
    """A namespace on this Redis with live hiveq workers."""

    app: str
    env: str
    workers: int
    agents: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return f"{self.app}:{self.env}"


async def _from_client_list(b: Broker) -> set[Keyspace] | None:
    try:
        rows = await b.client_list()
    except (rex.ResponseError, rex.NoPermissionError):
        return None
    found = (namespace_of_worker_client(str(r.get("name", ""))) for r in rows)
    return {f[0] for f in found if f is not None}


async def _from_scan(b: Broker) -> set[Keyspace]:
    keys, _ = await b.guard(connection.scan_capped(b.redis, ANY_WORKERS_PATTERN, SCAN_CALLS * 1000))
    return {ks for ks in map(namespace_of_workers_key, keys) if ks is not None}


async def _live(b: Broker, ks: Keyspace, since_ms: int) -> Neighbour | None:
    """The live workers (recent heartbeat) of namespace `ks`, with the agents they serve."""
    ids = [str(i) for i in await b.guard(b.redis.zrangebyscore(ks.workers, since_ms, "+inf"))]
    if not ids:
        return None
    pipe = b.redis.pipeline(transaction=False)
    for wid in ids:
        pipe.hget(ks.worker(wid), "agents")
    agents: set[str] = set()
    for raw in await b.guard(pipe.execute()):
        try:
            agents.update(str(a) for a in json.loads(raw or "[]"))
        except (TypeError, ValueError):
            continue
    return Neighbour(ks.app, ks.env, len(ids), tuple(sorted(agents)))


async def neighbours(b: Broker, agents: Iterable[str] = ()) -> list[Neighbour]:
    """Other namespaces with live workers; those serving any of `agents` first."""
    spaces = await _from_client_list(b)
    if spaces is None:
        spaces = await _from_scan(b)
    since = await now_ms(b) - stale_after_ms(b)
    found = []
    for ks in sorted(spaces - {b.keys}, key=lambda k: (k.app, k.env))[: MAX_NAMESPACES * 2]:
        n = await _live(b, ks, since)
        if n is not None:
            found.append(n)
    wanted = set(agents)
    found.sort(key=lambda n: (not wanted & set(n.agents), -n.workers, n.namespace))
    return found[:MAX_NAMESPACES]


async def start_worker_command(b: Broker, agents: Iterable[str]) -> str:
    """`hiveq worker --agents x` plus the `--module` a custom agent needs (the module a worker
    last loaded it from, where one did; else a placeholder the user fills in)."""
    names = sorted(set(agents))
    cmd = f"hiveq worker --agents {','.join(names)}"
    modules = []
    for a in names:
        if a in BUILTIN_AGENTS:
            continue
        module = await agent_module(b, a)
        modules.append(module or "<your module>")
    for m in dict.fromkeys(modules):
        cmd += f" --module {m}"
    return cmd


def describe(others: list[Neighbour]) -> str:
    """One clause naming the other namespaces' workers and how to point at the first."""
    listed = "; ".join(
        f"{n.namespace} ({n.workers} worker(s) serving {', '.join(n.agents) or 'no agents'})" for n in others
    )
    first = others[0]
    return (
        f"Live hiveq workers on this Redis run in other namespace(s): {listed}. If you meant "
        f"{first.namespace}, set HIVEQ_APP={first.app} HIVEQ_ENV={first.env} "
        f"(or `hiveq --app {first.app} --env {first.env} …`)"
    )


async def unserved_hint(b: Broker, agents: Iterable[str]) -> str | None:
    """None when a live worker of this namespace serves every one of `agents`; else one line that
    says which are unserved, who else is on this Redis, and the command to start a worker."""
    lv = await liveness(b)
    missing = sorted(set(agents) - lv.agents)
    if not missing:
        return None
    others = await neighbours(b, missing)
    line = (
        f"no live worker in namespace {b.settings.namespace} serves agent(s) {', '.join(missing)}; "
        f"start one with `{await start_worker_command(b, missing)}`"
    )
    return f"{line}. {describe(others)}" if others else line
