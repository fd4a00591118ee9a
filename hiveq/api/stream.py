"""Live events as server-sent events: one task's, or the whole namespace's.

Each SSE message carries the stream id as its `id:`, so a reconnecting client (EventSource does
this by itself) resumes exactly after the last event it saw via `Last-Event-ID`. Reads block in
Redis (XREAD BLOCK) instead of polling; a comment line keeps idle connections open.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from hiveq.api.deps import get_stream_broker, require_token_or_query
from hiveq.api.schemas import errors
from hiveq.contract.errors import HiveqError, NotFound, ValidationFailed
from hiveq.contract.models import Event
from hiveq.contract.states import TERMINAL_TASK_STATUSES
from hiveq.queue import events, inspect
from hiveq.queue.broker import Broker

router = APIRouter(tags=["events"], dependencies=[Depends(require_token_or_query)])
BrokerDep = Annotated[Broker, Depends(get_stream_broker)]
STREAM_ID_RE = re.compile(r"^\d{1,20}(-\d{1,20})?$")
STREAM_ID = r"^(\d{1,20}(-\d{1,20})?)?$"  # as documented: empty means "not given"
BLOCK_MS = 1000
FINISHED_RESPONSE: dict[int | str, dict[str, Any]] = {
    204: {"description": "the task has finished and the client resumed after its final event"}
}
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "text/event-stream of Event JSON objects",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def sse_message(ev: Event, resume_here: bool = True) -> str:
    """One SSE message. Several events can share one stream entry (an enqueue entry expands into
    each task's and job's events): only the last of them carries `id:`, so a client cut off in
    the middle resumes from the entry before and gets the whole entry again, never a part."""
    data = json.dumps(ev.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))
    head = f"id: {ev.id}\n" if resume_here else ""
    return f"{head}event: {ev.type}\ndata: {data}\n\n"


def resume_point(header: str, query: str) -> str | None:
    value = header or query
    if not value:
        return None
    if not STREAM_ID_RE.match(value):
        raise ValidationFailed("Last-Event-ID", f"{value[:40]!r} is not an event id like '1700000000000-0'")
    return value


def _ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0] or 0)


async def task_over(b: Broker, task_id: str, batch: list[Event], position: str) -> bool:
    """Has the stream of `task_id` passed the task's final event? A terminal task event is final
    when the task still has that status and finished at that moment (a dead letter retried later
    revives a failed task: its first `failed` was not final). An idle read also ends a stream
    that is past the finish (the final event may have been trimmed), or whose task expired."""
    ends = [ev for ev in batch if ev.type == "task" and ev.to in TERMINAL_TASK_STATUSES]
    if batch and not ends:
        return False
    try:
        task = await inspect.get_task(b, task_id)
    except NotFound:
        return True
    if task.status not in TERMINAL_TASK_STATUSES or task.finished_ms is None:
        return False
    if ends:
        return ends[-1].to == task.status and ends[-1].ts == task.finished_ms
    return task.finished_ms <= _ms(position)


async def event_stream(
    b: Broker, after: str, task_id: str | None, keepalive_s: float, follow: bool = True
) -> AsyncIterator[str]:
    """SSE lines: a retry hint, then events as they come, keep-alive comments when idle. A task's
    stream ends after the task's final event unless `follow`."""
    yield "retry: 2000\n\n"
    last_sent = time.monotonic()
    while True:
        try:
            after, batch = await events.read_events(b, after, count=500, block_ms=BLOCK_MS, task_id=task_id)
            for i, ev in enumerate(batch):
                yield sse_message(ev, resume_here=i + 1 == len(batch) or batch[i + 1].id != ev.id)
            if task_id is not None and not follow and await task_over(b, task_id, batch, after):
                return
        except HiveqError as exc:  # headers are sent: say so in-band and end; the client reconnects
            yield f"event: error\ndata: {json.dumps({'message': str(exc)})}\n\n"
            return
        if batch:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()


def sse_response(
    request: Request, b: Broker, after: str, task_id: str | None, follow: bool = True
) -> StreamingResponse:
    keepalive: float = request.app.state.sse_keepalive_s
    return StreamingResponse(
        event_stream(b, after, task_id, keepalive, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/tasks/{task_id}/events",
    response_class=StreamingResponse,
    responses={**SSE_RESPONSE, **FINISHED_RESPONSE, **errors(401, 404, 422, 503)},
)
async def task_events(
    task_id: str,
    request: Request,
    b: BrokerDep,
    last_event_id: Annotated[str, Header(alias="Last-Event-ID", pattern=STREAM_ID)] = "",
    after: Annotated[str, Query(description="resume after this event id", pattern=STREAM_ID)] = "",
    follow: Annotated[
        bool, Query(description="keep streaming after the final event (a retried dead letter revives a task)")
    ] = False,
) -> Response:
    """This task's events from its creation (or after `Last-Event-ID`), then live, until the task's
    final event (succeeded, failed or cancelled); then the stream ends. A client resuming after the
    final event gets 204, which tells EventSource to stop reconnecting. `?follow=1` keeps it open."""
    start = resume_point(last_event_id, after)
    task = await inspect.get_task(b, task_id)
    if start is None:
        start = f"{max(0, (task.created_ms or 1) - 1)}-0"
    elif not follow and task.status in TERMINAL_TASK_STATUSES and (task.finished_ms or 0) <= _ms(start):
        return Response(status_code=204)
    return sse_response(request, b, start, task_id, follow)


@router.get("/events", response_class=StreamingResponse, responses={**SSE_RESPONSE, **errors(401, 422, 503)})
async def namespace_events(
    request: Request,
    b: BrokerDep,
    last_event_id: Annotated[str, Header(alias="Last-Event-ID", pattern=STREAM_ID)] = "",
    after: Annotated[
        str, Query(description="resume after this event id; 0 for all kept", pattern=STREAM_ID)
    ] = "",
) -> StreamingResponse:
    """Every event of the namespace from now on (or after `Last-Event-ID`)."""
    start = resume_point(last_event_id, after) or await events.last_event_id(b)
    return sse_response(request, b, start, None)
