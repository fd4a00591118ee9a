"""registry: workers announce themselves (register_worker.lua), and leave (deregister_worker.lua)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any, cast

from hiveq.contract.codec import dumps
from hiveq.contract.models import WorkerInfo
from hiveq.contract.protocol import VERSION
from hiveq.queue.broker import Broker
from hiveq.queue.heartbeat import gap_ms


async def register_worker(
    b: Broker,
    worker_id: str,
    agents: Sequence[str],
    concurrency: int,
    modules: Mapping[str, str] | None = None,
) -> WorkerInfo:
    """Announce a worker. `modules`: agent -> the Python module that defines it (user agents), kept
    per namespace so `hiveq why` can say which `--module` a worker for that agent needs."""
    info = await b.node_command("CLIENT INFO")
    fields: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "client": str(info.get("addr", "")),
        "client_id": str(info.get("id", "")),
        "agents": dumps(sorted(agents)),
        "version": VERSION,
        "concurrency": concurrency,
    }
    if modules:
        fields["modules"] = dict(modules)
    await b.run("register_worker", [worker_id, dumps(fields), gap_ms(b)])
    return WorkerInfo(
        id=worker_id,
        host=str(fields["host"]),
        pid=os.getpid(),
        client=str(fields["client"]),
        client_id=str(fields["client_id"]),
        agents=sorted(agents),
        version=VERSION,
        concurrency=concurrency,
    )


async def deregister_worker(b: Broker, worker_id: str, reason: str = "stopped") -> None:
    await b.run("deregister_worker", [worker_id, reason])


async def list_workers(b: Broker) -> list[WorkerInfo]:
    """Registered workers, most recently heard from first."""
    ids = cast("list[str]", await b.guard(b.redis.zrevrange(b.keys.workers, 0, -1)))
    pipe = b.redis.pipeline(transaction=False)
    for wid in ids:
        pipe.hgetall(b.keys.worker(wid))
    rows = await b.guard(pipe.execute())
    out = []
    for wid, h in zip(ids, rows, strict=True):
        if not h:
            continue
        out.append(
            WorkerInfo(
                id=wid,
                host=h.get("host", ""),
                pid=int(h.get("pid") or 0),
                client=h.get("client", ""),
                client_id=h.get("client_id", ""),
                agents=json.loads(h.get("agents") or "[]"),
                version=h.get("version", ""),
                concurrency=int(h.get("concurrency") or 0),
                running=int(h.get("running") or 0),
                started_ms=int(h.get("started") or 0),
                last_heartbeat_ms=int(h.get("last_hb") or 0),
            )
        )
    return out


async def agent_module(b: Broker, agent: str) -> str | None:
    """The module a worker last loaded `agent` from (None: unknown, or a built-in)."""
    found = await b.guard(b.redis.hget(b.keys.agent_modules, agent))
    return str(found) if found else None
