"""events: read the capped event stream (live and from an id) and a job's custody history.

Events are written only by the scripts that change state; this module only reads. An enqueue
writes one stream entry per group of up to 64 tasks (`"type": "enqueued"`, listing each task's
jobs and their first states); readers here expand it into each task's event and one job event
per job, all with that entry's id, and put that job event first in a job's custody history
(enqueue.lua keeps the entry id in the task hash).
"""

from __future__ import annotations

import json
from typing import Any, cast

from hiveq.contract.models import Event
from hiveq.contract.protocol import task_of
from hiveq.queue.broker import Broker


def _event(event_id: str, d: dict[str, Any]) -> Event:
    d["id"] = event_id
    if isinstance(d.get("data"), list):  # cjson encodes an empty table as []
        d["data"] = {}
    return Event.model_validate(d)


def expand_entry(event_id: str, body: str) -> list[Event]:
    """One stream entry as events: an enqueue entry gives, per task, its task event and then
    one event per job; any other entry is one event."""
    d: dict[str, Any] = json.loads(body)
    if d.get("type") != "enqueued":
        return [_event(event_id, d)]
    reason, ts = d.get("reason"), d["ts"]
    out = []
    for task_id, jobs in d.get("tasks") or ():
        out.append(
            Event(
                id=event_id,
                type="task",
                ts=ts,
                task=task_id,
                frm="",
                to="queued",
                reason=reason,
                data={"total": len(jobs)},
            )
        )
        out += [enqueued_event(event_id, job_id, task_id, state, reason, ts) for job_id, state in jobs]
    return out


def enqueued_event(
    event_id: str, job_id: str, task_id: str, state: str, reason: str | None, ts: int
) -> Event:
    return Event(id=event_id, type="job", ts=ts, job=job_id, task=task_id, frm="", to=state, reason=reason)


async def read_events(
    b: Broker,
    after: str = "$",
    *,
    count: int = 500,
    block_ms: int | None = None,
    task_id: str | None = None,
) -> tuple[str, list[Event]]:
    """Events after stream id `after` ("0" for the oldest kept, "$" for only new ones).

    Returns the id to resume from and the events (filtered to one task when `task_id` is set).
    With `block_ms`, waits up to that long for the first new event.
    """
    res = cast(
        "list[tuple[str, list[tuple[str, dict[str, str]]]]] | None",
        await b.guard(b.redis.xread({b.keys.events: after}, count=count, block=block_ms)),
    )
    last = after
    out: list[Event] = []
    for _stream, entries in res or []:
        for event_id, fields in entries:
            last = event_id
            for ev in expand_entry(event_id, fields.get("e", "{}")):
                if task_id is None or ev.task == task_id:
                    out.append(ev)
    if last == "$":
        last = await last_event_id(b)
    return last, out


async def last_event_id(b: Broker) -> str:
    info = await b.guard(b.redis.xrevrange(b.keys.events, count=1))
    return str(info[0][0]) if info else "0-0"


async def job_history(b: Broker, job_id: str) -> list[Event]:
    """Every custody event of one job, oldest first (kept as long as the job itself): its
    enqueue, rebuilt from the task's record (a job spawned at run time logs its own first event),
    then the job's custody log. One round trip: a job
    id is `<task id>.<subtask id>`, and the job's own `task` field confirms it."""
    task_id = task_of(job_id)
    pipe = b.redis.pipeline(transaction=True)
    pipe.hmget(b.keys.job(job_id), ["task", "deps", "parent"])
    pipe.hmget(b.keys.task(task_id), ["eid", "by", "created", "run_at"])
    pipe.lrange(b.keys.job_log(job_id), 0, -1)
    (owner, deps, parent), (eid, by, created, run_at), rows = await b.guard(pipe.execute())
    out = []
    if owner == task_id and eid and created and not parent:  # a spawned job's log has its own start
        ahead = bool(run_at) and int(run_at) > int(created)  # enqueue.lua delayed its ready jobs
        state = "blocked" if deps else "delayed" if ahead else "waiting"
        out.append(enqueued_event(eid, job_id, task_id, state, f"enqueued by {by}", int(created)))
    for row in rows:
        d = json.loads(row)
        out.append(_event(d.pop("id"), d))
    return out
