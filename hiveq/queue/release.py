"""release: a stopping worker hands its leased jobs back at once (release.lua)."""

from __future__ import annotations

from collections.abc import Mapping

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker


async def release(
    b: Broker, worker_id: str, leases: Mapping[str, str], reason: str = "worker shutting down"
) -> list[Code]:
    """`leases` maps job id -> token. The jobs return to the head of their priority."""
    if not leases:
        return []
    args: list[object] = [worker_id, reason]
    for job_id, token in leases.items():
        args += [job_id, token]
    res = await b.run("release", [b.keys.leases], args)
    return [Code(int(c)) for c in res]
