"""inspect: read-only views of tasks, jobs, queues and dead letters, decoded into models."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from hiveq.contract.errors import NotFound
from hiveq.contract.limits import TRACEBACKS_KEPT
from hiveq.contract.models import AttemptTraceback, JobRecord, JobWait, QueueDepth, TaskRecord
from hiveq.contract.protocol import subtask_of
from hiveq.contract.states import PLACE_OF, JobState, TaskStatus
from hiveq.contract.views import Throughput
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
        parent=subtask_of(h["parent"]) if h.get("parent") else None,
        children=[subtask_of(c) for c in _json(h.get("children"), [])],
        wait=decode_wait(h.get("wait")),
        output_bytes=int(h.get("output_bytes") or 0),
        vanished_key=h.get("vanished_key") or None,
        vanished_ms=_int(h.get("vanished_at")),
        suspect=h.get("suspect") or None,
        rebuilt=h.get("rebuilt") == "1",
        limits=(h.get("limits") or "").split(),
        estimate_tokens=_int(h.get("est")),
    )


def decode_wait(text: str | None) -> JobWait | None:
    """suspend.lua's `wait` field ({kind, step, ids | name, deadline, since}); None when absent or
    not ours."""
    d = _json(text, None)
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
        return None
    ids = d["ids"] if isinstance(d.get("ids"), list) else []
    return JobWait(
        kind=d["kind"],
        step=str(d.get("step") or ""),
        name=d.get("name") if isinstance(d.get("name"), str) else None,
        children=[subtask_of(str(c)) for c in ids],
        deadline_ms=_int(str(d["deadline"])) if d.get("deadline") is not None else None,
        since_ms=_int(str(d["since"])) if d.get("since") is not None else None,
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
        run_at_ms=_int(h.get("run_at")),
    )


def decode_tracebacks(rows: Sequence[str]) -> list[AttemptTraceback]:
    """The entries fail.lua appended; one that is not ours (not such a JSON object) is shown as
    its text, never an error for the reader."""
    out = []
    for row in rows:
        try:
            out.append(AttemptTraceback.model_validate_json(row))
        except ValidationError:
            out.append(AttemptTraceback(traceback=str(row)))
    return out


async def get_job(b: Broker, job_id: str) -> JobRecord:
    """One job with every traceback kept for it (one round trip)."""
    jobs = await get_jobs(b, [job_id], tracebacks=TRACEBACKS_KEPT)
    if not jobs:
        raise NotFound("job", job_id, await why_unknown(b))
    return jobs[0]


async def why_unknown(b: Broker) -> str:
    """Why an id may be unknown: expired, or lost with the data (the namespace epoch's record)."""
    lost_at = await b.guard(b.redis.hget(b.keys.meta, "lost_at"))
    if not lost_at:
        return "it may have expired"
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(lost_at) / 1000))
    return f"it may have expired, or gone when Redis lost this namespace's data at {at}: see `hiveq doctor`"


async def get_jobs(b: Broker, job_ids: Sequence[str], *, tracebacks: int = 0) -> list[JobRecord]:
    """The jobs that exist, in order, each with its newest `tracebacks` tracebacks (up to 8 KB
    each): task views read many jobs and show none of them, the dead-letter list the last one."""
    pipe = b.redis.pipeline(transaction=False)
    for jid in job_ids:
        pipe.hgetall(b.keys.job(jid))
        if tracebacks:
            pipe.lrange(b.keys.job_tracebacks(jid), -tracebacks, -1)
    rows = await b.guard(pipe.execute())
    step = 2 if tracebacks else 1
    out = []
    for at in range(0, len(rows), step):
        if rows[at]:
            job = decode_job(rows[at])
            if tracebacks:
                job.tracebacks = decode_tracebacks(rows[at + 1])
            out.append(job)
    return out


async def get_task(b: Broker, task_id: str) -> TaskRecord:
    h = cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.task(task_id))))
    if not h:
        raise NotFound("task", task_id, await why_unknown(b))
    return decode_task(h)


# A description search (`q`) reads at most the newest SEARCH_MAX_TASKS tasks and stops once it
# has read SEARCH_MAX_BYTES of descriptions, so one search costs at most that many HMGETs and bytes
# whatever the size of the namespace; past either bound its count is a lower bound.
SEARCH_MAX_TASKS = 5000
SEARCH_MAX_BYTES = 8_000_000
SCAN_BATCH = 1000


@dataclass(frozen=True)
class TaskPage:
    total: int  # tasks that match (all tasks without a filter)
    items: list[TaskRecord]
    total_exact: bool = True  # False: a search stopped at its bound; `total` is a lower bound


