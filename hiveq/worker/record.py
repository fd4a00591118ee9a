"""record: send finished jobs' outcomes to Redis in batches (one `complete`, one `fail` call per
batch), keep them through a Redis outage, and say so when a lease was lost meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from hiveq.contract.errors import Code, HiveqError, PayloadTooLarge, RedisUnavailable, ValidationFailed
from hiveq.queue import retry
from hiveq.queue.complete import complete
from hiveq.queue.retry import Failure
from hiveq.worker.backoff import Backoff
from hiveq.worker.execute import check_result
from hiveq.worker.outbox import Batch

if TYPE_CHECKING:
    from hiveq.worker.loop import Worker


class Recorder:
    """The flush side of one worker: everything here talks to Redis on the worker's behalf."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.processed = 0

    async def flush_loop(self) -> None:
        backoff = Backoff()
        while True:
            await self.w.outbox.ready.wait()
            await asyncio.sleep(0)  # outcomes finishing in this same turn join the batch
            batch = self.w.outbox.take()
            if not len(batch):
                continue
            try:
                await self._send(batch)
            except RedisUnavailable as exc:
                self.w.outbox.put_back(batch)
                await self.w.link.failed(str(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            self.w.outbox.sent()
            backoff.reset()
            self.w.link.restored()

    async def _send(self, batch: Batch) -> None:
        """Record one batch. Each part is removed from `batch` once sent, so a retry resends only
        the rest (a part that reached Redis before the connection dropped answers STALE)."""
        try:
            if batch.done:
                codes = await self._complete(batch)
                self._report_stale([j for j, _, _ in batch.done], codes, "result")
                self.processed += len(batch.done)
                batch.done = []
            if batch.failed:
                codes = await retry.fail(self.w.b, self.w.id, batch.failed)
                self._report_stale([f.job_id for f in batch.failed], codes, "failure")
                self.processed += len(batch.failed)
                batch.failed = []
            while batch.quarantined:
                job_id, token, reason = batch.quarantined[0]
                code = await retry.quarantine(self.w.b, self.w.id, job_id, token, reason)
                self._report_stale([job_id], [code], "quarantine")
                self.w.log.bind(job_id=job_id).warning("job quarantined: %s", reason)
                batch.quarantined.pop(0)
        except (HiveqError, RedisError) as exc:
            if isinstance(exc, RedisUnavailable):
                raise
            ids = sorted(batch.leases())
            self.w.log.error(
                "could not record %d job outcomes (%s); their leases will expire and the jobs run again: %s",
                len(ids),
                exc,
                ", ".join(ids[:20]),
            )

    async def _complete(self, batch: Batch) -> list[Code]:
        """One `complete` call; if Redis was handed an unusable result, that job fails instead."""
        try:
            return await complete(self.w.b, self.w.id, batch.done)
        except (ValidationFailed, PayloadTooLarge):
            good = []
            for job_id, token, result in batch.done:
                why = check_result(job_id, result, self.w.settings.limits.max_payload_bytes)
                if why is None:
                    good.append((job_id, token, result))
                else:
                    batch.failed.append(Failure(job_id, token, why, fatal=True))
            batch.done = good
            return await complete(self.w.b, self.w.id, good)

    def _report_stale(self, ids: list[str], codes: list[Code], what: str) -> None:
        for job_id, code in zip(ids, codes, strict=True):
            if code != Code.OK:
                self.w.log.bind(job_id=job_id).warning(
                    "%s not recorded (%s): this worker no longer holds the lease (it expired and was "
                    "reclaimed, the task was cancelled, or it was already recorded before a dropped "
                    "connection); the job is not counted twice",
                    what,
                    code.name.lower(),
                )

    async def final_flush(self) -> None:
        """On the way out: record what finished. If Redis stays away, the leases expire instead."""
        deadline = time.monotonic() + max(5.0, self.w.settings.leases.lease_s)
        backoff = Backoff()
        while len(self.w.outbox.pending) and time.monotonic() < deadline:
            batch = self.w.outbox.take()
            try:
                await self._send(batch)
                self.w.outbox.sent()
            except RedisUnavailable as exc:
                self.w.outbox.put_back(batch)
                await self.w.link.failed(str(exc))
                await asyncio.sleep(backoff.next_delay())
        if len(self.w.outbox.pending):
            self.w.log.error(
                "Redis did not come back: %d finished jobs were not recorded; they run again when "
                "their leases expire",
                len(self.w.outbox.pending),
            )
