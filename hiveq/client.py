"""The Python SDK: `Client` (sync) and `AsyncClient` over the HTTP API.

Errors come back as hiveq's own exceptions (`NotFound`, `Conflict`, `ValidationFailed`, ...)
rebuilt from the JSON error body, so SDK users handle the same classes as in-process code.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from hiveq.contract.errors import ERRORS, HiveqError, NotFound, ValidationFailed
from hiveq.contract.models import Event, JobRecord, SubtaskSpec, WorkerInfo
from hiveq.contract.states import TERMINAL_TASK_STATUSES, JobState
from hiveq.contract.views import (
    CancelResponse,
    DeadLetters,
    Health,
    JobAction,
    JobHistory,
    JobOutput,
    Queues,
    ScheduleList,
    ScheduleRemoved,
    ScheduleView,
    SignalSent,
    SubmitResponse,
    TaskList,
    TaskView,
    VanishedJobs,
    Workers,
)

DEFAULT_URL = "http://127.0.0.1:8001"
JSON_BODY = {"Content-Type": "application/json"}
M = TypeVar("M", bound=BaseModel)


class ApiError(HiveqError):
    """An error answer without a more specific hiveq class (a 5xx, an unknown code)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status_code = status
        self.error_code = code  # the server's code; `code` stays the class's ("internal")
        self.field = field
        super().__init__(message)


def rebuild_error(status: int, text: str) -> HiveqError:
    """The exception an error response stands for (hiveq/contract/errors.py ERRORS), with the
    server's message as is."""
    try:
        err = json.loads(text)["error"]
        code, message, fld = str(err["code"]), str(err["message"]), err.get("field")
    except (ValueError, KeyError, TypeError):
        return ApiError(status, "http_error", f"HTTP {status}: {text[:500]}")
    cls = ERRORS.get(code)
    if cls is None or cls is HiveqError:
        return ApiError(status, code, message, fld)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.field = fld
    if isinstance(exc, ValidationFailed):
        exc.rule = message.removeprefix(f"{fld}: ")
    if isinstance(exc, NotFound):
        exc.kind = (fld or "").removesuffix("_id")
        exc.ident = ""
    return exc


def task_body(
    description: str,
    priority: int,
    planner: str | None,
    metadata: dict[str, Any] | None,
    subtasks: Sequence[SubtaskSpec | dict[str, Any]] | None,
    agent: str | None,
    limits: Sequence[str] | None = None,
    run_at: datetime | str | None = None,
    delay_s: float | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description, "priority": priority}
    if limits:
        body["limits"] = list(limits)
    if run_at is not None:  # a datetime must carry its zone: the server refuses a naive time
        body["run_at"] = run_at.isoformat() if isinstance(run_at, datetime) else run_at
    if delay_s is not None:
        body["delay_s"] = delay_s
    if planner is not None:
        body["planner"] = planner
    if metadata:
        body["metadata"] = metadata
    if agent is not None:
        body["agent"] = agent
    if subtasks is not None:
        body["subtasks"] = [
            s.model_dump(exclude_none=True) if isinstance(s, SubtaskSpec) else s for s in subtasks
        ]
    return body


@dataclass
class SSEParser:
    """Turns `text/event-stream` lines into Events (comments and retry hints are skipped)."""

    fields: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> Event | None:
        if line == "":
            f, self.fields = self.fields, {}
            if "data" not in f:
                return None
            if f.get("event") == "error":
                raise ApiError(503, "stream_error", json.loads(f["data"]).get("message", f["data"]))
            data = json.loads(f["data"])  # carries the event's id; an `id:` line only ends an entry
            return Event.model_validate({**data, "id": f["id"]} if "id" in f else data)
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        self.fields[name] = (
            self.fields[name] + "\n" + value if name == "data" and name in self.fields else value
        )
        return None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    parser = SSEParser()
    for line in lines:
        ev = parser.feed(line)
        if ev is not None:
            yield ev


