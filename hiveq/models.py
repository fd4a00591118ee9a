"""Wire and record models: what a client sends, what Redis holds, what readers get back.

Job records are Redis hashes (one field per attribute, changed only by scripts); these models
validate data on the way in (`SubtaskSpec`, `TaskSubmission`) and decode it on the way out
(`JobRecord`, `TaskRecord`, `Event`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hiveq.states import JobState, TaskStatus

WIRE_VERSION = 1
SUBTASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
AGENT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
AGENT_RE = re.compile(AGENT_PATTERN)
# What a pattern means, for error messages (pydantic checks patterns in Rust, which is several
# times cheaper than a Python validator; the API shows these words instead of the regex).
PATTERN_RULES = {
    SUBTASK_ID_PATTERN: "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
    AGENT_PATTERN: "must be 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
}


def new_task_ids(n: int) -> list[str]:
    """`n` task ids ("t" + 16 hex digits) from one read of the OS random source, not one each."""
    text = secrets.token_hex(8 * n)
    return ["t" + text[i : i + 16] for i in range(0, 16 * n, 16)]


def job_id_for(task_id: str, subtask_id: str) -> str:
    return f"{task_id}.{subtask_id}"


class SubtaskSpec(BaseModel):
    """One unit of agent work inside a task, as a planner or client describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SUBTASK_ID_PATTERN, description="Unique within the task: 1-64 of A-Z a-z 0-9 _ -")
    agent: str = Field(pattern=AGENT_PATTERN, description="Name of a registered agent, e.g. 'demo' or 'llm'")
    input: Any = Field(default=None, description="JSON input handed to the agent")
    depends_on: list[str] = Field(default_factory=list, description="ids of subtasks to wait for")
    priority: int | None = Field(default=None, ge=1, le=10, description="1 most urgent; default: the task's")
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    timeout_s: float | None = Field(default=None, gt=0, le=86400)
    title: str | None = Field(default=None, max_length=200)


class TaskSubmission(BaseModel):
    """A task ready to enqueue: the client's request plus the planner's subtasks."""

    model_config = ConfigDict(extra="forbid")

    description: str
    priority: int = Field(default=5, ge=1, le=10)
    planner: str = "template"
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)
    subtasks: list[SubtaskSpec]
    plan_note: str | None = None  # e.g. why the llm planner fell back to the template planner


class JobRecord(BaseModel):
    """A job as read back from its hash."""

    id: str
    task_id: str
    subtask_id: str
    agent: str
    state: JobState
    priority: int
    input: Any = None
    depends_on: list[str] = Field(default_factory=list)
    dependents: list[str] = Field(default_factory=list)
    pending_deps: int = 0
    attempts: int = 0  # deliveries: how many times a worker claimed it
    failures: int = 0
    max_attempts: int = 3
    max_deliveries: int = 5
    timeout_s: float = 600.0
    title: str | None = None
    worker: str | None = None
    lease_deadline_ms: int | None = None
    due_ms: int | None = None
    created_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    result: Any = None
    error: str | None = None
    reason: str | None = None
    progress: float | None = None
    progress_message: str | None = None


class TaskRecord(BaseModel):
    id: str
    description: str
    priority: int
    planner: str
    status: TaskStatus
    metadata: dict[str, Any] = Field(default_factory=dict)
    job_ids: list[str] = Field(default_factory=list)
    total: int = 0
    succeeded: int = 0
    dead: int = 0
    cancelled: int = 0
    created_ms: int | None = None
    finished_ms: int | None = None
    plan_note: str | None = None
    idempotency_key: str | None = None

    @property
    def progress(self) -> float:
        return self.succeeded / self.total if self.total else 0.0


class Event(BaseModel):
    """One custody event: written by the script that made the transition."""

    id: str  # stream id, e.g. "1700000000000-0"; usable as SSE Last-Event-ID
    type: str  # job | task | progress | worker
    ts: int
    job: str | None = None
    task: str | None = None
    frm: str | None = Field(default=None, alias="from")
    to: str | None = None
    worker: str | None = None
    host: str | None = None
    pid: int | None = None
    client: str | None = None
    attempt: int | None = None
    reason: str | None = None
    data: Any = None

    model_config = ConfigDict(populate_by_name=True)


class ClaimedJob(BaseModel):
    """What a claim hands a worker: the job, its lease and everything its agent needs."""

    id: str
    task_id: str
    subtask_id: str
    agent: str
    input: Any = None
    priority: int
    attempt: int
    max_attempts: int
    timeout_s: float
    token: str
    lease_deadline_ms: int
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    dependency_results: dict[str, Any] = Field(default_factory=dict)
    enqueued_ms: int | None = None
    raw_input: str | None = None  # set when `input` could not be decoded
