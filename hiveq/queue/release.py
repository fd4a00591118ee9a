"""release: a stopping worker hands its leased jobs back at once (release.lua)."""

from __future__ import annotations

from collections.abc import Collection

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease, holder
from hiveq.queue.broker import Broker


async def release(
    b: Broker,
    leases: Collection[Lease],
    reason: str = "worker shutting down",
    *,
    cool_s: float = 0.0,
    cool_key: str | None = None,
) -> list[Code]:
    """Hand `leases` (all of one worker) back: the jobs return to the head of their priority.
    With `cool_s` (a provider's 429), `cool_key` (default: each job's own limit keys) is paused
    that long for every worker. One code per lease, in order."""
    if not leases:
        return []
    args: list[object] = [holder(leases), reason, max(0, round(cool_s * 1000)), cool_key or ""]
    for lease in leases:
        args += [lease.job_id, lease.token]
    res = await b.run("release", args)
    return [Code(int(c)) for c in res]