def is_done(ev: Event, task_id: str) -> bool:
    """The task finished, or cannot finish by itself: a job of it vanished and no watch recovers
    it (the view then reads `stalled` with its `problems`)."""
    if ev.task != task_id:
        return False
    if ev.type == "task":
        return ev.to in TERMINAL_TASK_STATUSES
    manual = not (isinstance(ev.data, dict) and ev.data.get("recover") == "auto")
    return ev.type == "job" and ev.to == JobState.VANISHED and manual


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _events_path(task_id: str | None) -> str:
    return f"/tasks/{task_id}/events" if task_id else "/events"


def _stream_params(after: str | None, follow: bool) -> dict[str, str]:
    params = {"after": after} if after else {}
    if follow:
        params["follow"] = "1"
    return params


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        raise rebuild_error(resp.status_code, resp.text)
    return resp


class Client:
    """Synchronous client. `Client("http://host:8001", token="...")`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _get(self, model: type[M], path: str, **params: Any) -> M:
        resp = _check(self.http.get(path, params={k: v for k, v in params.items() if v is not None}))
        return model.model_validate(resp.json())

    def _post(self, model: type[M], path: str) -> M:
        return model.model_validate(_check(self.http.post(path)).json())

    def submit(
        self,
        description: str,
        *,
        priority: int = 5,
        planner: str | None = None,
        metadata: dict[str, Any] | None = None,
        subtasks: Sequence[SubtaskSpec | dict[str, Any]] | None = None,
        agent: str | None = None,
        idempotency_key: str | None = None,
        limits: Sequence[str] | None = None,
        run_at: datetime | str | None = None,
        delay_s: float | None = None,
    ) -> SubmitResponse:
        """`run_at` (an aware datetime or ISO 8601 text with its zone) or `delay_s`: start no
        earlier than then (docs/schedules.md)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = task_body(description, priority, planner, metadata, subtasks, agent, limits, run_at, delay_s)
        return SubmitResponse.model_validate(
            _check(self.http.post("/tasks", json=body, headers=headers)).json()
        )

    def get_task(self, task_id: str) -> TaskView:
        return self._get(TaskView, f"/tasks/{task_id}")

    def list_tasks(
        self, status: str | None = None, offset: int = 0, limit: int = 50, q: str | None = None
    ) -> TaskList:
        return self._get(TaskList, "/tasks", status=status, offset=offset, limit=limit, q=q)

    def cancel_task(self, task_id: str) -> CancelResponse:
        return self._post(CancelResponse, f"/tasks/{task_id}/cancel")

    def events(
        self, task_id: str | None = None, after: str | None = None, *, follow: bool = False
    ) -> Iterator[Event]:
        """Live events: of one task, from its creation until its final event (then the iterator
        ends; `follow=True` goes on, e.g. for a dead letter retried later); or of the namespace,
        from now, without end."""
        params = _stream_params(after, follow)
        timeout = httpx.Timeout(30, read=None)
        with self.http.stream("GET", _events_path(task_id), params=params, timeout=timeout) as r:
            if r.status_code >= 400:
                r.read()
                _check(r)
            yield from parse_events(r.iter_lines())

    def wait(self, task_id: str, timeout: float = 300.0) -> TaskView:
        """Block until the task finishes or stalls (via its event stream); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        view = self.get_task(task_id)
        after: str | None = None
        while view.status not in TERMINAL_TASK_STATUSES and not view.stalled:
            stream = self.events(task_id, after)
            try:
                for ev in stream:
                    after = ev.id
                    if is_done(ev, task_id) or time.monotonic() > deadline:
                        break
            finally:
                stream.close()  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id!r} did not finish within {timeout} s")
            view = self.get_task(task_id)  # the stream ended: read the outcome (or follow a revival)
        return view

    def job(self, job_id: str) -> JobRecord:
        return self._get(JobRecord, f"/jobs/{job_id}")

    def job_history(self, job_id: str) -> list[Event]:
        return self._get(JobHistory, f"/jobs/{job_id}/history").events

    def signal(self, job_id: str, name: str, data: Any = None) -> SignalSent:
        """Send signal `name` (JSON `data`) to a durable agent's job (`ctx.wait_for_signal`)."""
        resp = self.http.post(f"/jobs/{job_id}/signals/{name}", content=json.dumps(data), headers=JSON_BODY)
        return SignalSent.model_validate(_check(resp).json())

    def output(self, job_id: str) -> JobOutput:
        """The job's streamed output so far (`ctx.emit`, the llm agent's tokens)."""
        return self._get(JobOutput, f"/jobs/{job_id}/output")

    def dlq(self, offset: int = 0, limit: int = 50) -> list[JobRecord]:
        return self._get(DeadLetters, "/dlq", offset=offset, limit=limit).items

    def retry_dead(self, job_id: str) -> JobAction:
        return self._post(JobAction, f"/dlq/{job_id}/retry")

    def discard_dead(self, job_id: str) -> JobAction:
        return self._post(JobAction, f"/dlq/{job_id}/discard")

    def vanished(self, limit: int = 100) -> VanishedJobs:
        return self._get(VanishedJobs, "/vanished", limit=limit)

    def recover(self, job_id: str) -> JobAction:
        """Put a vanished job back where it belongs (one delivery counted)."""
        return self._post(JobAction, f"/jobs/{job_id}/recover")

    def put_schedule(self, name: str, cron: str, task: dict[str, Any], tz: str = "UTC") -> ScheduleView:
        """Add or replace a recurring schedule; `task` is a POST /tasks body (docs/schedules.md)."""
        body = {"cron": cron, "tz": tz, "task": task}
        return ScheduleView.model_validate(_check(self.http.put(f"/schedules/{name}", json=body)).json())

    def schedules(self) -> list[ScheduleView]:
        return self._get(ScheduleList, "/schedules").items

    def get_schedule(self, name: str) -> ScheduleView:
        return self._get(ScheduleView, f"/schedules/{name}")

    def delete_schedule(self, name: str) -> ScheduleRemoved:
        return ScheduleRemoved.model_validate(_check(self.http.delete(f"/schedules/{name}")).json())

    def queues(self) -> Queues:
        return self._get(Queues, "/queues")

    def workers(self) -> list[WorkerInfo]:
        return self._get(Workers, "/workers").workers

    def health(self) -> Health:
        """The health answer, also when Redis is down (status 'unavailable')."""
        resp = self.http.get("/health")
        if resp.status_code not in (200, 503):
            _check(resp)
        return Health.model_validate(resp.json())


