"""enqueue: persist tasks and their subtasks as jobs in one atomic step (script enqueue.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hiveq.codec import dumps, dumps_bounded
from hiveq.errors import Code, ValidationFailed
from hiveq.graph import validate_graph
from hiveq.models import TaskSubmission, job_id_for, new_task_id
from hiveq.queue.broker import Broker


@dataclass(frozen=True)
class Enqueued:
    task_id: str
    job_ids: list[str]
    duplicate: bool  # True: an earlier task had the same idempotency key; task_id is that one


def _task_payload(b: Broker, sub: TaskSubmission, task_id: str) -> dict[str, object]:
    s = b.settings
    if not sub.description.strip():
        raise ValidationFailed("description", "must not be empty")
    if len(sub.description) > s.max_description_chars:
        raise ValidationFailed(
            "description", f"{len(sub.description)} characters is over the limit of {s.max_description_chars}"
        )
    validate_graph(sub.subtasks, s.max_subtasks)
    dependents: dict[str, list[str]] = {st.id: [] for st in sub.subtasks}
    for st in sub.subtasks:
        for dep in dict.fromkeys(st.depends_on):
            dependents[dep].append(job_id_for(task_id, st.id))
    jobs = []
    for i, st in enumerate(sub.subtasks):
        deps = [job_id_for(task_id, d) for d in dict.fromkeys(st.depends_on)]
        jobs.append({
            "id": job_id_for(task_id, st.id),
            "sub": st.id,
            "agent": st.agent,
            "input": dumps_bounded(st.input, f"subtasks[{i}].input", s.max_payload_bytes),
            "deps": dumps(deps),
            "dependents": dumps(dependents[st.id]),
            "ndeps": len(deps),
            "prio": st.priority or sub.priority,
            "max_attempts": st.max_attempts or s.max_attempts,
            "max_deliveries": s.max_deliveries,
            "timeout": st.timeout_s or s.job_timeout_s,
            "title": st.title or "",
        })
    return {
        "id": task_id,
        "description": sub.description,
        "priority": sub.priority,
        "planner": sub.planner,
        "metadata": dumps_bounded(sub.metadata, "metadata", s.max_payload_bytes),
        "idem": sub.idempotency_key or "",
        "plan_note": sub.plan_note or "",
        "jobs": jobs,
    }


async def enqueue(
    b: Broker, submissions: Sequence[TaskSubmission], task_ids: Sequence[str] | None = None
) -> list[Enqueued]:
    """Enqueue whole tasks (any number in one round trip). Validates every graph first."""
    ids = list(task_ids) if task_ids else [new_task_id() for _ in submissions]
    payload = [_task_payload(b, sub, tid) for sub, tid in zip(submissions, ids, strict=True)]
    k = b.keys
    res = await b.run(
        "enqueue",
        [k.seq, k.jobs, k.tasks, k.blocked, k.agents, k.stats, k.events],
        [dumps(payload), b.settings.retention_s, b.identity],
    )
    out = []
    for i, task in enumerate(payload):
        tid, code = res[2 * i], int(res[2 * i + 1])
        jobs = task["jobs"]
        assert isinstance(jobs, list)
        if code == Code.DUPLICATE:
            out.append(Enqueued(task_id=tid, job_ids=[], duplicate=True))
        else:
            out.append(Enqueued(task_id=tid, job_ids=[str(j["id"]) for j in jobs], duplicate=False))
    return out
