"""complete: store results, release dependents and update tasks in one step (complete.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hiveq.contract.codec import dumps_bounded
from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease, holder
from hiveq.queue.broker import Broker


@dataclass(frozen=True, slots=True)
class Completion:
    lease: Lease
    result: Any  # JSON-able, at most max_payload_bytes once encoded


async def complete(b: Broker, done: Sequence[Completion]) -> list[Code]:
    """Record each job's result; all leases belong to one worker. One code per job, in order.

    Code.STALE_TOKEN means the lease was lost (expired and reclaimed, or cancelled): the result
    is not recorded and the job is not counted twice.
    """
    if not done:
        return []
    args: list[object] = [holder(c.lease for c in done)]
    limit = b.settings.limits.max_payload_bytes
    for c in done:
        job_id = c.lease.job_id
        result = dumps_bounded(c.result, f"result of {job_id}", limit)
        args += [job_id, c.lease.token, c.lease.attempt, result]
    res = await b.run("complete", args)
    return [Code(int(c)) for c in res]
