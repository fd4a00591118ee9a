"""Wire and record models: what a client sends, what Redis holds, what readers get back.

Job records are Redis hashes (one field per attribute, changed only by scripts); these models
validate data on the way in (`SubtaskSpec`, `TaskSubmission`) and decode it on the way out
(`JobRecord`, `TaskRecord`, `Event`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hiveq.contract.lease import Lease
from hiveq.contract.limit_rules import MAX_ESTIMATE_TOKENS, MAX_JOB_LIMITS, check_limit_key
from hiveq.contract.limits import (
    DEFAULT_PRIORITY,
    MAX_ATTEMPTS_BOUND,
    MAX_DELAY_S,
    MAX_TIMEOUT_S,
    MAX_TITLE_CHARS,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Limits,
)
from hiveq.contract.protocol import AGENT_PATTERN, SUBTASK_ID_PATTERN
from hiveq.contract.states import JobState, TaskStatus

DEFAULT_AGENT = "demo"  # the agent that template and llm planned subtasks use
DEFAULT_PLANNER = "template"


def _concrete_limit_keys(v: list[str]) -> list[str]:
    return [check_limit_key(k, concrete=True) for k in v]


# Limit keys a submit names (docs/limits.md): each checked as a concrete key, not a pattern.
LimitKeys = Annotated[list[str], AfterValidator(_concrete_limit_keys)]


class SubtaskSpec(BaseModel):
    """One unit of agent work inside a task, as a planner or client describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SUBTASK_ID_PATTERN, description="Unique within the task: 1-64 of A-Z a-z 0-9 _ -")
    agent: str = Field(pattern=AGENT_PATTERN, description="Name of a registered agent, e.g. 'demo' or 'llm'")
    input: Any = Field(default=None, description="JSON input handed to the agent")
    depends_on: list[str] = Field(default_factory=list, description="ids of subtasks to wait for")
    priority: int | None = Field(
        default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="1 most urgent; default: the task's"
    )
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_BOUND)
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S)
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    limits: LimitKeys = Field(
        default_factory=list,
        max_length=MAX_JOB_LIMITS,
        description="limit keys this job runs under, e.g. ['tenant:acme', 'model:gpt-4o'] (docs/limits.md)",
    )
    estimate_tokens: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ESTIMATE_TOKENS,
        description="tokens this job is expected to use: reserved at claim against token limits and budgets",
    )


class TaskSubmission(BaseModel):
    """A task ready to enqueue: the client's request plus the planner's subtasks."""

    model_config = ConfigDict(extra="forbid")

    description: str
    priority: int = Field(default=DEFAULT_PRIORITY, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    planner: str = DEFAULT_PLANNER
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)
    subtasks: list[SubtaskSpec]
    plan_note: str | None = None  # e.g. why the llm planner fell back to the template planner
    # When its ready jobs may start (contract/timing.py): at most one is set; neither: at once.
    run_at_ms: int | None = None  # absolute, ms since the epoch
    delay_ms: int | None = Field(default=None, ge=0)  # from the enqueue, on Redis time

    limits: LimitKeys = Field(default_factory=list, max_length=MAX_JOB_LIMITS)


class AttemptTraceback(BaseModel):
    """The traceback of one failed attempt whose agent raised (bounded: contract/limits.py)."""

    attempt: int | None = None  # the delivery it happened on
    failure: int | None = None  # the job's failure count after it
    ts: int | None = None  # Redis ms
    worker: str | None = None
    error: str = ""
    traceback: str = ""


class JobWait(BaseModel):
    """What a suspended job waits for (docs/durable.md)."""

    kind: str = Field(description="children | signal")
    step: str = Field(description="the wait's step key: what it receives is stored under it")
    name: str | None = Field(default=None, description="the signal's name (kind signal)")
    children: list[str] = Field(default_factory=list, description="subtask ids waited for (kind children)")
    deadline_ms: int | None = Field(default=None, description="when a signal wait times out")
    since_ms: int | None = None


class ChildOutcome(BaseModel):
    """How one child of a `ctx.wait_for` ended."""

    job_id: str
    subtask_id: str
    state: JobState
    result: Any = None
    error: str | None = None  # the reason it is dead, cancelled or quarantined


