"""Writes to the archive: one transaction per archiver batch, idempotent so a replay is harmless.

Events are keyed by (namespace, stream id, subject) and inserted once; tasks and jobs are keyed
by id and replaced only by a snapshot at least as new as the one kept (`snap_ms`), so an
archiver that lost its lease and writes late cannot put an older state over a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from hiveq.archive.schema import events, jobs, task_meta, tasks
from hiveq.contract.states import TaskStatus

TERMINAL = [s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)]
# Rows per INSERT statement (both drivers send a multi-row VALUES list per statement).
CHUNK = 500


@dataclass
class Batch:
    """Rows for one transaction (dicts keyed by column name)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.tasks or self.jobs)


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _newer_wins(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    keys = {"ns", "id"}
    for at in range(0, len(rows), CHUNK):
        stmt = _insert(conn, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["ns", "id"],
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
            where=table.c.snap_ms <= stmt.excluded.snap_ms,
        )
        conn.execute(stmt, list(rows[at : at + CHUNK]))


def _once(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for at in range(0, len(rows), CHUNK):
        conn.execute(_insert(conn, table).on_conflict_do_nothing(), list(rows[at : at + CHUNK]))


def _latest(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per id (the newest snapshot): a statement may not touch one row twice."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["id"] not in best or best[r["id"]]["snap_ms"] <= r["snap_ms"]:
            best[r["id"]] = r
    return list(best.values())


def write(engine: Engine, batch: Batch) -> None:
    with engine.begin() as conn:
        if batch.events:
            _once(conn, events, batch.events)
        if batch.tasks:
            _newer_wins(conn, tasks, _latest(batch.tasks))
        if batch.jobs:
            _newer_wins(conn, jobs, _latest(batch.jobs))
        if batch.meta:  # metadata is fixed at enqueue: written once
            _once(conn, task_meta, batch.meta)


def expire(engine: Engine, ns: str, before_ms: int, limit: int = 1000) -> int:
    """Delete finished tasks (with their jobs, events and metadata) that finished before
    `before_ms`; at most `limit` tasks per call. Returns how many went."""
    with engine.begin() as conn:
        ids = list(
            conn.scalars(
                select(tasks.c.id)
                .where(tasks.c.ns == ns, tasks.c.finished_ms < before_ms, tasks.c.status.in_(TERMINAL))
                .limit(limit)
            )
        )
        # Events about no task (workers, anomalies) go by their own age.
        conn.execute(
            delete(events).where(events.c.ns == ns, events.c.task_id.is_(None), events.c.ms < before_ms)
        )
        if not ids:
            return 0
        for table, col in (
            (events, events.c.task_id),
            (jobs, jobs.c.task_id),
            (task_meta, task_meta.c.task_id),
        ):
            conn.execute(delete(table).where(and_(table.c.ns == ns, col.in_(ids))))
        conn.execute(delete(tasks).where(tasks.c.ns == ns, tasks.c.id.in_(ids)))
        return len(ids)
