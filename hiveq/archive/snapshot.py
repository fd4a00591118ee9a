"""From Redis to rows: stream entries become event rows, and the tasks they touch are read
(task hash, its jobs' hashes) into task and job rows.

A snapshot is taken after the events that named the task, so it holds at least their state; its
Redis time (`TIME` in the same MULTI) is what `snap_ms` and mark_archived.lua record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hiveq.archive.store import Batch, Row
from hiveq.contract.models import Event
from hiveq.contract.protocol import task_of
from hiveq.contract.states import TaskStatus
from hiveq.queue.archiving import snapshot_chunks
from hiveq.queue.broker import Broker
from hiveq.queue.events import enqueued_event

TERMINAL = {TaskStatus.SUCCEEDED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value}
META_VALUE_CHARS = 500
TASK_ID = 7  # where an event row holds its task id


def split_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def event_row(ns: str, ev: Event, n: int) -> Row:
    ms, seq = split_id(ev.id)
    # The same event gives the same key whether it came from the stream or a custody log.
    subject = ev.job if ev.type == "job" and ev.job else f"{ev.type}:{ev.job or ev.task or ev.worker or ''}"
    task = ev.task or (task_of(ev.job) if ev.job else None)
    body = ev.model_dump_json(by_alias=True, exclude_none=True)
    # hiveq_events' columns: ns, ms, seq, subject, n, type, job_id, task_id, body
    return (ns, ms, seq, subject[:130], n, ev.type[:16], ev.job, task, body)


@dataclass
class Entries:
    """Stream entries of one batch as event rows, and the tasks they name."""

    rows: list[Row] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # in first-seen order, once each
    # the stream ms of the newest entry naming each task (snapshots older than it are stale)
    newest: dict[str, int] = field(default_factory=dict)


def _row(ns: str, entry_id: str, n: int, d: dict[str, Any], body: str) -> Row:
    """An event row from the event's JSON (`d` decoded, `body` its text with the id in it)."""
    ms, seq = split_id(entry_id)
    kind, job, task = str(d.get("type") or "?"), d.get("job"), d.get("task")
    subject = job if kind == "job" and job else f"{kind}:{job or task or d.get('worker') or ''}"
    task = task or (task_of(job) if job else None)
    return (ns, ms, seq, str(subject)[:130], n, kind[:16], job, task, body)


def _expand_enqueued(ns: str, entry_id: str, d: dict[str, Any]) -> list[Row]:
    """The enqueue entry as queue/events.py expands it, built as JSON directly (it is most rows)."""
    reason, ts = d.get("reason"), d["ts"]
    head = f'{{"id":{json.dumps(entry_id)},"ts":{int(ts)},"reason":{json.dumps(reason)},'
    out, n = [], 0
    for task_id, jobs in d.get("tasks") or ():
        tid = json.dumps(task_id)
        task_ev = {"type": "task", "task": task_id}
        body = f'{head}"type":"task","task":{tid},"from":"","to":"queued","data":{{"total":{len(jobs)}}}}}'
        out.append(_row(ns, entry_id, n, task_ev, body))
        n += 1
        for job_id, state in jobs:
            to = json.dumps(state)
            body = f'{head}"type":"job","job":{json.dumps(job_id)},"task":{tid},"from":"","to":{to}}}'
            out.append(_row(ns, entry_id, n, {"type": "job", "job": job_id, "task": task_id}, body))
            n += 1
    return out


def read_entries(ns: str, entries: Iterable[tuple[str, dict[str, str] | None]]) -> Entries:
    """Event rows without building models (a batch holds thousands): an entry's JSON is stored as
    it is, with its stream id put in, as the scripts do for custody logs."""
    out = Entries()
    newest = out.newest  # in first-seen order: the tasks to read
    add = out.rows.append
    for entry_id, fields in entries:
        if not fields or "e" not in fields:  # trimmed after delivery, or not ours: nothing to keep
            continue
        raw = fields["e"]
        try:
            d = json.loads(raw)
            if d.get("type") == "enqueued":
                rows = _expand_enqueued(ns, entry_id, d)
            else:  # a stream id is "<ms>-<seq>": nothing in it to escape
                body = f'{{"id":"{entry_id}",{raw[1:]}' if raw.startswith("{") and raw != "{}" else raw
                rows = [_row(ns, entry_id, 0, d, body)]
        except (ValueError, TypeError, KeyError, AttributeError):
            ev = Event(id=entry_id, type="anomaly", ts=split_id(entry_id)[0], reason="undecodable event")
            rows = [event_row(ns, ev, 0)]
        for r in rows:
            add(r)
            if r[TASK_ID]:
                newest[r[TASK_ID]] = r[1]  # the entry's stream ms
    out.tasks = list(newest)
    return out