class JobRecord(BaseModel):
    """A job as read back from its hash (and, where read with them, its tracebacks)."""

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
    parent: str | None = Field(default=None, description="the subtask that spawned this one at run time")
    children: list[str] = Field(default_factory=list, description="subtasks this one spawned")
    wait: JobWait | None = Field(default=None, description="what a suspended job waits for")
    output_bytes: int = Field(default=0, description="bytes of output the agent emitted (kept or trimmed)")
    tracebacks: list[AttemptTraceback] = Field(
        default_factory=list,
        description="the agent's traceback of each of the last failed attempts, oldest first "
        "(filled by GET /jobs/{id} and the dead-letter list; empty in task views)",
    )
    # Set while (or after) the job was vanished: the place key it left, when the watch saw it,
    # the one-line suspect, and whether its record had to be rebuilt (deleted or evicted).
    vanished_key: str | None = None
    vanished_ms: int | None = None
    suspect: str | None = None
    rebuilt: bool = False
    limits: list[str] = Field(default_factory=list, description="the job's limit keys (docs/limits.md)")
    estimate_tokens: int | None = None


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
    run_at_ms: int | None = None  # when its ready jobs were due to start (run_at / delay_s)

    @property
    def progress(self) -> float:
        return self.succeeded / self.total if self.total else 0.0


class Event(BaseModel):
    """One custody event: written by the script that made the transition."""

    id: str  # stream id, e.g. "1700000000000-0"; usable as SSE Last-Event-ID
    type: str  # job | task | progress | worker | anomaly | step | signal | output | limit | late | data_loss
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
    agent: str | None = None  # on claims (waiting -> active)
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
    worker_id: str  # who claimed it (the claim's caller; not in the script's reply)
    lease_deadline_ms: int
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    dependency_results: dict[str, Any] = Field(default_factory=dict)
    raw_input: str | None = None  # set when `input` could not be decoded
    limit_fail: str | None = None  # a spent budget whose rule says on_exhausted=fail: why

    @cached_property
    def lease(self) -> Lease:
        """What heartbeat, progress, complete, fail, quarantine and release take back."""
        return Lease(self.id, self.token, self.worker_id, self.attempt)


class TaskRequest(BaseModel):
    """A task as a client submits it (the body of `POST /tasks`)."""

    model_config = ConfigDict(extra="forbid")

    # The bounds are checked in submit (with messages that say what to do); documented here.
    description: str = Field(
        description="What to do, in plain words; stored and returned as text",
        json_schema_extra={"minLength": 1, "maxLength": Limits.max_description_chars, "pattern": "\\S"},
    )
    priority: int = Field(
        default=DEFAULT_PRIORITY,
        ge=PRIORITY_MIN,
        le=PRIORITY_MAX,
        description="1 is the most urgent, 10 the least",
    )
    planner: str | None = Field(
        default=None,
        description="template | explicit | llm; default: explicit when subtasks are given, "
        "else the server's default planner",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free JSON kept with the task")
    subtasks: list[SubtaskSpec] | None = Field(
        default=None, description="For the explicit planner: the subtasks with their depends_on"
    )
    agent: str | None = Field(
        default=DEFAULT_AGENT, description="The agent that template and llm planned subtasks use"
    )
    run_at: str | None = Field(
        default=None,
        description="Start no earlier than this ISO 8601 time, which must carry its zone "
        "(e.g. 2026-12-01T09:00:00+01:00 or …Z); a past time starts at once. Not with delay_s",
        json_schema_extra={"format": "date-time"},
    )
    delay_s: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DELAY_S,
        allow_inf_nan=False,
        strict=True,  # a number: true/false or "5" are refused, not read as 1/0/5
        description="Start no earlier than this many seconds after the submit (at most 366 days). "
        "Not with run_at",
    )
    limits: LimitKeys = Field(
        default_factory=list,
        max_length=MAX_JOB_LIMITS,
        description="limit keys for every subtask of the task (added to each subtask's own)",
    )


class Plan(BaseModel):
    """What a planner made of a request: the subtask graph, and a note (e.g. why it fell back)."""

    planner: str
    subtasks: list[SubtaskSpec]
    note: str | None = None


class WorkerInfo(BaseModel):
    id: str
    host: str = ""
    pid: int = 0
    client: str = ""  # Redis client address of the worker's connection, as CLIENT LIST shows it
    client_id: str = ""
    agents: list[str] = []
    version: str = ""
    concurrency: int = 0
    running: int = 0
    started_ms: int = 0
    last_heartbeat_ms: int = 0


class QueueDepth(BaseModel):
    agent: str
    waiting: int
    by_priority: dict[int, int]
    oldest_age_ms: int | None
