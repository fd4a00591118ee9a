"""heartbeat: extend the leases a worker still holds (heartbeat.lua) and report progress
(progress.lua)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker

# After a failed heartbeat, a worker tries again within this long (or heartbeat_s, if shorter).
RECONNECT_BEAT_S = 0.5
GAP_FLOOR_S = 0.25


@dataclass(frozen=True)
class Beat:
    registered: bool  # False: the worker record was reaped; register again
    lost: list[str]  # jobs whose lease (as sent) this worker no longer holds (expired, cancelled)
    epoch_ok: bool = True  # False: the namespace's epoch changed (data loss); nothing was done


async def heartbeat(b: Broker, worker_id: str, leases: Collection[Lease], running: int) -> Beat:
    """Mark `worker_id` alive and extend `leases` (every job it still holds, running or finished
    but not yet recorded). The worker id is given apart because a worker holding nothing beats too.
    """
    ls = b.settings.leases
    args: list[object] = [worker_id, int(ls.lease_s * 1000), running, b.epoch, gap_ms(b)]
    for lease in leases:
        if lease.worker_id != worker_id:
            raise ValueError(f"lease of job {lease.job_id} belongs to {lease.worker_id}, not {worker_id}")
        args += [lease.job_id, lease.token]
    res = await b.run("heartbeat", args)
    return Beat(registered=int(res[0]) == 1, lost=[str(x) for x in res[2:]], epoch_ok=int(res[1]) == 1)


def gap_ms(b: Broker) -> int:
    """A silence of every worker longer than this means Redis was away (an outage, a freeze): then
    reap_expired waits a lease period (`grace_ms`) before it reaps, so live workers beat first.
    Two heartbeats, but short enough that a live worker, after a shorter silence, still beats
    (within RECONNECT_BEAT_S of Redis's return) before its lease ends; never under GAP_FLOOR_S,
    so back-to-back calls of an idle namespace are not taken for gaps."""
    ls = b.settings.leases
    beat = ls.heartbeat_s
    return int(max(GAP_FLOOR_S, min(2 * beat, max(beat, ls.lease_s - beat - RECONNECT_BEAT_S))) * 1000)


def grace_ms(b: Broker) -> int:
    return int(b.settings.leases.lease_s * 1000)


async def progress(b: Broker, lease: Lease, fraction: float, message: str) -> Code:
    fraction = min(1.0, max(0.0, fraction))
    res = await b.run("progress", [lease.worker_id, lease.job_id, lease.token, fraction, message[:500]])
    return Code(int(res[0]))
