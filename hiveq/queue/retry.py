"""retry: a failed job is retried with backoff or dead-lettered (fail.lua); a dead letter can be
retried (retry_dead.lua) or discarded (discard_dead.lua); an undecodable job is quarantined
(quarantine.lua)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hiveq.contract.errors import Code, Conflict, NotFound
from hiveq.queue.broker import Broker


@dataclass(frozen=True)
class Failure:
    job_id: str
    token: str
    error: str
    fatal: bool = False  # True: dead-letter now, no retries


async def fail(b: Broker, worker_id: str, failures: Sequence[Failure]) -> list[Code]:
    if not failures:
        return []
    s, k = b.settings, b.keys
    args: list[object] = [worker_id, int(s.retry.backoff_base_s * 1000), int(s.retry.backoff_max_s * 1000)]
    for f in failures:
        args += [f.job_id, f.token, f.error[:2000], "fatal" if f.fatal else "retry", random.random()]
    res = await b.run("fail", [k.leases, k.delayed, k.stats], args)
    return [Code(int(c)) for c in res]


async def quarantine(b: Broker, worker_id: str, job_id: str, token: str, reason: str) -> Code:
    k = b.keys
    res = await b.run("quarantine", [k.leases, k.quarantine], [worker_id, job_id, token, reason[:2000]])
    return Code(int(res[0]))


def _check(code: int, job_id: str, action: str) -> None:
    if code == Code.NOT_FOUND:
        raise NotFound("job", job_id)
    if code == Code.WRONG_STATE:
        raise Conflict(
            f"job {job_id!r} cannot be {action}: it is not dead-lettered or quarantined "
            "(or its task was cancelled); see `hiveq trace` for its history"
        )


async def retry_dead(b: Broker, job_id: str, who: str) -> None:
    """Put a dead-lettered job back in its queue and revive its task."""
    k = b.keys
    res = await b.run("retry_dead", [k.dead, k.quarantine, k.cancelled, k.blocked], [job_id, who])
    _check(int(res[0]), job_id, "retried")


async def discard_dead(b: Broker, job_id: str, who: str) -> None:
    """Mark a dead letter handled: it moves to cancelled and its task's retention starts."""
    k = b.keys
    res = await b.run("discard_dead", [k.dead, k.quarantine, k.cancelled], [job_id, who])
    _check(int(res[0]), job_id, "discarded")
