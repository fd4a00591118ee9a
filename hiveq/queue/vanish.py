"""vanish: the `vanished` state. A job that left hiveq's places without a hiveq script is marked
vanished (mark_vanished.lua, called by the conservation watch with what it saw) and brought back
where it belongs (recover.lua, by a user, or by the watch when HIVEQ_RECOVER_VANISHED=auto).

The watch's own reads (its tripwire and sweeps) are in hiveq/diagnose/watch.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hiveq.contract.codec import dumps
from hiveq.contract.errors import Code, Conflict, NotFound
from hiveq.contract.models import JobRecord
from hiveq.contract.states import JobState
from hiveq.queue.broker import Broker
from hiveq.queue.inspect import get_jobs

RECOVER_HINT = "bring it back with `hiveq recover {job}` (or POST /jobs/{job}/recover)"


@dataclass(frozen=True)
class Seen:
    """What the watch saw when it found jobs gone: the suspected culprit and the circumstances.

    `suspect` is one line for people (it ends up in the job's reason); `suspects` the non-hiveq
    clients on the server at that moment (CLIENT LIST rows, most suspicious first); `prime` the
    addresses that took data or touched our keys (counted by `hiveq_foreign_clients`); `sample`
    what a MONITOR sample saw, when sampling is on; `evicted` says why it is an eviction."""

    suspect: str = ""
    suspects: list[dict[str, Any]] = field(default_factory=list)
    prime: list[str] = field(default_factory=list)
    sample: dict[str, Any] | None = None
    evicted: str = ""  # e.g. "maxmemory-policy allkeys-lru (12 keys evicted since 10:04:01)"
    auto_recover: bool = False

    def encode(self) -> str:
        return dumps(
            {
                "cause": "evicted" if self.evicted else "",
                "evicted": self.evicted or None,
                "suspect": self.suspect,
                "suspects": self.suspects,
                "prime": self.prime,
                "sample": self.sample,
                "recover": "auto" if self.auto_recover else "manual",
            }
        )


async def mark_vanished(b: Broker, seen: Seen, jobs: Sequence[tuple[str, str]]) -> list[Code]:
    """Mark each (job id, key it was seen in without its record, or '' when not known) vanished.
    The script checks again, atomically, that the job is in no place (or, its record gone, in a
    pending one): a job that moved meanwhile is left alone (WRONG_STATE), an id that is not one
    of ours is refused (NOT_FOUND)."""
    if not jobs:
        return []
    r = b.settings.retry
    args: list[Any] = [seen.encode(), r.max_attempts, r.max_deliveries, r.job_timeout_s]
    for job_id, where in jobs:
        args += [job_id, where]
    res = await b.run("mark_vanished", args)
    return [Code(int(c)) for c in res]


async def recover(b: Broker, job_id: str, who: str) -> JobState:
    """Put a vanished job back where it belongs (one delivery counted); returns its new state.
    Raises NotFound for an unknown id and Conflict when it is not vanished or cannot be run."""
    code, state = await b.run("recover", [job_id, who])
    if int(code) == Code.NOT_FOUND:
        raise NotFound("job", job_id)
    if int(code) == Code.WRONG_STATE:
        if state == JobState.VANISHED:
            raise Conflict(
                f"job {job_id!r} cannot be recovered: its record was deleted and neither its agent nor "
                "its input survived; cancel its task and submit it again"
            )
        raise Conflict(
            f"job {job_id!r} is {state}, not vanished: `hiveq recover` brings back only jobs that left "
            "hiveq's places without a hiveq step; see `hiveq why` for where it is"
        )
    return JobState(state)


async def vanished_ids(b: Broker, limit: int = 1000) -> list[str]:
    """Vanished jobs, oldest first."""
    return cast("list[str]", await b.guard(b.redis.zrange(b.keys.vanished, 0, limit - 1)))


async def list_vanished(b: Broker, limit: int = 100) -> list[JobRecord]:
    return await get_jobs(b, await vanished_ids(b, limit))


async def recover_all(b: Broker, who: str) -> list[tuple[str, JobState | Conflict]]:
    """Recover every vanished job; each one's outcome (its new state, or why not)."""
    out: list[tuple[str, JobState | Conflict]] = []
    for job_id in await vanished_ids(b, 100_000):
        try:
            out.append((job_id, await recover(b, job_id, who)))
        except Conflict as exc:
            out.append((job_id, exc))
        except NotFound:
            continue  # expired or cancelled meanwhile
    return out
