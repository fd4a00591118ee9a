"""outbox: finished jobs waiting to be recorded, sent to Redis in batches.

A job's outcome goes here the moment its agent returns; one flusher sends everything that has
piled up in one `complete` and one `fail` call. While a call is in flight the next batch
collects, so batching costs no added latency. During a Redis outage outcomes simply stay here
(their leases are still heartbeated) until Redis is back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hiveq.contract.lease import Lease
from hiveq.contract.models import ClaimedJob
from hiveq.queue.complete import Completion
from hiveq.queue.retry import Failure, Quarantine
from hiveq.worker.execute import Ending, Outcome


@dataclass
class Batch:
    done: list[Completion] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    quarantined: list[Quarantine] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.done) + len(self.failed) + len(self.quarantined)

    def leases(self) -> list[Lease]:
        return [
            *(c.lease for c in self.done),
            *(f.lease for f in self.failed),
            *(q.lease for q in self.quarantined),
        ]


class Outbox:
    def __init__(self, max_batch: int = 500) -> None:
        self.max_batch = max_batch
        self.pending = Batch()
        self.in_flight = Batch()
        self.ready = asyncio.Event()

    def add(self, job: ClaimedJob, outcome: Outcome) -> None:
        p = self.pending
        if outcome.ending is Ending.OK:
            p.done.append(Completion(job.lease, outcome.result))
        elif outcome.ending is Ending.FAILED:
            failure = Failure(job.lease, outcome.error, fatal=outcome.fatal, traceback=outcome.traceback)
            p.failed.append(failure)
        else:
            p.quarantined.append(Quarantine(job.lease, outcome.error))
        self.ready.set()

    def drop(self, job_ids: set[str]) -> None:
        """Forget outcomes of jobs whose records Redis lost (nothing is left to record them in)."""
        for b in (self.pending, self.in_flight):
            b.done = [c for c in b.done if c.lease.job_id not in job_ids]
            b.failed = [f for f in b.failed if f.lease.job_id not in job_ids]
            b.quarantined = [q for q in b.quarantined if q.lease.job_id not in job_ids]

    def take(self) -> Batch:
        """Up to `max_batch` outcomes, oldest first; the rest stay for the next call."""
        p, n = self.pending, self.max_batch
        batch = Batch(p.done[:n], p.failed[:n], p.quarantined[:n])
        del p.done[:n], p.failed[:n], p.quarantined[:n]
        if not len(p):
            self.ready.clear()
        self.in_flight = batch
        return batch

    def put_back(self, batch: Batch) -> None:
        """A send failed (Redis away): keep the outcomes, in front of newer ones."""
        p = self.pending
        p.done[:0] = batch.done
        p.failed[:0] = batch.failed
        p.quarantined[:0] = batch.quarantined
        self.in_flight = Batch()
        if len(p):
            self.ready.set()

    def sent(self) -> None:
        self.in_flight = Batch()

    def leases(self) -> list[Lease]:
        """Leases of jobs finished but not yet recorded: heartbeats keep them alive."""
        return self.in_flight.leases() + self.pending.leases()

    def __len__(self) -> int:
        return len(self.pending) + len(self.in_flight)
