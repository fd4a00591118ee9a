"""aggregate: a task as a user sees it, assembled from its record and its subtasks' jobs.

The task's status is derived inside Redis by the scripts (fan-in); this module only reads and
shapes: each subtask's state, attempts, worker, result or error, and the final result.
"""

from __future__ import annotations

from typing import Any

from hiveq.contract.models import JobRecord, TaskRecord
from hiveq.contract.protocol import task_of
from hiveq.contract.states import JobState, TaskStatus
from hiveq.contract.timing import SCHEDULE_META
from hiveq.contract.views import Problem, Progress, SubtaskView, TaskSummary, TaskView
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.vanish import RECOVER_HINT, vanished_ids


def subtask_view(j: JobRecord) -> SubtaskView:
    return SubtaskView(
        id=j.subtask_id,
        job_id=j.id,
        agent=j.agent,
        title=j.title,
        state=j.state,
        depends_on=j.depends_on,
        attempts=j.attempts,
        worker=j.worker,
        result=j.result,
        error=j.error,
        reason=j.reason,
        progress=j.progress,
        started_ms=j.started_ms,
        finished_ms=j.finished_ms,
        parent=j.parent,
        wait=j.wait,
    )


def final_result(jobs: list[JobRecord]) -> dict[str, Any]:
    """Sinks are the subtasks nothing depends on: their results are the task's answer. A subtask
    spawned at run time reports to its parent (docs/durable.md), so it is never a sink itself."""
    sinks = [j for j in jobs if not j.dependents and not j.parent]
    final = sinks[0].result if len(sinks) == 1 else {j.subtask_id: j.result for j in sinks}
    return {
        "final": final,
        "sinks": [j.subtask_id for j in sinks],
        "subtasks": {j.subtask_id: j.result for j in jobs},
    }


def problem(j: JobRecord) -> Problem:
    """A vanished job as a problem of its task: what was seen and what to do."""
    return Problem(
        kind=JobState.VANISHED.value,
        job_id=j.id,
        task_id=j.task_id,
        subtask_id=j.subtask_id,
        key=j.vanished_key,
        seen_ms=j.vanished_ms,
        message=j.reason or "vanished: it left hiveq's places without a hiveq step",
        suspect=j.suspect,
        fix=RECOVER_HINT.format(job=j.id)
        + (" (its record was rebuilt: its input was lost with it)" if j.rebuilt else ""),
    )


async def stalled_tasks(b: Broker) -> set[str]:
    """Tasks with a vanished subtask (the vanished place is small: it is read whole)."""
    return {task_of(j) for j in await vanished_ids(b, 100_000)}


def summary(t: TaskRecord, stalled: bool = False) -> TaskSummary:
    return TaskSummary(**_summary_fields(t), stalled=stalled)


def _summary_fields(t: TaskRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "description": t.description,
        "priority": t.priority,
        "planner": t.planner,
        "status": t.status,
        "progress": Progress(done=t.succeeded, total=t.total, fraction=t.progress),
        "created_ms": t.created_ms,
        "finished_ms": t.finished_ms,
        "run_at_ms": t.run_at_ms,
        "schedule": schedule_of(t.metadata),
    }


def schedule_of(metadata: dict[str, Any]) -> str | None:
    """The schedule that fired a task: `metadata.schedule`, set by the firing (hiveq/schedule/)."""
    name = metadata.get(SCHEDULE_META)
    return name if isinstance(name, str) else None


async def task_view(b: Broker, task_id: str) -> TaskView:
    """Raises NotFound for an unknown (or expired) task id."""
    task = await inspect.get_task(b, task_id)
    return view_of(task, await inspect.get_jobs(b, task.job_ids))


def view_of(task: TaskRecord, jobs: list[JobRecord]) -> TaskView:
    """A task and its jobs as the user sees them, from Redis or from the archive alike."""
    dead = [j for j in jobs if j.state in (JobState.DEAD, JobState.QUARANTINED)]
    problems = [problem(j) for j in jobs if j.state == JobState.VANISHED]
    return TaskView(
        **_summary_fields(task),
        stalled=bool(problems),
        plan_note=task.plan_note,
        metadata=task.metadata,
        subtasks=[subtask_view(j) for j in jobs],
        problems=problems,
        error=(f"subtask {dead[0].subtask_id!r}: {dead[0].reason or dead[0].error}" if dead else None),
        result=final_result(jobs) if task.status == TaskStatus.SUCCEEDED else None,
    )
