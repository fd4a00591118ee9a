"""One status vocabulary for jobs and tasks, and the table of which script moves which edge."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    BLOCKED = "blocked"  # waiting for its dependencies to succeed
    WAITING = "waiting"  # runnable, in its agent's priority queue
    DELAYED = "delayed"  # waiting for a retry backoff to pass, or for its task's run_at
    ACTIVE = "active"  # leased to one worker
    SUSPENDED = "suspended"  # a durable agent waits for its children or a signal, holding no slot
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # dead-lettered: failed max_attempts times or killed its worker max_deliveries times
    CANCELLED = "cancelled"
    QUARANTINED = "quarantined"  # undecodable or malformed; kept with the reason
    VANISHED = "vanished"  # left hiveq's places without a hiveq script; kept until recovered


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED, JobState.QUARANTINED})
PENDING_JOB_STATES = frozenset(
    {JobState.BLOCKED, JobState.WAITING, JobState.DELAYED, JobState.ACTIVE, JobState.SUSPENDED}
)
# A vanished job is neither: its task cannot finish until it is recovered, dead-lettered or cancelled.
TERMINAL_TASK_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# The place (key suffix) that holds the jobs of each state, for every state but waiting, whose
# jobs sit in one queue per agent (`q:<agent>`). docs/protocol.md has the key table.
PLACE_OF: dict[JobState, str] = {
    JobState.BLOCKED: "blocked",
    JobState.DELAYED: "delayed",
    JobState.ACTIVE: "leases",
    JobState.SUSPENDED: "suspended",
    JobState.SUCCEEDED: "succeeded",
    JobState.DEAD: "dead",
    JobState.CANCELLED: "cancelled",
    JobState.QUARANTINED: "quarantine",
    JobState.VANISHED: "vanished",
}
STATE_OF_PLACE: dict[str, JobState] = {place: state for state, place in PLACE_OF.items()}

# (from, to) -> every script that can make that edge (a job event with that `from` and `to`).
# "foreign queue key": the job's q:<agent> holds another Redis type, so the job is quarantined
# instead of waiting. docs/state-machine.mmd draws this; tests check emitted events against it.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (JobState.BLOCKED, JobState.WAITING): "complete (dependency released)",
    (JobState.BLOCKED, JobState.QUARANTINED): "complete (foreign queue key)",
    (JobState.BLOCKED, JobState.CANCELLED): (
        "cancel | fail | quarantine | reap_expired | complete, promote_due, release, retry_dead, "
        "signal, recover (dependency dead, quarantined or cancelled)"
    ),
    (JobState.WAITING, JobState.ACTIVE): "claim",
    (JobState.WAITING, JobState.QUARANTINED): "claim (no job record, or a foreign-typed one)",
    (JobState.WAITING, JobState.CANCELLED): "cancel",
    (JobState.DELAYED, JobState.WAITING): "promote_due (retry backoff elapsed, or run_at reached)",
    (JobState.DELAYED, JobState.QUARANTINED): "promote_due (foreign queue key)",
    (JobState.DELAYED, JobState.CANCELLED): "cancel",
    (JobState.ACTIVE, JobState.ACTIVE): "heartbeat (lease extended, no event)",
    (JobState.ACTIVE, JobState.SUCCEEDED): "complete",
    (JobState.ACTIVE, JobState.DELAYED): "fail",
    (JobState.ACTIVE, JobState.DEAD): "fail | reap_expired",
    (JobState.ACTIVE, JobState.WAITING): "reap_expired | release",
    (JobState.ACTIVE, JobState.QUARANTINED): "quarantine | reap_expired, release (foreign queue key)",
    (JobState.ACTIVE, JobState.CANCELLED): "cancel",
    (JobState.DEAD, JobState.WAITING): "retry_dead",
    (JobState.DEAD, JobState.QUARANTINED): "retry_dead (foreign queue key)",
    (JobState.DEAD, JobState.CANCELLED): "discard_dead",
    (JobState.QUARANTINED, JobState.WAITING): "retry_dead",
    (JobState.QUARANTINED, JobState.QUARANTINED): "retry_dead (foreign queue key)",
    (JobState.QUARANTINED, JobState.CANCELLED): "discard_dead",
    (JobState.CANCELLED, JobState.BLOCKED): "retry_dead (dependency revived)",
    # Durable agents (docs/durable.md): a wait holds no lease; the script that ends it resumes.
    (JobState.ACTIVE, JobState.SUSPENDED): "suspend",
    (JobState.SUSPENDED, JobState.WAITING): (
        "signal | promote_due (wait timed out) | complete, fail, quarantine, reap_expired, cancel, "
        "release, retry_dead, promote_due, signal, recover (children finished)"
    ),
    (JobState.SUSPENDED, JobState.QUARANTINED): (
        "signal, promote_due, complete, fail, quarantine, reap_expired, cancel, release, retry_dead, "
        "recover (resumed into a foreign queue key)"
    ),
    (JobState.SUSPENDED, JobState.CANCELLED): "cancel",
    (JobState.WAITING, JobState.VANISHED): "mark_vanished (taken outside hiveq)",
    (JobState.BLOCKED, JobState.VANISHED): "mark_vanished (taken outside hiveq)",
    (JobState.DELAYED, JobState.VANISHED): "mark_vanished (taken outside hiveq)",
    (JobState.ACTIVE, JobState.VANISHED): "mark_vanished (lease taken outside hiveq)",
    (JobState.SUSPENDED, JobState.VANISHED): "mark_vanished (taken outside hiveq)",
    (JobState.VANISHED, JobState.WAITING): "recover",
    (JobState.VANISHED, JobState.BLOCKED): "recover (dependencies pending)",
    (JobState.VANISHED, JobState.DELAYED): "recover (retry backoff pending)",
    (JobState.VANISHED, JobState.DEAD): "recover (delivery limit reached)",
    (JobState.VANISHED, JobState.CANCELLED): "cancel | recover (dependency dead)",
    (JobState.VANISHED, JobState.QUARANTINED): "recover (foreign queue key)",
}
# A job's first state (its enqueue or spawn event has `from` ""), and the states whose records expire.
ENQUEUED_AS: dict[JobState, str] = {
    JobState.WAITING: "enqueue (no dependencies) | spawn (none on a sibling)",
    JobState.BLOCKED: "enqueue (has dependencies) | spawn (depends on a sibling)",
    JobState.DELAYED: "enqueue (no dependencies, its task's run_at or delay_s ahead)",
}
EXPIRED_FROM: dict[JobState, str] = {
    JobState.SUCCEEDED: "expire_finished",
    JobState.CANCELLED: "expire_finished",
}