async def list_tasks(
    b: Broker, status: TaskStatus | None = None, offset: int = 0, limit: int = 50, q: str | None = None
) -> TaskPage:
    """Newest first, optionally only one status and only descriptions that contain `q`
    (case-insensitive). The full records are read for the page only.

    A status filter alone reads every task's status field (pipelined, in batches) so that the
    count is exact; a search is bounded (SEARCH_MAX_TASKS, SEARCH_MAX_BYTES).
    """
    exact = True
    if status is None and not q:
        total = int(await b.guard(b.redis.zcard(b.keys.tasks)))
        ids = cast("list[str]", await b.guard(b.redis.zrevrange(b.keys.tasks, offset, offset + limit - 1)))
    else:
        matching, exact = await _filter(b, status, q)
        total, ids = len(matching), matching[offset : offset + limit]
    pipe = b.redis.pipeline(transaction=False)
    for tid in ids:
        pipe.hgetall(b.keys.task(tid))
    rows = await b.guard(pipe.execute())
    return TaskPage(total, [decode_task(h) for h in rows if h], exact)


async def _filter(b: Broker, status: TaskStatus | None, q: str | None) -> tuple[list[str], bool]:
    """Ids of the tasks that match, newest first, and whether every task was looked at."""
    needle = q.casefold() if q else None
    last = -1 if needle is None else SEARCH_MAX_TASKS  # one more than the bound: was there more?
    everything = cast("list[str]", await b.guard(b.redis.zrevrange(b.keys.tasks, 0, last)))
    exact = needle is None or len(everything) <= SEARCH_MAX_TASKS
    everything = everything[:SEARCH_MAX_TASKS] if needle is not None else everything
    fields = ["status"] if needle is None else ["status", "description"]
    matching: list[str] = []
    read = 0
    for at in range(0, len(everything), SCAN_BATCH):
        if read >= SEARCH_MAX_BYTES:
            return matching, False
        chunk = everything[at : at + SCAN_BATCH]
        pipe = b.redis.pipeline(transaction=False)
        for tid in chunk:
            pipe.hmget(b.keys.task(tid), fields)
        rows: list[list[str | None]] = await b.guard(pipe.execute())
        for tid, row in zip(chunk, rows, strict=True):
            text = (row[1] or "") if needle is not None else ""
            read += len(text)
            if (status is None or row[0] == status.value) and (needle is None or needle in text.casefold()):
                matching.append(tid)
    return matching, exact


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


THROUGHPUT_BUCKETS = 60


async def throughput(b: Broker, window_s: float = 60.0) -> Throughput:
    """One TIME and one pipeline of 2 × THROUGHPUT_BUCKETS ZCOUNTs (each O(log n)): cheap enough
    to poll every few seconds from every open dashboard."""
    now_s, now_us = await b.guard(b.redis.time())
    now = int(now_s) * 1000 + int(now_us) // 1000
    width = window_s * 1000 / THROUGHPUT_BUCKETS
    edges = [int(now - (THROUGHPUT_BUCKETS - i) * width) for i in range(THROUGHPUT_BUCKETS)] + [now]
    pipe = b.redis.pipeline(transaction=True)
    for key in (b.keys.succeeded, b.keys.dead):
        for lo, hi in itertools.pairwise(edges):
            pipe.zcount(key, f"({lo}", hi)
    counts = [int(n) for n in await b.guard(pipe.execute())]
    return Throughput(
        now_ms=now,
        window_s=window_s,
        bucket_s=window_s / THROUGHPUT_BUCKETS,
        succeeded=counts[:THROUGHPUT_BUCKETS],
        dead=counts[THROUGHPUT_BUCKETS:],
    )


async def list_dead(b: Broker, offset: int = 0, limit: int = 50, tracebacks: int = 1) -> list[JobRecord]:
    """Dead-lettered and quarantined jobs, newest first, each with its last traceback (or none)."""
    return (await dead_letters(b, offset, limit, tracebacks))[1]


async def dead_letters(
    b: Broker, offset: int = 0, limit: int = 50, tracebacks: int = 1
) -> tuple[int, list[JobRecord]]:
    """(How many jobs are dead-lettered or quarantined, one page of them as `list_dead` gives.)
    Both sets are read in one MULTI, so the count and the page are of the same moment."""
    pipe = b.redis.pipeline(transaction=True)
    pipe.zrevrange(b.keys.dead, 0, -1, withscores=True)
    pipe.zrevrange(b.keys.quarantine, 0, -1, withscores=True)
    dead, quar = await b.guard(pipe.execute())
    ids = [m for m, _ in sorted([*dead, *quar], key=lambda r: -r[1])]
    return len(ids), await get_jobs(b, ids[offset : offset + limit], tracebacks=tracebacks)
