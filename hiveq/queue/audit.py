"""audit: prove conservation. Every job of the namespace is in exactly one place; list the ones
that are in none (vanished: something outside hiveq took them) or in several.

The places and the index are read in one MULTI/EXEC, so the snapshot is atomic with respect to
the transition scripts.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel

from hiveq.models import Event
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from hiveq.queue.inspect import PLACES

PLACE_NAMES = {"leases": "active", "quarantine": "quarantined"}


class Misplaced(BaseModel):
    job_id: str
    places: list[str]  # [] for a vanished job
    state: str | None  # what the job's own record says
    last_event: Event | None = None  # the last custody event before it vanished


class AuditReport(BaseModel):
    total: int
    by_place: dict[str, int]
    vanished: list[Misplaced]  # indexed jobs found in no place
    duplicated: list[Misplaced]  # jobs found in more than one place
    strays: list[str]  # members of our places with no index entry (written by someone else)

    @property
    def ok(self) -> bool:
        return not (self.vanished or self.duplicated or self.strays)


async def audit(b: Broker, *, with_history: bool = True) -> AuditReport:
    k = b.keys
    agents = sorted(cast("set[str]", await b.guard(b.redis.smembers(k.agents))))
    pipe = b.redis.pipeline(transaction=True)
    pipe.zrange(k.jobs, 0, -1)
    for place in PLACES:
        pipe.zrange(k.key(place), 0, -1)
    for a in agents:
        pipe.zrange(k.queue(a), 0, -1)
    res = await b.guard(pipe.execute())
    index = set(res[0])
    where: dict[str, list[str]] = {}
    by_place: dict[str, int] = {}
    names = [PLACE_NAMES.get(p, p) for p in PLACES] + [f"waiting:{a}" for a in agents]
    for name, members in zip(names, res[1:], strict=True):
        by_place[name] = len(members)
        for m in members:
            where.setdefault(m, []).append(name)
    vanished_ids = sorted(index - where.keys())
    dup_ids = sorted(j for j, p in where.items() if len(p) > 1)
    strays = sorted(where.keys() - index)

    async def describe(job_id: str) -> Misplaced:
        state = await b.guard(b.redis.hget(k.job(job_id), "state"))
        last = None
        if with_history:
            hist = await job_history(b, job_id)
            last = hist[-1] if hist else None
        return Misplaced(job_id=job_id, places=where.get(job_id, []), state=state, last_event=last)

    return AuditReport(
        total=len(index),
        by_place=by_place,
        vanished=[await describe(j) for j in vanished_ids],
        duplicated=[await describe(j) for j in dup_ids],
        strays=strays,
    )
