"""The shapes the HTTP API answers with: a task as a user sees it, lists, health, errors.

The SDK parses answers into these same classes, so a client and the server cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hiveq.contract.models import Event, JobRecord, JobWait, QueueDepth, WorkerInfo
from hiveq.contract.states import JobState, TaskStatus


class Progress(BaseModel):
    done: int
    total: int
    fraction: float


class SubtaskView(BaseModel):
    id: str = Field(description="subtask id within the task")
    job_id: str
    agent: str
    title: str | None = None
    state: JobState
    depends_on: list[str] = Field(default_factory=list)
    attempts: int = 0
    worker: str | None = None
    result: Any = None
    error: str | None = None
    reason: str | None = None
    progress: float | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    parent: str | None = Field(default=None, description="the subtask that spawned this one at run time")
    wait: JobWait | None = Field(default=None, description="what a suspended subtask waits for")


class Problem(BaseModel):
    """Something that keeps a task from finishing by itself: today, a vanished subtask."""

    kind: str = Field(description="vanished: the job left hiveq's places without a hiveq step")
    job_id: str
    task_id: str
    subtask_id: str
    key: str | None = Field(default=None, description="the place (Redis key) it left")
    seen_ms: int | None = Field(default=None, description="when the conservation watch saw it")
    message: str = Field(description="what happened: the key, the cause and the suspect")
    suspect: str | None = Field(default=None, description="who took it, as far as Redis can tell")
    fix: str = Field(description="what to do")


class TaskSummary(BaseModel):
    """A task in a list: its record and progress, without its subtasks."""

    id: str
    description: str
    priority: int
    planner: str
    status: TaskStatus
    progress: Progress
    stalled: bool = Field(
        default=False,
        description="a subtask vanished: the task cannot finish until it is recovered "
        "(`hiveq recover`, POST /jobs/{job_id}/recover) or cancelled; `problems` says which",
    )
    created_ms: int | None = None
    finished_ms: int | None = None
    run_at_ms: int | None = Field(
        default=None, description="when its ready subtasks were due to start (run_at / delay_s)"
    )
    schedule: str | None = Field(default=None, description="the schedule that fired it, if any")


class TaskView(TaskSummary):
    plan_note: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    subtasks: list[SubtaskView] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    error: str | None = Field(
        default=None, description="why the task failed: the first dead subtask's reason"
    )
    result: Any = Field(
        default=None,
        description="when succeeded: {final: the sink subtask's result (or {id: result} for several "
        "sinks), sinks: [ids], subtasks: {id: result}}",
    )


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
    total: int = Field(description="tasks that match the filters (every task without one)")
    total_exact: bool = Field(
        default=True,
        description="false when a search (`q`) stopped at its bound: `total` is then a lower bound",
    )
    items: list[TaskSummary]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent on the last page"
    )


class CancelResponse(BaseModel):
    task_id: str
    cancelled: int = Field(description="how many jobs were cancelled")


class JobHistory(BaseModel):
    job_id: str
    events: list[Event]


class DeadLetters(BaseModel):
    total: int = Field(description="every dead-lettered and quarantined job, not only this page")
    items: list[JobRecord] = Field(description="newest first, each with its last traceback")


class SignalSent(BaseModel):
    job_id: str
    name: str
    delivered: bool = Field(description="true: the job was waiting for this signal and resumes now")
    pending: int = Field(description="signals kept for the job that no wait has received yet")


class JobOutput(BaseModel):
    """A job's streamed output as kept (the last HIVEQ_MAX_OUTPUT_BYTES), and the event stream
    position it is complete up to: `output` events after `last_event_id` are not in `text`."""

    job_id: str
    text: str
    bytes: int = Field(description="every byte the agent emitted, including trimmed ones")
    trimmed: int = Field(description="bytes trimmed from the front (a marker line says so in `text`)")
    last_event_id: str


class JobAction(BaseModel):
    job_id: str
    state: JobState


class Throughput(BaseModel):
    """Jobs that finished in each of `len(succeeded)` equal buckets ending at `now_ms`, oldest
    first, counted in Redis from the finish times in the `succeeded` and `dead` sets (a dead
    letter retried since is no longer counted; a task past its retention no longer holds jobs)."""

    now_ms: int
    window_s: float
    bucket_s: float
    succeeded: list[int]
    dead: list[int]


class VanishedJobs(BaseModel):
    """Every vanished job of the namespace (oldest first), as the dashboard's banner shows them."""

    total: int
    items: list[Problem]


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
    status: str = Field(description="ok | degraded | unavailable")
    version: str
    redis: RedisHealth
    namespace: str
    problems: list[str] = Field(
        default_factory=list,
        description="why the namespace is degraded (a full Redis, a foreign value on one of its keys), "
        "each with what to do",
    )


class ScheduleRequest(BaseModel):
    """The body of `PUT /schedules/{name}`: when it fires and the task each tick submits."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        description="5 fields (minute hour day month weekday), 6 with seconds first, or @daily …",
        json_schema_extra={"examples": ["0 9 * * *"]},
    )
    tz: str = Field(default="UTC", description="IANA time zone the cron is read in, e.g. Europe/Berlin")
    task: dict[str, Any] = Field(description="the task each tick submits: a POST /tasks body")


class ScheduleView(BaseModel):
    name: str
    cron: str
    tz: str
    task: dict[str, Any] = Field(description="the task each tick submits (a POST /tasks body)")
    next_run: str | None = Field(default=None, description="next fire time, ISO 8601 in the schedule's zone")
    next_run_ms: int | None = None
    last_fired: str | None = Field(default=None, description="the last tick fired, ISO 8601 in its zone")
    last_fired_ms: int | None = None
    last_task_id: str | None = Field(default=None, description="the task the last tick submitted")
    last_error: str | None = Field(default=None, description="why the last tick submitted no task")
    fired: int = Field(default=0, description="ticks that submitted a task")
    missed: int = Field(default=0, description="ticks skipped by the catch-up policy after an outage")
    firing: str | None = Field(default=None, description="the process firing it right now, if any")
    created_ms: int | None = None
    updated_ms: int | None = None


class ScheduleList(BaseModel):
    items: list[ScheduleView]


class ScheduleRemoved(BaseModel):
    name: str
    removed: bool = True