def _ms(text: str | None) -> int | None:
    return int(float(text)) if text not in (None, "") else None


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def task_row(ns: str, h: dict[str, str], seq: float | None, snap_ms: int) -> Row:
    # hiveq_tasks' columns: ns, id, status, priority, planner, description, created_ms, seq,
    # finished_ms, idem, record, snap_ms
    return (
        ns,
        h["id"],
        h.get("status") or "queued",
        int(h.get("priority") or 5),
        (h.get("planner") or "")[:64],
        h.get("description", ""),
        _ms(h.get("created")) or 0,
        int(seq or 0),
        _ms(h.get("finished")),
        h.get("idem") or None,
        _dumps(h),
        snap_ms,
    )


def job_row(ns: str, h: dict[str, str], snap_ms: int) -> Row:
    # hiveq_jobs' columns: ns, id, task_id, agent, state, record, snap_ms
    return (
        ns,
        h["id"],
        h.get("task") or task_of(h["id"]),
        (h.get("agent") or "")[:64],
        (h.get("state") or "")[:16],
        _dumps(h),
        snap_ms,
    )


def meta_rows(ns: str, h: dict[str, str]) -> list[Row]:
    """Top-level scalar metadata entries (what `meta=key:value` searches)."""
    raw = h.get("metadata")
    if not raw or raw == "{}":
        return []
    try:
        meta = json.loads(raw)
    except ValueError:
        return []
    out = []
    for key, value in meta.items() if isinstance(meta, dict) else ():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            continue
        out.append((ns, h["id"], str(key)[:200], text[:META_VALUE_CHARS]))
    return out


@dataclass
class Snapshot:
    batch: Batch
    snap_ms: int
    terminal: list[str]  # task ids whose archived state is final (for mark_archived)


SNAPSHOT_CHUNK = 500  # tasks per snapshot_tasks.lua call: bounds how long one call holds Redis


async def snapshot(b: Broker, ns: str, task_ids: Sequence[str], *, logs: bool = False) -> Snapshot:
    """Read tasks and their jobs at one instant per chunk (snapshot_tasks.lua). With `logs`, the
    jobs' custody logs too, as event rows (the sweep's way to fill what a trimmed stream lost)."""
    batch = Batch()
    snap_ms = 0
    terminal: list[str] = []
    chunks = [task_ids[at : at + SNAPSHOT_CHUNK] for at in range(0, len(task_ids), SNAPSHOT_CHUNK)]
    for now, got in await snapshot_chunks(b, chunks, logs=logs):
        snap_ms = snap_ms or now  # the earliest read: what mark_archived may claim for all
        found: list[dict[str, str]] = []
        deps: dict[str, bool] = {}
        for t in got:
            if "id" not in t.task:
                continue
            found.append(t.task)
            batch.tasks.append(task_row(ns, t.task, t.seq, now))
            batch.meta += meta_rows(ns, t.task)
            if t.task.get("status") in TERMINAL:
                terminal.append(t.task["id"])
            for h, log in t.jobs:
                if "id" in h:
                    batch.jobs.append(job_row(ns, h, now))
                if logs:
                    if "id" in h:
                        deps[h["id"]] = bool(_ids(h.get("deps")))
                    batch.events += _log_rows(ns, log)
        if logs:
            batch.events += _enqueue_rows(ns, found, deps)
    return Snapshot(batch, snap_ms, terminal)


def _ids(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _log_rows(ns: str, rows: list[str]) -> list[Row]:
    out = []
    for row in rows:
        try:
            d = json.loads(row)
            if isinstance(d.get("data"), list):
                d["data"] = {}
            ev = Event.model_validate(d)
        except ValueError:
            continue
        out.append(event_row(ns, ev, 0))
    return out


def _enqueue_rows(ns: str, found: list[dict[str, str]], deps: dict[str, bool]) -> list[Row]:
    """The enqueue events of swept tasks, rebuilt as queue/events.py job_history does."""
    out = []
    for h in found:
        eid, created = h.get("eid"), _ms(h.get("created"))
        if not eid or created is None:
            continue
        reason = f"enqueued by {h.get('by', '')}"
        jobs = _ids(h.get("jobs"))
        task_ev = Event(
            id=eid,
            type="task",
            ts=created,
            task=h["id"],
            frm="",
            to="queued",
            reason=reason,
            data={"total": len(jobs)},
        )
        out.append(event_row(ns, task_ev, 0))
        for n, jid in enumerate(jobs, start=1):
            first = "blocked" if deps.get(jid) else "waiting"
            out.append(event_row(ns, enqueued_event(eid, jid, h["id"], first, reason, created), n))
    return out
