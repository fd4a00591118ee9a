"""Reads that fall through: Redis answers for what it holds (live work and the short tail), the
archive for the rest, in the same shapes (the archive keeps Redis hashes and decodes them with
queue/inspect.py), so a reader cannot tell which one answered.

`Archive` is the reading side of HIVEQ_ARCHIVE_URL (processes that read but never archive, such
as the API and the CLI, open one); every SQL call runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy.exc import SQLAlchemyError

from hiveq.aggregate import task_view as live_task_view
from hiveq.aggregate import view_of
from hiveq.archive import db, query
from hiveq.archive.query import Key, TaskFilter
from hiveq.contract.errors import ArchiveUnavailable, NotFound, ValidationFailed
from hiveq.contract.limits import TRACEBACKS_KEPT
from hiveq.contract.models import Event, JobRecord, TaskRecord
from hiveq.contract.states import TaskStatus
from hiveq.contract.views import TaskView
from hiveq.queue import events, inspect
from hiveq.queue.broker import Broker
from hiveq.settings import Settings

T = TypeVar("T")
# Unarchived tasks (the archiver's lag, about a second) are looked for among the newest this many.
UNARCHIVED_SCAN = 1000


class Archive:
    """The archive of one namespace, for reading."""

    def __init__(self, url: str, ns: str) -> None:
        self.url, self.ns = url, ns
        self.where = db.redacted(url)
        self.engine = db.open_engine(url)

    @classmethod
    def of(cls, settings: Settings) -> Archive | None:
        url = settings.archive.archive_url
        return cls(url, settings.namespace) if url else None

    def close(self) -> None:
        self.engine.dispose()

    async def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run one query function in a thread; a database failure is ArchiveUnavailable (503)."""
        try:
            return await asyncio.to_thread(fn, self.engine, self.ns, *args, **kw)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            secret = db.secret_of(self.url)
            raise ArchiveUnavailable(
                self.where, reason.replace(secret, "***") if secret else reason
            ) from None


async def task_view(b: Broker, archive: Archive | None, task_id: str) -> TaskView:
    try:
        return await live_task_view(b, task_id)
    except NotFound:
        if archive is None:
            raise
    found = await archive.call(query.get_task, task_id)
    if found is None:
        raise NotFound("task", task_id)
    task, jobs = found
    return view_of(inspect.decode_task(task), [inspect.decode_job(j) for j in jobs])


async def get_task(b: Broker, archive: Archive | None, task_id: str) -> TaskRecord:
    try:
        return await inspect.get_task(b, task_id)
    except NotFound:
        if archive is None:
            raise
    found = await archive.call(query.get_task, task_id)
    if found is None:
        raise NotFound("task", task_id)
    return inspect.decode_task(found[0])


async def get_job(b: Broker, archive: Archive | None, job_id: str) -> JobRecord:
    try:
        return await inspect.get_job(b, job_id)
    except NotFound:
        if archive is None:
            raise
    h = await archive.call(query.get_job, job_id)
    if h is None:
        raise NotFound("job", job_id)
    job = inspect.decode_job(h)
    kept = json.loads(h.get("_tracebacks") or "[]")  # archived with the job (snapshot_tasks.lua)
    job.tracebacks = inspect.decode_tracebacks(kept[-TRACEBACKS_KEPT:])
    return job


async def job_history(b: Broker, archive: Archive | None, job_id: str) -> list[Event]:
    """A job's custody history, oldest first; NotFound for an id neither side knows."""
    live = await events.job_history(b, job_id)
    if live:
        return live
    if archive is not None:
        kept = await archive.call(query.job_events, job_id)
        if kept:
            return kept
    await get_job(b, archive, job_id)  # 404 for an unknown id, never an empty "pending" history
    return []


# -- the task list -------------------------------------------------------------------------------
def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}.{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, seq = text.split(".")
        return int(ms), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "cursor", "is not a cursor this API gave out; pass the `next_cursor` of the previous page"
        ) from None


@dataclass(frozen=True)
class TaskPage:
    total: int
    items: list[TaskRecord]
    next_cursor: str | None
    total_exact: bool = True  # False: `total` is a lower bound (query.COUNT_CAP, SEARCH_SCAN)


def _matches(h: dict[str, str], agents: set[str], f: TaskFilter) -> bool:
    t = inspect.decode_task(h)
    created = t.created_ms or 0
    return (
        (f.status is None or t.status.value == f.status)
        and (not f.q or f.q.casefold() in t.description.casefold())
        and (f.agent is None or f.agent in agents)
        and (f.since_ms is None or created >= f.since_ms)
        and (f.until_ms is None or created < f.until_ms)
        and all(_meta_text(t.metadata.get(k)) == v for k, v in f.meta)
    )


