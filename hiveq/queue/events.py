"""events: read the capped event stream (live and from an id) and a job's custody history.

Events are written only by the scripts that change state; this module only reads.
"""

from __future__ import annotations

import json
from typing import Any, cast

from hiveq.models import Event
from hiveq.queue.broker import Broker


def parse_event(event_id: str, body: str) -> Event:
    d: dict[str, Any] = json.loads(body)
    d["id"] = event_id
    if isinstance(d.get("data"), list):  # cjson encodes an empty table as []
        d["data"] = {}
    return Event.model_validate(d)


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
            ev = parse_event(event_id, fields.get("e", "{}"))
            if task_id is None or ev.task == task_id:
                out.append(ev)
    if last == "$":
        last = await last_event_id(b)
    return last, out


async def last_event_id(b: Broker) -> str:
    info = await b.guard(b.redis.xrevrange(b.keys.events, count=1))
    return str(info[0][0]) if info else "0-0"


async def job_history(b: Broker, job_id: str) -> list[Event]:
    """Every custody event of one job, oldest first (kept as long as the job itself)."""
    rows = await b.guard(b.redis.lrange(b.keys.job_log(job_id), 0, -1))
    out = []
    for row in rows:
        d = json.loads(row)
        out.append(parse_event(d.pop("id"), json.dumps(d)))
    return out
