"""retry: a failed job is retried with backoff or dead-lettered (fail.lua); a dead letter can be
retried (retry_dead.lua) or discarded (discard_dead.lua); an undecodable job is quarantined
(quarantine.lua)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hiveq.contract.errors import Code, Conflict, NotFound
from hiveq.contract.lease import Lease, holder
from hiveq.contract.limits import ERROR_MAX_CHARS, TRACEBACK_MAX_BYTES, TRACEBACKS_KEPT
from hiveq.contract.states import JobState
from hiveq.queue.broker import Broker
from hiveq.queue.vanish import RECOVER_HINT


@dataclass(frozen=True, slots=True)
class Failure:
    lease: Lease
    error: str
    fatal: bool = False  # True: dead-letter now, no retries
    traceback: str = ""  # the agent's traceback, if it raised ("" for timeouts, unusable results)


def clip_traceback(text: str, max_bytes: int = TRACEBACK_MAX_BYTES) -> str:
    """The end of a traceback (its innermost frames and the exception) within `max_bytes` of
    UTF-8, with a first line saying how much was cut."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    marker = f"… ({len(raw) - max_bytes} earlier bytes cut)\n"
    keep = raw[len(raw) - (max_bytes - len(marker.encode())) :]
    return marker + keep.decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Quarantine:
    lease: Lease
    reason: str  # why no worker can run it (undecodable input, unknown agent)


async def fail(b: Broker, failures: Sequence[Failure]) -> list[Code]:
    """Retry each job later or dead-letter it; all leases belong to one worker. One code per job."""
    if not failures:
        return []
    s = b.settings
    worker_id = holder(f.lease for f in failures)
    args: list[object] = [
        worker_id,
        int(s.retry.backoff_base_s * 1000),
        int(s.retry.backoff_max_s * 1000),
        TRACEBACKS_KEPT,
    ]
    for f in failures:
        lease, mode = f.lease, "fatal" if f.fatal else "retry"
        tb = clip_traceback(f.traceback)
        args += [
            lease.job_id,
            lease.token,
            lease.attempt,
            f.error[:ERROR_MAX_CHARS],
            mode,
            random.random(),
            tb,
        ]
    res = await b.run("fail", args)
    return [Code(int(c)) for c in res]


async def quarantine(b: Broker, q: Quarantine) -> Code:
    lease = q.lease
    args = [lease.worker_id, lease.job_id, lease.token, q.reason[:ERROR_MAX_CHARS]]
    res = await b.run("quarantine", args)
    return Code(int(res[0]))


async def _check(b: Broker, code: int, job_id: str, action: str) -> None:
    if code == Code.NOT_FOUND:
        raise NotFound("job", job_id)
    if code == Code.WRONG_STATE:
        if await b.guard(b.redis.hget(b.keys.job(job_id), "state")) == JobState.VANISHED:
            raise Conflict(
                f"job {job_id!r} is not a dead letter: it vanished (left hiveq's places without a "
                f"hiveq step); {RECOVER_HINT.format(job=job_id)}"
            )
        raise Conflict(
            f"job {job_id!r} cannot be {action}: it is not dead-lettered or quarantined "
            "(or its task was cancelled); see `hiveq trace` for its history"
        )


async def retry_dead(b: Broker, job_id: str, who: str) -> None:
    """Put a dead-lettered job back in its queue and revive its task."""
    res = await b.run("retry_dead", [job_id, who])
    await _check(b, int(res[0]), job_id, "retried")


async def discard_dead(b: Broker, job_id: str, who: str) -> None:
    """Mark a dead letter handled: it moves to cancelled and its task's retention starts."""
    res = await b.run("discard_dead", [job_id, who])
    await _check(b, int(res[0]), job_id, "discarded")
