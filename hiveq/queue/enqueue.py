"""enqueue: persist tasks and their subtasks as jobs, each task in one atomic step (enqueue.lua).

A call with many tasks validates and encodes all of them first (a bad task fails the call before
anything is written), then sends them in chunks through the broker's `Coalescer`, so that Redis
runs one chunk while the next is prepared: on a 2-core machine the client and the server work
side by side instead of taking turns.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from hiveq.contract.codec import dumps, dumps_bounded
from hiveq.contract.errors import Code, EnqueueIncomplete, ValidationFailed
from hiveq.contract.limit_rules import MAX_JOB_LIMITS, job_limit_keys
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.contract.protocol import job_prefix, new_task_ids
from hiveq.contract.validate import check_fields, validate_graph
from hiveq.queue.broker import Broker


@dataclass(frozen=True, slots=True)
class Enqueued:
    task_id: str
    job_ids: list[str]
    duplicate: bool  # True: an earlier task had the same idempotency key; task_id is that one


INPUT_FIELD = "subtasks[{}].input"
TaskRow = tuple[Any, ...]  # one task in enqueue.lua's positional form


def _task_payload(b: Broker, sub: TaskSubmission, task_id: str, prechecked: bool) -> TaskRow:
    """One task in enqueue.lua's positional form (see its header); validates as it goes.

    This runs for every task before any is sent, so it is kept lean (a few µs per task). Rows
    are tuples of plain values: the garbage collector stops tracking them after one pass,
    which matters when a producer holds many thousands."""
    limits = b.settings.limits
    if not prechecked:
        check_fields(sub.description, sub.metadata, sub.idempotency_key, limits)
    subtasks = sub.subtasks
    validate_graph(subtasks, limits.max_subtasks)
    prefix = job_prefix(task_id)
    limit = limits.max_payload_bytes
    dependents: dict[str, list[str]] = {}
    for st in subtasks:
        if st.depends_on:
            for dep in dict.fromkeys(st.depends_on):
                dependents.setdefault(dep, []).append(prefix + st.id)
    jobs: list[tuple[Any, ...]] = []
    for i, st in enumerate(subtasks):
        text = dumps_bounded(st.input, partial(INPUT_FIELD.format, i), limit)
        opts = job_options(st, prefix, dependents.get(st.id) if dependents else None, sub.limits)
        jobs.append((st.id, st.agent, text) if opts is None else (st.id, st.agent, text, opts))
    row: TaskRow = (task_id, sub.description, sub.priority, sub.planner, tuple(jobs))
    if sub.metadata or sub.idempotency_key or sub.plan_note or sub.run_at_ms or sub.delay_ms:
        extra = {
            "metadata": dumps(sub.metadata) if sub.metadata else None,  # checked by check_fields
            "idem": sub.idempotency_key,
            "plan_note": sub.plan_note,
            "run_at": sub.run_at_ms,
            "delay": sub.delay_ms,
        }
        row += ({k: v for k, v in extra.items() if v},)
    return row


def job_options(
    st: SubtaskSpec, prefix: str, after: list[str] | None, task_limits: list[str] | None = None
) -> dict[str, Any] | None:
    """The job's values that differ from the call's defaults (enqueue.lua's `opts`), or None."""
    if not (
        st.priority
        or st.max_attempts
        or st.timeout_s
        or st.title
        or st.depends_on
        or after
        or st.limits
        or task_limits
        or st.estimate_tokens
    ):
        return None  # the common case
    keys = job_limit_keys(st.limits, task_limits)
    if len(keys) > MAX_JOB_LIMITS:
        raise ValidationFailed(
            f"subtasks[{st.id}].limits",
            f"{len(keys)} limit keys with the task's; at most {MAX_JOB_LIMITS} a job",
        )
    deps = [prefix + d for d in dict.fromkeys(st.depends_on)]
    opts = {
        "prio": st.priority,
        "max_attempts": st.max_attempts,
        "timeout": st.timeout_s,
        "title": st.title,
        "deps": dumps(deps) if deps else None,
        "dependents": dumps(after) if after else None,
        "ndeps": len(deps) or None,
        "limits": " ".join(keys) or None,
        "est": st.estimate_tokens,
    }
    return {k: v for k, v in opts.items() if v}


MAX_BATCH_JOBS = 2000  # jobs per script call when the coalescer merges waiting chunks
CHUNK_JOBS = 250  # a many-task call is cut into chunks of about this many jobs
JOBS = 4  # index of the job list in a task payload


def _njobs(payload: list[TaskRow]) -> int:
    return sum(len(t[JOBS]) for t in payload)


def _chunks(payload: list[TaskRow]) -> list[list[TaskRow]]:
    out: list[list[TaskRow]] = [[]]
    size = 0
    for task in payload:
        if out[-1] and size + len(task[JOBS]) > CHUNK_JOBS:
            out.append([])
            size = 0
        out[-1].append(task)
        size += len(task[JOBS])
    return out


@dataclass
class _Pending:
    text: str  # the chunk's tasks as JSON array members (no brackets), joined with others' on send
    tasks: int
    jobs: int
    agents: frozenset[str]  # every agent of the enqueue call: its queue keys are checked by each chunk
    done: asyncio.Future[list[Any]]


class Coalescer:
    """Enqueue chunks queue up on one broker and go to Redis one script call at a time.

    While one call is in flight, the next chunks (this caller's, or other coroutines') wait and
    go together in one call as soon as it returns: no added latency for a lone caller, one round
    trip for many, and chunks run in the order they were submitted (FIFO holds across chunks).
    """

    def __init__(self, b: Broker) -> None:
        self.b = b
        self.pending: deque[_Pending] = deque()
        self.busy = False  # a script call is in flight (sent inline or by the drainer task)
        self.drainer: asyncio.Task[None] | None = None

    def _item(self, payload: list[TaskRow], agents: frozenset[str]) -> _Pending:
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        return _Pending(dumps(payload)[1:-1], len(payload), _njobs(payload), agents, done)

    def submit(self, payload: list[TaskRow], agents: frozenset[str]) -> asyncio.Future[list[Any]]:
        """Queue one chunk; the future gets its flat (task id, code) list, or the call's error."""
        item = self._item(payload, agents)
        self.pending.append(item)
        if not self.busy:
            self.busy = True
            self.drainer = asyncio.create_task(self._drain(), name="hiveq-enqueue")
        return item.done

    async def send(self, payload: list[TaskRow], agents: frozenset[str]) -> list[Any]:
        """Send one chunk and wait for its reply. When nothing is in flight the caller sends it
        itself: no drainer task and no extra turn of the event loop for a lone producer."""
        if self.busy:
            return await self.submit(payload, agents)
        self.busy = True
        item = self._item(payload, agents)
        try:
            await self._send([item])
        finally:
            if self.pending:  # others queued up meanwhile: the drainer takes over (still busy)
                self.drainer = asyncio.create_task(self._drain(), name="hiveq-enqueue")
            else:
                self.busy = False
        return item.done.result()

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch = [self.pending.popleft()]
                size = batch[0].jobs
                while self.pending and size + self.pending[0].jobs <= MAX_BATCH_JOBS:
                    batch.append(self.pending.popleft())
                    size += batch[-1].jobs
                await self._send(batch)
        finally:
            self.busy = False

    async def _send(self, batch: list[_Pending]) -> None:
        s = self.b.settings
        agents = frozenset().union(*(p.agents for p in batch))
        try:
            res = await self.b.run(
                "enqueue",
                [
                    "[" + ",".join(p.text for p in batch) + "]",
                    s.retention.retention_s,
                    self.b.identity,
                    s.retry.max_deliveries,
                    s.retry.max_attempts,
                    s.retry.job_timeout_s,
                    *agents,
                ],
            )
        except Exception as exc:  # every caller in the batch gets the error
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            return
        at = 0
        for p in batch:
            if not p.done.done():
                p.done.set_result(list(res[at : at + 2 * p.tasks]))
            at += 2 * p.tasks


def coalescer(b: Broker) -> Coalescer:
    c = b.extensions.get("enqueue")
    if not isinstance(c, Coalescer):
        c = b.extensions["enqueue"] = Coalescer(b)
    return c


async def enqueue(
    b: Broker,
    submissions: Sequence[TaskSubmission],
    task_ids: Sequence[str] | None = None,
    *,
    prechecked: bool = False,
) -> list[Enqueued]:
    """Enqueue whole tasks, each atomically, in order. Every task is validated before any is sent
    (`prechecked`: the caller already ran `check_fields` on each, as `submit` does).

    Raises the Redis error when nothing was enqueued, or `EnqueueIncomplete` (with the tasks
    that were) when Redis failed part-way through a many-chunk call.
    """
    if not submissions:
        return []
    ids = list(task_ids) if task_ids else new_task_ids(len(submissions))
    payload = [_task_payload(b, sub, tid, prechecked) for sub, tid in zip(submissions, ids, strict=True)]
    agents = frozenset(j[1] for t in payload for j in t[JOBS])
    c = coalescer(b)
    chunks = _chunks(payload)
    if len(chunks) == 1:
        answer = await c.send(payload, agents)
        return _confirm(_expected(payload), answer)
    waiting = []
    for i, chunk in enumerate(chunks):
        waiting.append(c.submit(chunk, agents))
        if i + 1 < len(chunks):
            await asyncio.sleep(0)  # the drainer sends this chunk while the next one is encoded
    # While Redis works through the chunks, build the results as if all went in (the usual case).
    expected = [_expected(chunk) for chunk in chunks]
    out: list[Enqueued] = []
    failure: Exception | None = None
    for built, reply in zip(expected, waiting, strict=True):
        try:
            out += _confirm(built, await reply)
        except Exception as exc:
            failure = failure or exc
    if failure is None:
        return out
    if not out:
        raise failure
    raise EnqueueIncomplete(out, len(payload), failure)


def _expected(chunk: list[TaskRow]) -> list[Enqueued]:
    """The chunk's results if every task goes in (built before the reply, while Redis works)."""
    return [
        Enqueued(task_id=t[0], job_ids=[job_prefix(t[0]) + j[0] for j in t[JOBS]], duplicate=False)
        for t in chunk
    ]


def _confirm(built: list[Enqueued], reply: list[Any]) -> list[Enqueued]:
    """Apply the reply, (task id, OK) or (earlier task id, DUPLICATE) per task, to `built`."""
    for i in range(len(built)):
        if int(reply[2 * i + 1]) == Code.DUPLICATE:
            built[i] = Enqueued(task_id=reply[2 * i], job_ids=[], duplicate=True)
    return built