def _meta_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str | int | float) else None


async def _redis_candidates(
    b: Broker, f: TaskFilter, before: Key | None, scan: int, archive: Archive | None = None
) -> list[tuple[Key, dict[str, str]]]:
    """Among the newest `scan` tasks in Redis (those the archive does not hold yet, when given),
    the ones that match `f` and sort before `before`."""
    rows = cast(
        "list[tuple[str, float]]",
        await b.guard(b.redis.zrevrange(b.keys.tasks, 0, scan - 1, withscores=True)),
    )
    if rows and archive is not None:
        held = await archive.call(query.known, [tid for tid, _ in rows])
        rows = [(tid, score) for tid, score in rows if tid not in held]
    if not rows:
        return []
    pipe = b.redis.pipeline(transaction=False)
    for tid, _ in rows:
        pipe.hgetall(b.keys.task(tid))
    hashes = await b.guard(pipe.execute())
    agents: dict[str, set[str]] = {}
    if f.agent:
        pipe = b.redis.pipeline(transaction=False)
        wanted = [(h["id"], jid) for h in hashes if h for jid in query._ids(h.get("jobs"))]
        for _tid, jid in wanted:
            pipe.hget(b.keys.job(jid), "agent")
        for (tid, _jid), agent in zip(wanted, await b.guard(pipe.execute()), strict=True):
            agents.setdefault(tid, set()).add(agent or "")
    out = []
    for (_tid, score), h in zip(rows, hashes, strict=True):
        if not h or "id" not in h:
            continue
        key = (int(float(h.get("created") or 0)), int(score))
        if (before is None or key < before) and _matches(h, agents.get(h["id"], set()), f):
            out.append((key, h))
    return out


async def list_tasks(
    b: Broker, archive: Archive | None, f: TaskFilter, *, cursor: str | None, limit: int, offset: int = 0
) -> TaskPage:
    """Newest first, filtered, paged by cursor (or by offset, as the dashboard does). With an
    archive: the archive's matches, plus the newest tasks in Redis it does not hold yet; every
    item that Redis still holds is shown as Redis has it now (live status)."""
    before = decode_cursor(cursor) if cursor else None
    if archive is None:
        found = await _redis_candidates(b, f, before, scan=max(UNARCHIVED_SCAN, 5 * limit))
        page = found[offset : offset + limit]
        more = len(found) > offset + limit
        items = [inspect.decode_task(h) for _, h in page]
        scanned = max(UNARCHIVED_SCAN, 5 * limit)
        exact = int(await b.guard(b.redis.zcard(b.keys.tasks))) <= scanned
        return TaskPage(len(found), items, encode_cursor(page[-1][0]) if more and page else None, exact)
    unarchived = await _redis_candidates(b, f, before, UNARCHIVED_SCAN, archive)
    # The unarchived tasks are the newest (the archiver's lag): an offset skips them first.
    skip = max(0, offset - len(unarchived))
    counted, archived = await archive.call(
        query.list_tasks, f, before, limit + len(unarchived) + 1, skip=skip
    )
    total, exact = counted or (0, True)
    merged = sorted([*unarchived, *((r.key, r.record) for r in archived)], key=lambda kh: kh[0], reverse=True)
    start = offset - skip
    page = merged[start : start + limit]
    live = await _live(b, [h["id"] for _, h in page])
    items = [inspect.decode_task(live.get(h["id"]) or h) for _, h in page]
    nxt = encode_cursor(page[-1][0]) if len(merged) > start + limit and page else None
    return TaskPage(total + len(unarchived), items, nxt, exact)


async def _live(b: Broker, task_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    if not task_ids:
        return {}
    pipe = b.redis.pipeline(transaction=False)
    for tid in task_ids:
        pipe.hgetall(b.keys.task(tid))
    return {tid: h for tid, h in zip(task_ids, await b.guard(pipe.execute()), strict=True) if h}


def parse_filter(
    status: TaskStatus | None = None,
    q: str | None = None,
    agent: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    meta: Sequence[str] = (),
) -> TaskFilter:
    """The filter of `GET /tasks` and `hiveq tasks`; `meta` entries are `key:value`."""
    pairs = []
    for m in meta:
        key, sep, value = m.partition(":")
        if not sep or not key:
            raise ValidationFailed("meta", f"{m!r} is not key:value; e.g. meta=customer:acme")
        pairs.append((key, value))
    return TaskFilter(
        status=status.value if status else None,
        q=q or None,
        agent=agent or None,
        since_ms=since_ms,
        until_ms=until_ms,
        meta=tuple(pairs),
    )
