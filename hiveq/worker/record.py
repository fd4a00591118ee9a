"""record: send finished jobs' outcomes to Redis in batches (one `complete`, one `fail` call per
batch), keep them through a Redis outage, and say so when a lease was lost meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from hiveq.contract.errors import (
    Code,
    HiveqError,
    PayloadTooLarge,
    RedisFull,
    RedisUnavailable,
    ValidationFailed,
    WrongTypeError,
)
from hiveq.contract.lease import Lease
from hiveq.logs import ContextAdapter
from hiveq.queue import retry
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.retry import Failure
from hiveq.worker.execute import check_result
from hiveq.worker.outbox import Batch, Outbox
from hiveq.worker.reconnect import Link, ReconnectDelay
from hiveq.worker.trouble import Trouble


class Recorder:
    """The flush side of one worker: it empties `outbox` into Redis through `broker()` (a getter:
    the worker connects after the recorder is made) and tells `link` how each call went."""

    def __init__(
        self, broker: Callable[[], Broker], outbox: Outbox, link: Link, log: ContextAdapter, trouble: Trouble
    ) -> None:
        self.broker = broker
        self.trouble = trouble
        self.outbox = outbox
        self.link = link
        self.log = log
        self.processed = 0  # outcomes sent (recorded, or refused as stale)

    async def flush_loop(self) -> None:
        delay = ReconnectDelay()
        stalled = self.trouble.backoff()
        while True:
            await self.outbox.ready.wait()
            await asyncio.sleep(0)  # outcomes finishing in this same turn join the batch
            batch = self.outbox.take()
            if not len(batch):
                continue
            try:
                await self._send(batch)
            except RedisUnavailable as exc:
                self.outbox.put_back(batch)
                await self.link.failed(exc)
                await asyncio.sleep(delay.next_delay())
                continue
            except (WrongTypeError, RedisFull) as exc:  # kept (and heartbeated) until it works
                self.outbox.put_back(batch)
                self.trouble.say(exc, "recording job outcomes")
                await asyncio.sleep(stalled.next_delay())
                continue
            self.outbox.sent()
            delay.reset()
            stalled.reset()
            self.link.restored()
            self.link.confirmed()

    async def _send(self, batch: Batch) -> None:
        """Record one batch. Each part is removed from `batch` once sent, so a retry resends only
        the rest (a part that reached Redis before the connection dropped answers STALE)."""
        b = self.broker()
        try:
            if batch.done:
                codes = await self._complete(b, batch)
                self._report_stale([c.lease for c in batch.done], codes, "result")
                self.processed += len(batch.done)
                batch.done = []
            if batch.failed:
                codes = await retry.fail(b, batch.failed)
                self._report_stale([f.lease for f in batch.failed], codes, "failure")
                self.processed += len(batch.failed)
                batch.failed = []
            while batch.quarantined:
                q = batch.quarantined[0]
                code = await retry.quarantine(b, q)
                self._report_stale([q.lease], [code], "quarantine")
                self.log.bind(job_id=q.lease.job_id).warning("job quarantined: %s", q.reason)
                batch.quarantined.pop(0)
        except (HiveqError, RedisError) as exc:
            if isinstance(exc, RedisUnavailable | WrongTypeError | RedisFull):
                raise
            ids = sorted(lease.job_id for lease in batch.leases())
            self.log.error(
                "could not record %d job outcomes (%s); their leases will expire and the jobs run again: %s",
                len(ids),
                exc,
                ", ".join(ids[:20]),
            )

    async def _complete(self, b: Broker, batch: Batch) -> list[Code]:
        """One `complete` call; if Redis was handed an unusable result, that job fails instead."""
        try:
            return await complete(b, batch.done)
        except (ValidationFailed, PayloadTooLarge):
            good: list[Completion] = []
            for c in batch.done:
                why = check_result(c.lease.job_id, c.result, b.settings.limits.max_payload_bytes)
                if why is None:
                    good.append(c)
                else:
                    batch.failed.append(Failure(c.lease, why, fatal=True))
            batch.done = good
            return await complete(b, good)

    def _report_stale(self, leases: list[Lease], codes: list[Code], what: str) -> None:
        for lease, code in zip(leases, codes, strict=True):
            if code == Code.NOT_FOUND:
                self.log.bind(job_id=lease.job_id).warning(
                    "%s not recorded: the job's record is gone from Redis (data loss? see `hiveq "
                    "doctor`: data loss)",
                    what,
                )
            elif code != Code.OK:
                self.log.bind(job_id=lease.job_id).warning(
                    "%s not recorded (%s): this worker no longer holds the lease (it expired and was "
                    "reclaimed, the task was cancelled, or it was already recorded before a dropped "
                    "connection); the job is not counted twice",
                    what,
                    code.name.lower(),
                )

    async def final_flush(self) -> None:
        """On the way out: record what finished. If Redis stays away, the leases expire instead."""
        deadline = time.monotonic() + max(5.0, self.broker().settings.leases.lease_s)
        delay = ReconnectDelay()
        while len(self.outbox.pending) and time.monotonic() < deadline:
            batch = self.outbox.take()
            try:
                await self._send(batch)
                self.outbox.sent()
            except RedisUnavailable as exc:
                self.outbox.put_back(batch)
                await self.link.failed(exc)
                await asyncio.sleep(delay.next_delay())
            except (WrongTypeError, RedisFull) as exc:
                self.outbox.put_back(batch)
                self.trouble.say(exc, "recording job outcomes")
                await asyncio.sleep(delay.next_delay())
        if len(self.outbox.pending):
            self.log.error(
                "Redis did not come back: %d finished jobs were not recorded; they run again when "
                "their leases expire",
                len(self.outbox.pending),
            )
