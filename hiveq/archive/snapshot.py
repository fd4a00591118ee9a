"""From Redis to rows: stream entries become event rows, and the tasks they touch are read
(task hash, its jobs' hashes) into task and job rows.

A snapshot is taken after the events that named the task, so it holds at least their state; its
Redis time (`TIME` in the same MULTI) is what `snap_ms` and mark_archived.lua record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hiveq.archive.store import Batch
from hiveq.contract.models import Event
from hiveq.contract.protocol import task_of
from hiveq.contract.states import TaskStatus
from hiveq.queue.broker import Broker
from hiveq.queue.events import enqueued_event, expand_entry

TERMINAL = {TaskStatus.SUCCEEDED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value}
META_VALUE_CHARS = 500


def split_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def event_row(ns: str, ev: Event, n: int) -> dict[str, Any]:
    ms, seq = split_id(ev.id)
    # The same event gives the same key whether it came from the stream or a custody log.
    subject = ev.job if ev.type == "job" and ev.job else f"{ev.type}:{ev.job or ev.task or ev.worker or ''}"
    task = ev.task or (task_of(ev.job) if ev.job else None)
    return {
        "ns": ns,
        "ms": ms,
        "seq": seq,
        "subject": subject[:130],
        "n": n,
        "type": ev.type[:16],
        "job_id": ev.job,
        "task_id": task,
        "body": ev.model_dump_json(by_alias=True, exclude_none=True),
    }


def subject_task(ev: Event) -> str | None:
    if ev.task:
        return ev.task
    return task_of(ev.job) if ev.job else None


@dataclass
class Entries:
    """Stream entries of one batch as event rows, and the tasks they name."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # in first-seen order, once each


def read_entries(ns: str, entries: Iterable[tuple[str, dict[str, str] | None]]) -> Entries:
    out = Entries()
    seen: set[str] = set()
    for entry_id, fields in entries:
        if not fields or "e" not in fields:  # trimmed after delivery, or not ours: nothing to keep
            continue
        try:
            expanded = expand_entry(entry_id, fields["e"])
        except (ValueError, TypeError, KeyError):
            expanded = [Event(id=entry_id, type="anomaly", ts=split_id(entry_id)[0], reason="undecodable")]
        for n, ev in enumerate(expanded):
            out.rows.append(event_row(ns, ev, n))
            tid = subject_task(ev)
            if tid and tid not in seen:
                seen.add(tid)
                out.tasks.append(tid)
    return out


def _ms(text: str | None) -> int | None:
    return int(float(text)) if text not in (None, "") else None


def task_row(ns: str, h: dict[str, str], seq: float | None, snap_ms: int) -> dict[str, Any]:
    return {
        "ns": ns,
        "id": h["id"],
        "status": h.get("status") or "queued",
        "priority": int(h.get("priority") or 5),
        "planner": (h.get("planner") or "")[:64],
        "description": h.get("description", ""),
        "created_ms": _ms(h.get("created")) or 0,
        "seq": int(seq or 0),
        "finished_ms": _ms(h.get("finished")),
        "idem": h.get("idem") or None,
        "record": json.dumps(h, separators=(",", ":")),
        "snap_ms": snap_ms,
    }


def job_row(ns: str, h: dict[str, str], snap_ms: int) -> dict[str, Any]:
    return {
        "ns": ns,
        "id": h["id"],
        "task_id": h.get("task") or task_of(h["id"]),
        "agent": (h.get("agent") or "")[:64],
        "state": (h.get("state") or "")[:16],
        "record": json.dumps(h, separators=(",", ":")),
        "snap_ms": snap_ms,
    }


def meta_rows(ns: str, h: dict[str, str]) -> list[dict[str, Any]]:
    """Top-level scalar metadata entries (what `meta=key:value` searches)."""
    try:
        meta = json.loads(h.get("metadata") or "{}")
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
        out.append({"ns": ns, "task_id": h["id"], "key": str(key)[:200], "value": text[:META_VALUE_CHARS]})
    return out


def _now_ms(t: Sequence[Any]) -> int:
    return int(t[0]) * 1000 + int(t[1]) // 1000


@dataclass
class Snapshot:
    batch: Batch
    snap_ms: int
    terminal: list[str]  # task ids whose archived state is final (for mark_archived)


async def snapshot(b: Broker, ns: str, task_ids: Sequence[str], *, logs: bool = False) -> Snapshot:
    """Read tasks and their jobs (two MULTIs: tasks, then the jobs they list). With `logs`, the
    jobs' custody logs too, as event rows (the sweep's way to fill what a trimmed stream lost)."""
    batch = Batch()
    if not task_ids:
        return Snapshot(batch, 0, [])
    pipe = b.redis.pipeline(transaction=True)
    pipe.time()
    for tid in task_ids:
        pipe.hgetall(b.keys.task(tid))
        pipe.zscore(b.keys.tasks, tid)
    res = await b.guard(pipe.execute())
    snap_ms = _now_ms(res[0])
    found: list[dict[str, str]] = []
    for at in range(len(task_ids)):
        h = cast("dict[str, str]", res[1 + 2 * at])
        if h and "id" in h:
            found.append(h)
            batch.tasks.append(task_row(ns, h, res[2 + 2 * at], snap_ms))
            batch.meta += meta_rows(ns, h)
    job_ids = [jid for h in found for jid in _ids(h.get("jobs"))]
    deps: dict[str, bool] = {}
    if job_ids:
        pipe = b.redis.pipeline(transaction=True)
        pipe.time()
        for jid in job_ids:
            pipe.hgetall(b.keys.job(jid))
            if logs:
                pipe.lrange(b.keys.job_log(jid), 0, -1)
        jres = await b.guard(pipe.execute())
        jsnap = _now_ms(jres[0])
        step = 2 if logs else 1
        for at in range(1, len(jres), step):
            h = cast("dict[str, str]", jres[at])
            if h and "id" in h:
                batch.jobs.append(job_row(ns, h, jsnap))
                deps[h["id"]] = bool(_ids(h.get("deps")))
            if logs:
                batch.events += _log_rows(ns, cast("list[str]", jres[at + 1]))
    if logs:
        batch.events += _enqueue_rows(ns, found, deps)
    terminal = [h["id"] for h in found if h.get("status") in TERMINAL]
    return Snapshot(batch, snap_ms, terminal)


def _ids(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _log_rows(ns: str, rows: list[str]) -> list[dict[str, Any]]:
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


def _enqueue_rows(ns: str, found: list[dict[str, str]], deps: dict[str, bool]) -> list[dict[str, Any]]:
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
