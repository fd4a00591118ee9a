"""Response bodies of the HTTP API (request bodies are `TaskRequest` and friends)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hiveq.aggregate import TaskSummary
from hiveq.models import Event, JobRecord
from hiveq.queue.inspect import QueueDepth
from hiveq.queue.registry import WorkerInfo
from hiveq.states import JobState, TaskStatus


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class PlannedSubtask(BaseModel):
    id: str
    agent: str
    title: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    priority: int | None = None


class PlanOut(BaseModel):
    planner: str
    note: str | None = None
    subtasks: list[PlannedSubtask]


class Links(BaseModel):
    self: str
    events: str
    cancel: str


class SubmitResponse(BaseModel):
    task_id: str
    status: TaskStatus
    duplicate: bool
    plan: PlanOut
    links: Links


class TaskList(BaseModel):
    total: int
    items: list[TaskSummary]


class CancelResponse(BaseModel):
    task_id: str
    cancelled: int = Field(description="how many jobs were cancelled")


class JobHistory(BaseModel):
    job_id: str
    events: list[Event]


class DeadLetters(BaseModel):
    items: list[JobRecord]


class JobAction(BaseModel):
    job_id: str
    state: JobState


class Queues(BaseModel):
    queues: list[QueueDepth]
    counts: dict[str, int]


class Workers(BaseModel):
    workers: list[WorkerInfo]


class RedisHealth(BaseModel):
    reachable: bool
    version: str | None = None
    latency_ms: float | None = None
    error: str | None = None


class Health(BaseModel):
    status: str = Field(description="ok | unavailable")
    version: str
    redis: RedisHealth
    namespace: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": desc}
    for code, desc in {
        401: "missing or wrong API token",
        404: "unknown id",
        409: "the record's state does not allow this",
        413: "request body too large",
        415: "body is not JSON",
        422: "invalid input: the body names the field and the rule",
        503: "Redis is unreachable",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: ERRORS[c] for c in codes}
