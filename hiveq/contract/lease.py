"""A lease: which worker holds which job, proven by the token its claim drew.

Every script that acts on a leased job (heartbeat, progress, complete, fail, quarantine,
release) checks the same three values, so a worker in any language holds exactly these. It is
part of the contract, not of the engine, because the claim's wire model (`ClaimedJob.lease`)
hands it out and the engine's wrappers take it back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Lease:
    job_id: str
    token: str  # drawn by the claim; a reclaimed or cancelled job's old token is refused
    worker_id: str
    # The delivery this claim was (0: not known), named when a late result is refused; not part of
    # the lease's identity (the token is).
    attempt: int = field(default=0, compare=False)


def holder(leases: Iterable[Lease]) -> str:
    """The one worker that holds every lease of a batch: a script call speaks for one worker.

    Raises ValueError for an empty batch or one that mixes workers (a caller's bug, never data)."""
    workers = {lease.worker_id for lease in leases}
    if len(workers) != 1:
        raise ValueError(f"a batch of leases must belong to exactly one worker, got {sorted(workers)}")
    return workers.pop()


class LeaseLost(Exception):
    """A lease-holding call was refused: the lease expired and was reclaimed, or the job was
    cancelled. Nothing was written; the worker stops the agent (its result would be refused)."""

    def __init__(self, lease: Lease, what: str) -> None:
        self.lease = lease
        super().__init__(f"job {lease.job_id}: {what} refused: the lease is no longer held")
