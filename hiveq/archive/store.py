"""Writes to the archive: one transaction per archiver batch, idempotent so a replay is harmless.

Events are keyed by (namespace, stream id, subject) and inserted once; tasks and jobs are keyed
by id and replaced only by a snapshot at least as new as the one kept (`snap_ms`), so an
archiver that lost its lease and writes late cannot put an older state over a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, select

from hiveq.archive.schema import events, jobs, task_meta, tasks
from hiveq.contract.states import TaskStatus

TERMINAL = [s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)]

Row = tuple[Any, ...]  # one row's values in its table's column order (schema.py)


@dataclass
class Batch:
    """Rows for one transaction, as tuples in each table's column order (snapshot.py builds them):
    a batch holds tens of thousands of rows, and the drivers take tuples as they are."""

    events: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)
    jobs: list[Row] = field(default_factory=list)
    meta: list[Row] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.tasks or self.jobs)


def _cols(table: Table) -> list[str]:
    return [f'"{c.name}"' for c in table.columns]


ID, SNAP = 1, -1  # where a task or job row holds its id and its snap_ms


def _latest(rows: Iterable[Row]) -> list[Row]:
    """One row per id (the newest snapshot): one statement may not update one row twice."""
    best: dict[str, Row] = {}
    for r in rows:
        kept = best.get(r[ID])
        if kept is None or kept[SNAP] <= r[SNAP]:
            best[r[ID]] = r
    return list(best.values())


def _upsert_sql(table: Table, source: str) -> str:
    """INSERT (from `source`) keeping the newer snapshot of each (ns, id): an archiver that writes
    late cannot put an older state over a newer one."""
    cols = _cols(table)
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ('"ns"', '"id"'))
    return (
        f"INSERT INTO {table.name} ({', '.join(cols)}) {source} ON CONFLICT (ns, id) DO UPDATE SET {sets}"
        f" WHERE {table.name}.snap_ms <= excluded.snap_ms"
    )


def _once_sql(table: Table, source: str) -> str:
    return f"INSERT INTO {table.name} ({', '.join(_cols(table))}) {source} ON CONFLICT DO NOTHING"


def _values(table: Table, mark: str) -> str:
    return "VALUES (" + ", ".join([mark] * len(table.columns)) + ")"


# SQLite: one executemany per table (the sqlite3 module steps one prepared statement per row).
_SQLITE = {
    "events": _once_sql(events, _values(events, "?")),
    "tasks": _upsert_sql(tasks, _values(tasks, "?")),
    "jobs": _upsert_sql(jobs, _values(jobs, "?")),
    "meta": _once_sql(task_meta, _values(task_meta, "?")),
}
_TABLES = {"events": events, "tasks": tasks, "jobs": jobs, "meta": task_meta}


def _stage(table: Table) -> str:
    return f"hiveq_stage_{table.name.removeprefix('hiveq_')}"


# PostgreSQL: COPY each table's rows into a temporary staging table (emptied at commit), then one
# INSERT ... SELECT per table: a round trip per table, and no per-row statement parsing.
_PG = {
    name: (
        f"CREATE TEMP TABLE IF NOT EXISTS {_stage(t)} (LIKE {t.name}) ON COMMIT DELETE ROWS",
        f"COPY {_stage(t)} ({', '.join(_cols(t))}) FROM STDIN",
        (_upsert_sql if name in ("tasks", "jobs") else _once_sql)(t, f"SELECT * FROM {_stage(t)}"),
    )
    for name, t in _TABLES.items()
}


def _rows(batch: Batch) -> dict[str, list[Row]]:
    return {
        "events": batch.events,
        "tasks": _latest(batch.tasks),
        "jobs": _latest(batch.jobs),
        "meta": batch.meta,  # metadata is fixed at enqueue: written once
    }


def _write_sqlite(conn: Connection, rows: dict[str, list[Row]]) -> None:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for name, got in rows.items():
            if got:
                cur.executemany(_SQLITE[name], got)
    finally:
        cur.close()


def _write_pg(conn: Connection, rows: dict[str, list[Row]]) -> None:
    with conn.connection.dbapi_connection.cursor() as cur:  # type: ignore[union-attr]
        for name, got in rows.items():
            if not got:
                continue
            create, copy, insert = _PG[name]
            cur.execute(create)
            with cur.copy(copy) as cp:
                for r in got:
                    cp.write_row(r)
            cur.execute(insert)


def write(engine: Engine, batch: Batch) -> None:
    """The batch in one transaction, with each driver's fastest bulk path (see docs/archive.md)."""
    rows = _rows(batch)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            _write_pg(conn, rows)
        else:
            _write_sqlite(conn, rows)


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
