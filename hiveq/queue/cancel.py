"""cancel: cancel a task (everything not finished) or one job and its dependents (cancel.lua)."""

from __future__ import annotations

from hiveq.contract.errors import Code, Conflict, NotFound
from hiveq.queue.broker import Broker


async def _cancel(b: Broker, task_id: str, job_id: str, reason: str) -> int:
    res = await b.run("cancel", [task_id, job_id, reason])
    code, n = int(res[0]), int(res[1])
    kind, ident = ("task", task_id) if task_id else ("job", job_id)
    if code == Code.NOT_FOUND:
        raise NotFound(kind, ident)
    if code == Code.WRONG_STATE:
        raise Conflict(f"{kind} {ident!r} has already finished; only unfinished work can be cancelled")
    return n


async def cancel_task(b: Broker, task_id: str, reason: str = "cancelled by user") -> int:
    """Returns how many jobs were cancelled."""
    return await _cancel(b, task_id, "", reason)


async def cancel_job(b: Broker, job_id: str, reason: str = "cancelled by user") -> int:
    return await _cancel(b, "", job_id, reason)