class AsyncClient:
    """The same calls as `Client`, awaited. `async with AsyncClient(...) as c: ...`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def _get(self, model: type[M], path: str, **params: Any) -> M:
        resp = _check(await self.http.get(path, params={k: v for k, v in params.items() if v is not None}))
        return model.model_validate(resp.json())

    async def _post(self, model: type[M], path: str) -> M:
        return model.model_validate(_check(await self.http.post(path)).json())

    async def submit(
        self,
        description: str,
        *,
        priority: int = 5,
        planner: str | None = None,
        metadata: dict[str, Any] | None = None,
        subtasks: Sequence[SubtaskSpec | dict[str, Any]] | None = None,
        agent: str | None = None,
        idempotency_key: str | None = None,
        limits: Sequence[str] | None = None,
        run_at: datetime | str | None = None,
        delay_s: float | None = None,
    ) -> SubmitResponse:
        """`run_at` (an aware datetime or ISO 8601 text with its zone) or `delay_s`: start no
        earlier than then (docs/schedules.md)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = task_body(description, priority, planner, metadata, subtasks, agent, limits, run_at, delay_s)
        resp = _check(await self.http.post("/tasks", json=body, headers=headers))
        return SubmitResponse.model_validate(resp.json())

    async def get_task(self, task_id: str) -> TaskView:
        return await self._get(TaskView, f"/tasks/{task_id}")

    async def list_tasks(
        self, status: str | None = None, offset: int = 0, limit: int = 50, q: str | None = None
    ) -> TaskList:
        return await self._get(TaskList, "/tasks", status=status, offset=offset, limit=limit, q=q)

    async def cancel_task(self, task_id: str) -> CancelResponse:
        return await self._post(CancelResponse, f"/tasks/{task_id}/cancel")

    async def events(
        self, task_id: str | None = None, after: str | None = None, *, follow: bool = False
    ) -> AsyncIterator[Event]:
        """As `Client.events`: a task's stream ends after its final event unless `follow`."""
        timeout = httpx.Timeout(30, read=None)
        params = _stream_params(after, follow)
        async with self.http.stream("GET", _events_path(task_id), params=params, timeout=timeout) as r:
            if r.status_code >= 400:
                await r.aread()
                _check(r)
            parser = SSEParser()
            async for line in r.aiter_lines():
                ev = parser.feed(line)
                if ev is not None:
                    yield ev

    async def wait(self, task_id: str, timeout: float = 300.0) -> TaskView:  # noqa: ASYNC109 (same API as Client)
        """Wait until the task finishes or stalls (via its event stream); raises TimeoutError."""
        view = await self.get_task(task_id)
        after: str | None = None
        try:
            async with asyncio.timeout(timeout):
                while view.status not in TERMINAL_TASK_STATUSES and not view.stalled:
                    stream = self.events(task_id, after)
                    try:
                        async for ev in stream:
                            after = ev.id
                            if is_done(ev, task_id):
                                break
                    finally:
                        await stream.aclose()  # type: ignore[attr-defined]
                    view = await self.get_task(task_id)  # the stream ended: the outcome, or a revival
        except TimeoutError:
            raise TimeoutError(f"task {task_id!r} did not finish within {timeout} s") from None
        return view

    async def job(self, job_id: str) -> JobRecord:
        return await self._get(JobRecord, f"/jobs/{job_id}")

    async def job_history(self, job_id: str) -> list[Event]:
        return (await self._get(JobHistory, f"/jobs/{job_id}/history")).events

    async def signal(self, job_id: str, name: str, data: Any = None) -> SignalSent:
        path = f"/jobs/{job_id}/signals/{name}"
        resp = await self.http.post(path, content=json.dumps(data), headers=JSON_BODY)
        return SignalSent.model_validate(_check(resp).json())

    async def output(self, job_id: str) -> JobOutput:
        return await self._get(JobOutput, f"/jobs/{job_id}/output")

    async def dlq(self, offset: int = 0, limit: int = 50) -> list[JobRecord]:
        return (await self._get(DeadLetters, "/dlq", offset=offset, limit=limit)).items

    async def retry_dead(self, job_id: str) -> JobAction:
        return await self._post(JobAction, f"/dlq/{job_id}/retry")

    async def discard_dead(self, job_id: str) -> JobAction:
        return await self._post(JobAction, f"/dlq/{job_id}/discard")

    async def vanished(self, limit: int = 100) -> VanishedJobs:
        return await self._get(VanishedJobs, "/vanished", limit=limit)

    async def recover(self, job_id: str) -> JobAction:
        """Put a vanished job back where it belongs (one delivery counted)."""
        return await self._post(JobAction, f"/jobs/{job_id}/recover")

    async def put_schedule(self, name: str, cron: str, task: dict[str, Any], tz: str = "UTC") -> ScheduleView:
        body = {"cron": cron, "tz": tz, "task": task}
        return ScheduleView.model_validate(
            _check(await self.http.put(f"/schedules/{name}", json=body)).json()
        )

    async def schedules(self) -> list[ScheduleView]:
        return (await self._get(ScheduleList, "/schedules")).items

    async def get_schedule(self, name: str) -> ScheduleView:
        return await self._get(ScheduleView, f"/schedules/{name}")

    async def delete_schedule(self, name: str) -> ScheduleRemoved:
        return ScheduleRemoved.model_validate(_check(await self.http.delete(f"/schedules/{name}")).json())

    async def queues(self) -> Queues:
        return await self._get(Queues, "/queues")

    async def workers(self) -> list[WorkerInfo]:
        return (await self._get(Workers, "/workers")).workers

    async def health(self) -> Health:
        resp = await self.http.get("/health")
        if resp.status_code not in (200, 503):
            _check(resp)
        return Health.model_validate(resp.json())
