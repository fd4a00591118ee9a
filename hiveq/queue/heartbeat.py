"""heartbeat: extend the leases a worker still holds (heartbeat.lua) and report progress
(progress.lua)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker


@dataclass(frozen=True)
class Beat:
    registered: bool  # False: the worker record was reaped; register again
    lost: list[str]  # jobs whose lease this worker no longer holds (expired, cancelled)


async def heartbeat(b: Broker, worker_id: str, leases: Mapping[str, str], running: int) -> Beat:
    """`leases` maps job id -> lease token for every job the worker is running."""
    k = b.keys
    args: list[object] = [worker_id, int(b.settings.leases.lease_s * 1000), running]
    for job_id, token in leases.items():
        args += [job_id, token]
    res = await b.run("heartbeat", [k.leases, k.workers], args)
    return Beat(registered=int(res[0]) == 1, lost=[str(x) for x in res[1:]])


async def progress(b: Broker, worker_id: str, job_id: str, token: str, fraction: float, message: str) -> Code:
    fraction = min(1.0, max(0.0, fraction))
    res = await b.run("progress", [], [worker_id, job_id, token, fraction, message[:500]])
    return Code(int(res[0]))
