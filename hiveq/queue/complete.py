"""complete: store results, release dependents and update tasks in one step (complete.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hiveq.contract.codec import dumps_bounded
from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker


async def complete(b: Broker, worker_id: str, done: Sequence[tuple[str, str, Any]]) -> list[Code]:
    """`done` holds (job id, lease token, JSON-able result). One code per job, in order.

    Code.STALE_TOKEN means the lease was lost (expired and reclaimed, or cancelled): the result
    is not recorded and the job is not counted twice.
    """
    if not done:
        return []
    k = b.keys
    args: list[object] = [worker_id]
    for job_id, token, result in done:
        args += [
            job_id,
            token,
            dumps_bounded(result, f"result of {job_id}", b.settings.limits.max_payload_bytes),
        ]
    res = await b.run("complete", [k.leases, k.succeeded, k.stats], args)
    return [Code(int(c)) for c in res]
