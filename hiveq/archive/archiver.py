"""The archiver: follows the namespace's event stream and writes it, and the records it names, to
SQL. One runs at a time per namespace (the lease); any number may wait to take over.

Each batch: read entries through the consumer group (its own unacknowledged ones first), read the
tasks they name (snapshot.py), write everything in one transaction (store.py), then XACK, then
mark the finished tasks archived (so Redis may let them go after HIVEQ_REDIS_RETENTION). A crash
anywhere before the XACK replays the batch; the writes are idempotent (at-least-once, no
duplicates). When the database is down the batch is retried with a backoff and nothing is
acknowledged, so nothing is trimmed: the stream keeps every entry until it is archived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from hiveq.archive import db, store
from hiveq.archive.snapshot import Snapshot, read_entries, snapshot
from hiveq.contract.errors import HiveqError, RedisUnavailable
from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.settings import Settings

log = logging.getLogger("hiveq.archive")

LEASE_MS = 5000  # a dead archiver's successor takes over within this plus TAKE_EVERY_S
KEEP_EVERY_S = 1.0
TAKE_EVERY_S = 1.0
SWEEP_EVERY_S = 30.0  # finished tasks past the tail that no batch marked (see sweep)
EXPIRE_EVERY_S = 600.0  # archive retention
TRIM_EVERY_S = 1.0
TRIM_SAMPLE = 100  # one acknowledged id in this many is remembered for the trim bound
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 5.0
SNAPPED_KEEP = 100_000  # tasks whose last read time is remembered (to skip re-reading them)


@dataclass
class Prepared:
    ids: list[str]  # the stream entries the batch covers
    snap: Snapshot  # their rows and the records they name


@dataclass
class Counters:
    batches: int = 0
    entries: int = 0
    tasks: int = 0
    failures: int = 0


class Archiver:
    """`await Archiver(settings).run(stop)`; `step()` does one batch (tests, benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        *,
        ident: str = "",
        batch: int = 10_000,
        block_ms: int = 500,
        engine: Engine | None = None,
    ) -> None:
        url = settings.archive.archive_url
        if not url:
            raise HiveqError("no archive configured: set HIVEQ_ARCHIVE_URL (see docs/archive.md)")
        self.settings = settings
        self.url = url
        self.ns = settings.namespace
        self.ident = ident or f"{socket.gethostname()}:{os.getpid()}:{id(self) & 0xFFFF:x}"
        self.batch, self.block_ms = batch, block_ms
        self._owns_engine = engine is None
        self.engine = engine or db.open_engine(url, writer=True)
        self.counters = Counters()
        self.held = False
        self._b: Broker | None = None
        self._replay = True  # read our pending entries before new ones
        self._snapped: dict[str, int] = {}  # task id -> Redis ms of its last read (oldest first)
        self._delay = RETRY_FIRST_S
        self._failing = ""  # what is down ("Redis", "the archive database"), for one line each way
        self._migrated = False
        self._acked: deque[str] = deque(maxlen=max(2, settings.retention.events_maxlen // TRIM_SAMPLE))
        self._seen = 0
        self._last_acked = ""
        self._due: dict[str, float] = {"sweep": 0.0, "expire": 0.0, "trim": 0.0}

    @property
    def b(self) -> Broker:
        assert self._b is not None, "connect() first"
        return self._b

    async def connect(self) -> None:
        if self._b is None:
            self._b = await Broker.connect(self.settings, role="archiver", ident=self.ident)

    async def close(self) -> None:
        if self._b is not None:
            if self.held:
                with contextlib.suppress(HiveqError, OSError):
                    await archiving.lease(self.b, self.ident, "drop", LEASE_MS)
            await self._b.close()
            self._b = None
        self.held = False

    # -- the lease -----------------------------------------------------------------------------
    async def take(self) -> bool:
        """Take the lease if free (or keep it); migrate the schema the first time it is ours."""
        state = await archiving.lease(self.b, self.ident, "take", LEASE_MS, db.kind_of(self.url))
        if state.fresh:  # ours now: first what the last holder read and did not acknowledge
            log.info("archiver %s holds the lease for %s", self.ident, self.ns)
            self._forget()
        self.held = state.held
        if self.held and not self._migrated:
            await asyncio.to_thread(db.upgrade, self.engine)
            self._migrated = True
        return self.held

    async def _keep_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), KEEP_EVERY_S)
            if stop.is_set() or not self.held:
                continue
            try:
                state = await archiving.lease(self.b, self.ident, "keep", LEASE_MS, db.kind_of(self.url))
            except HiveqError:
                continue  # Redis away: the batch loop sees it too; the lease may lapse
            if not state.held:
                log.warning("archiver %s lost the lease to %s", self.ident, state.holder or "nobody")
                self.held = False

    # -- one batch -----------------------------------------------------------------------------
    async def step(self) -> int:
        """Archive one batch; returns how many stream entries it covered (0: nothing new)."""
        batch = await self.prepare()
        return await self.commit(batch) if batch is not None else 0

    async def prepare(self) -> Prepared | None:
        """Read a batch and the records it names; None when there is nothing new."""
        entries: list[archiving.Entry] = []
        if self._replay:
            entries = await archiving.read(self.b, self.batch, None, pending=True)
            self._replay = len(entries) >= self.batch
        if not entries:
            entries = await archiving.read(self.b, self.batch, self.block_ms, pending=False)
        if not entries:
            return None
        got = read_entries(self.ns, entries)
        stale = [t for t in got.tasks if self._snapped.get(t, -1) <= got.newest[t]]
        snap = await snapshot(self.b, self.ns, stale)
        snap.batch.events = got.rows + snap.batch.events
        self._remember_snapshots(stale, snap.snap_ms)
        return Prepared([entry_id for entry_id, _ in entries], snap)

    def _remember_snapshots(self, task_ids: list[str], snap_ms: int) -> None:
        """A task read at Redis time `snap_ms` holds every event whose stream id is older (the
        stream ids come from the same clock, and a script runs whole before or after the read), so
        a later batch naming it only by such entries need not read it again (a backlog names each
        task in several batches, all older than its first read)."""
        snapped = self._snapped
        for tid in task_ids:
            snapped.pop(tid, None)
            snapped[tid] = snap_ms
        while len(snapped) > SNAPPED_KEEP:
            del snapped[next(iter(snapped))]

    def _forget(self) -> None:
        """Read the same entries again, and their tasks: a batch that was read may not be written."""
        self._replay = True
        self._snapped.clear()

    async def commit(self, p: Prepared) -> int:
        """Write a prepared batch in one transaction, then acknowledge it and mark its tasks."""
        if p.snap.batch:
            try:
                await asyncio.to_thread(store.write, self.engine, p.snap.batch)
            except BaseException:
                self._forget()
                raise
        await archiving.ack_and_mark(self.b, p.ids, p.snap.snap_ms, p.snap.terminal)
        self._remember(p.ids)
        if self._failing:
            log.info("archive: %s is back; catching up", self._failing)
            self._failing, self._delay = "", RETRY_FIRST_S
        self.counters.batches += 1
        self.counters.entries += len(p.ids)
        self.counters.tasks += len(p.snap.batch.tasks)
        return len(p.ids)

    async def follow(self, stop: asyncio.Event) -> None:
        """Batch after batch while the lease is ours, reading the next batch while the last one is
        written (one transaction at a time, in order); housekeeping when idle or every second."""
        inflight: asyncio.Task[int] | None = None
        try:
            while self.held and not stop.is_set():
                if self._replay and inflight is not None:  # replaying: the pending list must settle
                    await inflight
                    inflight = None
                nxt = await self.prepare()
                if inflight is not None:
                    await inflight
                    inflight = None
                if nxt is not None:
                    inflight = asyncio.create_task(self.commit(nxt))
                if nxt is None or time.monotonic() >= self._due["trim"]:
                    await self.housekeeping()
            if inflight is not None:
                await inflight
        except BaseException:
            if inflight is not None:
                with contextlib.suppress(BaseException):
                    await inflight
            self._forget()  # whatever was read and not written comes again
            raise

    def _remember(self, ids: list[str]) -> None:
        for entry_id in ids:
            if self._seen % TRIM_SAMPLE == 0:
                self._acked.append(entry_id)
            self._seen += 1
        self._last_acked = ids[-1]

    def trim_bound(self) -> str | None:
        """Trim below the oldest remembered id once at least HIVEQ_EVENTS_MAXLEN entries were
        archived after it (so the stream keeps that many for SSE resumes and `watch`)."""
        if len(self._acked) < (self._acked.maxlen or 0):
            return None
        return self._acked[0]

    # -- housekeeping --------------------------------------------------------------------------
    async def sweep(self, limit: int = 500) -> int:
        """Archive finished tasks past the Redis tail that carry no mark newer than their finish
        (finished before the archive was attached, or in the same ms as their last snapshot)."""
        k = self.b.keys
        tail_ms = self.settings.archive.redis_retention_s * 1000
        now_s, now_us = await self.b.guard(self.b.redis.time())
        now = int(now_s) * 1000 + int(now_us) // 1000
        rows = cast(
            "list[tuple[str, float]]",
            await self.b.guard(
                self.b.redis.zrangebyscore(
                    k.finished, "-inf", now - tail_ms, start=0, num=limit, withscores=True
                )
            ),
        )
        if not rows:
            return 0
        pipe = self.b.redis.pipeline(transaction=False)
        for tid, _score in rows:
            pipe.hget(k.task(tid), "archived")
        marks = await self.b.guard(pipe.execute())
        todo = [tid for (tid, score), m in zip(rows, marks, strict=True) if not m or float(m) <= score]
        if not todo:
            return 0
        snap = await snapshot(self.b, self.ns, todo, logs=True)
        await asyncio.to_thread(store.write, self.engine, snap.batch)
        await archiving.mark_archived(self.b, snap.snap_ms, snap.terminal)
        return len(todo)

    async def housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._due["trim"]:
            self._due["trim"] = now + TRIM_EVERY_S
            bound = self.trim_bound()
            if bound:
                await archiving.trim_events(self.b, bound)
        if now >= self._due["sweep"]:
            self._due["sweep"] = now + SWEEP_EVERY_S
            await self.sweep()
        if now >= self._due["expire"]:
            self._due["expire"] = now + EXPIRE_EVERY_S
            before = int(time.time() * 1000) - self.settings.archive.archive_retention_s * 1000
            while await asyncio.to_thread(store.expire, self.engine, self.ns, before) > 0:
                pass

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: wait for the lease, then archive batch after batch. A Redis or database
        outage is logged once and retried with a backoff; nothing is acknowledged meanwhile."""
        keeper: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    await self.connect()
                    if keeper is None:
                        keeper = asyncio.create_task(self._keep_loop(stop), name="hiveq-archive-lease")
                    if not self.held and not await self.take():
                        await _wait(stop, TAKE_EVERY_S)
                        continue
                    await self.follow(stop)
                except (SQLAlchemyError, RedisUnavailable, OSError) as exc:
                    what = "the archive database" if isinstance(exc, SQLAlchemyError) else "Redis"
                    if self._failing != what:
                        log.warning(
                            "archive: %s unavailable (%s); retrying, nothing is lost",
                            what,
                            _short(exc, self.url),
                        )
                        self._failing = what
                    self.counters.failures += 1
                    await _wait(stop, self._delay)
                    self._delay = min(RETRY_MAX_S, self._delay * 2)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            with contextlib.suppress(HiveqError, OSError):
                await self.close()
            if self._owns_engine:
                self.engine.dispose()


def _short(exc: BaseException, url: str) -> str:
    """One line about a failure, with the URL's password never in it."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    secret = db.secret_of(url)
    return text.replace(secret, "***") if secret else text


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
