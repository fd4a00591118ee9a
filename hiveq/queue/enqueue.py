"""enqueue: persist tasks and their subtasks as jobs in one atomic step (script enqueue.lua)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def _task_payload(b: Broker, sub: TaskSubmission, task_id: str) -> dict[str, Any]:
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


MAX_BATCH_JOBS = 2000


class Coalescer:
    """Concurrent enqueue calls on one broker share script calls.

    While one enqueue call is in flight, the next ones queue up and go together in one call as
    soon as it returns: no added latency for a lone caller, one round trip for many (an API under
    load, a producer with many coroutines).
    """

    def __init__(self, b: Broker) -> None:
        self.b = b
        self.pending: list[tuple[list[dict[str, Any]], asyncio.Future[list[Any]]]] = []
        self.drainer: asyncio.Task[None] | None = None

    async def submit(self, payload: list[dict[str, Any]]) -> list[Any]:
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.pending.append((payload, fut))
        if self.drainer is None:
            self.drainer = asyncio.create_task(self._drain(), name="hiveq-enqueue")
        return await fut

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch: list[tuple[list[dict[str, Any]], asyncio.Future[list[Any]]]] = []
                size = 0
                while self.pending and (not batch or size + len(self.pending[0][0]) <= MAX_BATCH_JOBS):
                    item = self.pending.pop(0)
                    batch.append(item)
                    size += sum(len(t["jobs"]) for t in item[0])
                await self._send(batch)
        finally:
            self.drainer = None

    async def _send(self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[list[Any]]]]) -> None:
        k = self.b.keys
        tasks = [t for payload, _ in batch for t in payload]
        try:
            res = await self.b.run(
                "enqueue",
                [k.seq, k.jobs, k.tasks, k.blocked, k.agents, k.stats, k.events],
                [dumps(tasks), self.b.settings.retention_s, self.b.identity],
            )
        except Exception as exc:  # every caller in the batch gets the error
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        at = 0
        for payload, fut in batch:
            n = 2 * len(payload)
            if not fut.done():
                fut.set_result(list(res[at : at + n]))
            at += n


def coalescer(b: Broker) -> Coalescer:
    c = b.extensions.get("enqueue")
    if not isinstance(c, Coalescer):
        c = b.extensions["enqueue"] = Coalescer(b)
    return c


async def enqueue(
    b: Broker, submissions: Sequence[TaskSubmission], task_ids: Sequence[str] | None = None
) -> list[Enqueued]:
    """Enqueue whole tasks atomically. Validates every graph first; concurrent calls share a
    round trip (see `Coalescer`)."""
    ids = list(task_ids) if task_ids else [new_task_id() for _ in submissions]
    payload = [_task_payload(b, sub, tid) for sub, tid in zip(submissions, ids, strict=True)]
    res = await coalescer(b).submit(payload)
    out = []
    for i, task in enumerate(payload):
        tid, code = res[2 * i], int(res[2 * i + 1])
        jobs = task["jobs"]
        if code == Code.DUPLICATE:
            out.append(Enqueued(task_id=tid, job_ids=[], duplicate=True))
        else:
            out.append(Enqueued(task_id=tid, job_ids=[str(j["id"]) for j in jobs], duplicate=False))
    return out
