"""The loss report and recovery: what the archive says was accepted and is unfinished, but Redis
no longer holds (a restart without persistence, a failover that lost writes, a flush).

The archive follows the stream within about a second, so after such a loss it still knows every
task accepted up to then. `lost_tasks` lists them by id (the doctor's `data loss` check calls
it); `recover` enqueues them again with the same ids, subtasks and idempotency keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hiveq.archive import query
from hiveq.archive.read import Archive
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import Enqueued, enqueue


@dataclass(frozen=True)
class LostTask:
    task_id: str
    status: str  # as last archived: queued or running
    description: str
    created_ms: int | None
    subtasks: int
    idempotency_key: str | None


async def lost_tasks(b: Broker, archive: Archive) -> list[LostTask]:
    """Accepted tasks that are unfinished in the archive and missing from Redis, oldest first."""
    rows = await archive.call(query.unfinished)
    out: list[LostTask] = []
    for at in range(0, len(rows), 1000):
        chunk = rows[at : at + 1000]
        pipe = b.redis.pipeline(transaction=False)
        for h in chunk:
            pipe.exists(b.keys.task(h["id"]))
        present = await b.guard(pipe.execute())
        for h, there in zip(chunk, present, strict=True):
            if not there:
                t = inspect.decode_task(h)
                out.append(
                    LostTask(t.id, t.status.value, t.description, t.created_ms, t.total, t.idempotency_key)
                )
    return out


async def submission_of(archive: Archive, task_id: str) -> TaskSubmission | None:
    """The task as it was submitted, rebuilt from its archived records."""
    found = await archive.call(query.get_task, task_id)
    if found is None:
        return None
    task = inspect.decode_task(found[0])
    jobs = [inspect.decode_job(h) for h in found[1]]
    return TaskSubmission(
        description=task.description,
        priority=task.priority,
        planner=task.planner,
        metadata=task.metadata,
        idempotency_key=task.idempotency_key,
        plan_note=task.plan_note,
        subtasks=[
            SubtaskSpec(
                id=j.subtask_id,
                agent=j.agent,
                input=j.input,
                depends_on=j.depends_on,
                priority=j.priority if j.priority != task.priority else None,
                max_attempts=j.max_attempts or None,
                timeout_s=j.timeout_s or None,
                title=j.title,
            )
            for j in jobs
        ],
    )


async def recover(b: Broker, archive: Archive, task_ids: Sequence[str]) -> list[Enqueued]:
    """Enqueue the lost tasks again (same ids, subtasks, idempotency keys). A task that Redis
    holds by now is left alone."""
    pipe = b.redis.pipeline(transaction=False)
    for tid in task_ids:
        pipe.exists(b.keys.task(tid))
    present = await b.guard(pipe.execute())
    ids, subs = [], []
    for tid, there in zip(task_ids, present, strict=True):
        sub = None if there else await submission_of(archive, tid)
        if sub is not None and sub.subtasks:
            ids.append(tid)
            subs.append(sub)
    return await enqueue(b, subs, task_ids=ids) if subs else []
