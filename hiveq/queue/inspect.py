"""inspect: read-only views of tasks, jobs, queues and dead letters, decoded into models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from hiveq.contract.errors import NotFound
from hiveq.contract.models import JobRecord, QueueDepth, TaskRecord
from hiveq.contract.protocol import subtask_of
from hiveq.contract.states import PLACE_OF, JobState, TaskStatus
from hiveq.queue.broker import Broker

PRIO_SHIFT = 2**42


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return default if value == {} and isinstance(default, list) else value


def _int(text: str | None) -> int | None:
    return int(float(text)) if text not in (None, "") else None


def decode_job(h: dict[str, str]) -> JobRecord:
    task = h.get("task", "")
    return JobRecord(
        id=h["id"],
        task_id=task,
        subtask_id=h.get("sub", h["id"]),
        agent=h.get("agent", ""),
        state=JobState(h.get("state", "quarantined")),
        priority=int(h.get("prio") or 5),
        input=_json(h.get("input"), None),
        depends_on=[subtask_of(d) for d in _json(h.get("deps"), [])],
        dependents=[subtask_of(d) for d in _json(h.get("dependents"), [])],
        pending_deps=int(h.get("pending") or 0),
        attempts=int(h.get("attempts") or 0),
        failures=int(h.get("failures") or 0),
        max_attempts=int(h.get("max_attempts") or 0),
        max_deliveries=int(h.get("max_deliveries") or 0),
        timeout_s=float(h.get("timeout") or 0),
        title=h.get("title") or None,
        worker=h.get("worker") or None,
        lease_deadline_ms=_int(h.get("deadline")),
        due_ms=_int(h.get("due")),
        created_ms=_int(h.get("created")),
        started_ms=_int(h.get("started")),
        finished_ms=_int(h.get("finished")),
        result=_json(h.get("result"), None),
        error=h.get("error") or None,
        reason=h.get("reason") or None,
        progress=float(h["progress"]) if h.get("progress") else None,
        progress_message=h.get("progress_msg") or None,
    )


def decode_task(h: dict[str, str]) -> TaskRecord:
    return TaskRecord(
        id=h["id"],
        description=h.get("description", ""),
        priority=int(h.get("priority") or 5),
        planner=h.get("planner", ""),
        status=TaskStatus(h.get("status", "queued")),
        metadata=_json(h.get("metadata"), {}),
        job_ids=_json(h.get("jobs"), []),
        total=int(h.get("total") or 0),
        succeeded=int(h.get("succeeded") or 0),
        dead=int(h.get("dead") or 0),
        cancelled=int(h.get("cancelled") or 0),
        created_ms=_int(h.get("created")),
        finished_ms=_int(h.get("finished")),
        plan_note=h.get("plan_note") or None,
        idempotency_key=h.get("idem") or None,
    )


async def get_job(b: Broker, job_id: str) -> JobRecord:
    h = cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.job(job_id))))
    if not h:
        raise NotFound("job", job_id)
    return decode_job(h)


async def get_jobs(b: Broker, job_ids: Sequence[str]) -> list[JobRecord]:
    pipe = b.redis.pipeline(transaction=False)
    for jid in job_ids:
        pipe.hgetall(b.keys.job(jid))
    rows = await b.guard(pipe.execute())
    return [decode_job(h) for h in rows if h]


async def get_task(b: Broker, task_id: str) -> TaskRecord:
    h = cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.task(task_id))))
    if not h:
        raise NotFound("task", task_id)
    return decode_task(h)


async def list_tasks(
    b: Broker, status: TaskStatus | None = None, offset: int = 0, limit: int = 50
) -> tuple[int, list[TaskRecord]]:
    """Newest first. Returns (how many tasks match, the page).

    With a status filter every task's status field is read (in pipelined batches) so that the
    count is exact; the full records are read for the page only.
    """
    if status is None:
        total = int(await b.guard(b.redis.zcard(b.keys.tasks)))
        ids = cast("list[str]", await b.guard(b.redis.zrevrange(b.keys.tasks, offset, offset + limit - 1)))
    else:
        everything = cast("list[str]", await b.guard(b.redis.zrevrange(b.keys.tasks, 0, -1)))
        matching: list[str] = []
        for at in range(0, len(everything), 1000):
            chunk = everything[at : at + 1000]
            pipe = b.redis.pipeline(transaction=False)
            for tid in chunk:
                pipe.hget(b.keys.task(tid), "status")
            statuses = await b.guard(pipe.execute())
            matching += [tid for tid, st in zip(chunk, statuses, strict=True) if st == status.value]
        total, ids = len(matching), matching[offset : offset + limit]
    pipe = b.redis.pipeline(transaction=False)
    for tid in ids:
        pipe.hgetall(b.keys.task(tid))
    rows = await b.guard(pipe.execute())
    return total, [decode_task(h) for h in rows if h]


async def queue_depths(b: Broker) -> list[QueueDepth]:
    agents = sorted(cast("set[str]", await b.guard(b.redis.smembers(b.keys.agents))))
    now_s, now_us = await b.guard(b.redis.time())
    now = now_s * 1000 + now_us // 1000
    out = []
    for agent in agents:
        rows = cast(
            "list[tuple[str, float]]",
            await b.guard(b.redis.zrange(b.keys.queue(agent), 0, -1, withscores=True)),
        )
        by_prio: dict[int, int] = {}
        for _member, score in rows:
            p = int(score) // PRIO_SHIFT
            by_prio[p] = by_prio.get(p, 0) + 1
        oldest = None
        if rows:
            created = await b.guard(b.redis.zmscore(b.keys.jobs, [m for m, _ in rows]))
            stamps = [c for c in created if c is not None]
            oldest = int(now - min(stamps)) if stamps else None
        out.append(QueueDepth(agent=agent, waiting=len(rows), by_priority=by_prio, oldest_age_ms=oldest))
    return out


async def counts(b: Broker) -> dict[str, int]:
    """Jobs per place: waiting (all agents), blocked, delayed, active, succeeded, dead, …"""
    agents = sorted(cast("set[str]", await b.guard(b.redis.smembers(b.keys.agents))))
    pipe = b.redis.pipeline(transaction=True)
    for place in PLACE_OF.values():
        pipe.zcard(b.keys.key(place))
    for a in agents:
        pipe.zcard(b.keys.queue(a))
    pipe.zcard(b.keys.workers)
    res = await b.guard(pipe.execute())
    out = {state.value: int(n) for state, n in zip(PLACE_OF, res, strict=False)}
    out["waiting"] = sum(int(n) for n in res[len(PLACE_OF) : -1])
    out["workers"] = int(res[-1])
    return out


async def stats(b: Broker) -> dict[str, int]:
    h = cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.stats)))
    return {k: int(v) for k, v in h.items()}


async def list_dead(b: Broker, offset: int = 0, limit: int = 50) -> list[JobRecord]:
    """Dead-lettered and quarantined jobs, newest first."""
    dead = await b.guard(b.redis.zrevrange(b.keys.dead, 0, -1, withscores=True))
    quar = await b.guard(b.redis.zrevrange(b.keys.quarantine, 0, -1, withscores=True))
    ids = [m for m, _ in sorted([*dead, *quar], key=lambda r: -r[1])][offset : offset + limit]
    return await get_jobs(b, ids)
