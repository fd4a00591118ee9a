"""Reads from the archive (synchronous SQLAlchemy Core; async callers use `asyncio.to_thread`).

Everything a reader gets back is a Redis hash as it was archived, or an Event, so the shapes are
those of live records. The task list is ordered newest first by (created ms, enqueue sequence)
and paged by a cursor on that key, so a page costs an index range scan however deep it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from hiveq.archive.schema import events, jobs, task_meta, tasks
from hiveq.contract.models import Event


@dataclass(frozen=True)
class TaskFilter:
    """The search of `GET /tasks`: every given part must match."""

    status: str | None = None
    q: str | None = None  # case-insensitive substring of the description
    agent: str | None = None  # a subtask runs this agent
    since_ms: int | None = None  # created at or after
    until_ms: int | None = None  # created before
    meta: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # top-level metadata key = value

    def __bool__(self) -> bool:
        return bool(self.status or self.q or self.agent or self.since_ms or self.until_ms or self.meta)


Key = tuple[int, int]  # (created ms, enqueue sequence): the list order


@dataclass(frozen=True)
class Row:
    key: Key
    record: dict[str, str]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(ns: str, f: TaskFilter, before: Key | None) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = [tasks.c.ns == ns]
    if f.status:
        c.append(tasks.c.status == f.status)
    if f.q:
        c.append(func.lower(tasks.c.description).like(f"%{_escape_like(f.q.lower())}%", escape="\\"))
    if f.since_ms is not None:
        c.append(tasks.c.created_ms >= f.since_ms)
    if f.until_ms is not None:
        c.append(tasks.c.created_ms < f.until_ms)
    if f.agent:  # a semi-join on the (ns, agent, task) index
        c.append(tasks.c.id.in_(select(jobs.c.task_id).where(jobs.c.ns == ns, jobs.c.agent == f.agent)))
    for key, value in f.meta:  # a semi-join on the (ns, key, value) index
        c.append(
            tasks.c.id.in_(
                select(task_meta.c.task_id).where(
                    task_meta.c.ns == ns, task_meta.c.key == key, task_meta.c.value == value
                )
            )
        )
    if before is not None:
        ms, seq = before
        # `created <= ms` bounds the index range; the OR only settles the one ms at the edge.
        c.append(tasks.c.created_ms <= ms)
        c.append(or_(tasks.c.created_ms < ms, tasks.c.seq < seq))
    return c


# The total of a list is counted up to COUNT_CAP matches (then `exact` is False): a count over a
# million rows costs a full index scan on every page. A text search counts its matches among the
# newest SEARCH_SCAN tasks only (a LIKE cannot use an index). Pages themselves are exact.
COUNT_CAP = 10_000
SEARCH_SCAN = 100_000


def _total(conn: Connection, ns: str, f: TaskFilter) -> tuple[int, bool]:
    if f.q:
        plain = replace(f, q=None)
        newest = (
            select(tasks.c.description)
            .where(*_conditions(ns, plain, None))
            .order_by(tasks.c.created_ms.desc(), tasks.c.seq.desc())
            .limit(SEARCH_SCAN + 1)
            .subquery()
        )
        scanned = int(conn.scalar(select(func.count()).select_from(newest)) or 0)
        like = func.lower(newest.c.description).like(f"%{_escape_like(f.q.lower())}%", escape="\\")
        hits = select(literal(1)).select_from(newest).where(like).limit(COUNT_CAP + 1).subquery()
        n = int(conn.scalar(select(func.count()).select_from(hits)) or 0)
        return min(n, COUNT_CAP), n <= COUNT_CAP and scanned <= SEARCH_SCAN
    capped = select(literal(1)).select_from(tasks).where(*_conditions(ns, f, None)).limit(COUNT_CAP + 1)
    n = int(conn.scalar(select(func.count()).select_from(capped.subquery())) or 0)
    return min(n, COUNT_CAP), n <= COUNT_CAP


def list_tasks(
    engine: Engine,
    ns: str,
    f: TaskFilter,
    before: Key | None,
    limit: int,
    *,
    count: bool = True,
    skip: int = 0,
) -> tuple[tuple[int, bool] | None, list[Row]]:
    """((how many archived tasks match `f` up to COUNT_CAP, whether that is exact), or None
    without `count`; the newest `limit` of them before the cursor key `before`, after `skip`
    (the dashboard pages by offset; a cursor costs less deep down).)"""
    with engine.connect() as conn:
        stmt = (
            select(tasks.c.created_ms, tasks.c.seq, tasks.c.record)
            .where(*_conditions(ns, f, before))
            .order_by(tasks.c.created_ms.desc(), tasks.c.seq.desc())
            .offset(skip)
            .limit(limit)
        )
        rows = [Row((int(ms), int(seq)), json.loads(rec)) for ms, seq, rec in conn.execute(stmt)]
        total = _total(conn, ns, f) if count else None
    return total, rows


def known(engine: Engine, ns: str, task_ids: Sequence[str]) -> set[str]:
    """Which of these task ids the archive holds."""
    if not task_ids:
        return set()
    with engine.connect() as conn:
        return set(conn.scalars(select(tasks.c.id).where(tasks.c.ns == ns, tasks.c.id.in_(list(task_ids)))))


def get_task(engine: Engine, ns: str, task_id: str) -> tuple[dict[str, str], list[dict[str, str]]] | None:
    """A task's archived hash and its jobs' hashes (in the task's job order), or None."""
    with engine.connect() as conn:
        rec = conn.scalar(select(tasks.c.record).where(tasks.c.ns == ns, tasks.c.id == task_id))
        if rec is None:
            return None
        task = json.loads(rec)
        by_id = {
            jid: json.loads(r)
            for jid, r in conn.execute(
                select(jobs.c.id, jobs.c.record).where(jobs.c.ns == ns, jobs.c.task_id == task_id)
            )
        }
    order = _ids(task.get("jobs"))
    return task, [by_id[j] for j in order if j in by_id] + [h for j, h in by_id.items() if j not in order]


def get_job(engine: Engine, ns: str, job_id: str) -> dict[str, str] | None:
    with engine.connect() as conn:
        rec = conn.scalar(select(jobs.c.record).where(jobs.c.ns == ns, jobs.c.id == job_id))
    return json.loads(rec) if rec is not None else None


def job_events(engine: Engine, ns: str, job_id: str) -> list[Event]:
    """Every archived custody event of a job, oldest first."""
    with engine.connect() as conn:
        rows = conn.scalars(
            select(events.c.body)
            .where(events.c.ns == ns, events.c.job_id == job_id)
            .order_by(events.c.ms, events.c.seq, events.c.n)
        )
        return [event_of(body) for body in rows]


def event_of(body: str) -> Event:
    d = json.loads(body)
    if isinstance(d.get("data"), list):  # cjson encodes an empty table as [] (as events.py fixes)
        d["data"] = {}
    return Event.model_validate(d)


def unfinished(engine: Engine, ns: str, limit: int = 100_000) -> list[dict[str, str]]:
    """Archived tasks not finished (queued or running), oldest first: the loss report's list."""
    with engine.connect() as conn:
        rows = conn.scalars(
            select(tasks.c.record)
            .where(tasks.c.ns == ns, tasks.c.status.in_(("queued", "running")))
            .order_by(tasks.c.created_ms, tasks.c.seq)
            .limit(limit)
        )
        return [json.loads(r) for r in rows]


def by_idempotency_key(engine: Engine, ns: str, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(tasks.c.id).where(tasks.c.ns == ns, tasks.c.idem == key).limit(1))


def _ids(text: Any) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except (TypeError, ValueError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def stats(engine: Engine, ns: str) -> dict[str, Any]:
    """Counts for `hiveq archiver --status`."""
    with engine.connect() as conn:
        n_tasks = int(conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.ns == ns)) or 0)
        n_events = int(conn.scalar(select(func.count()).select_from(events).where(events.c.ns == ns)) or 0)
        newest = conn.scalar(select(func.max(events.c.ms)).where(events.c.ns == ns))
    return {"tasks": n_tasks, "events": n_events, "newest_event_ms": int(newest) if newest else None}
