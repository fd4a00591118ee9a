"""audit: prove conservation. Every job of the namespace is in exactly one place (`vanished`,
where the conservation watch puts what left without a hiveq step, is one of them); list the
ones that are in none (missing: taken, and not yet marked vanished) or in several, and the jobs
whose record is gone (deleted or evicted) although the index and a place still hold them.

The places and the index are read in one MULTI/EXEC, so the snapshot is atomic with respect to
the transition scripts. A place whose key another application overwrote with another Redis type
is reported (`foreign_keys`), and the jobs it held show up as missing; the audit never fails on it.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel

from hiveq.contract.models import Event
from hiveq.contract.states import PLACE_OF
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history


class Misplaced(BaseModel):
    job_id: str
    places: list[str]  # [] for a missing job
    state: str | None  # what the job's own record says (None: the record is gone)
    last_event: Event | None = None  # the last custody event before it went missing


class AuditReport(BaseModel):
    total: int
    by_place: dict[str, int]
    missing: list[Misplaced]  # indexed jobs found in no place, not even marked vanished
    duplicated: list[Misplaced]  # jobs found in more than one place
    strays: list[str]  # members of our places with no index entry (written by someone else)
    records_missing: list[str] = []  # indexed jobs whose record hash is gone (deleted or evicted)
    foreign_keys: dict[str, str] = {}  # place key -> the Redis type found there instead of a zset
    # Non-empty when Redis evicts keys (an allkeys-/volatile- maxmemory policy) and has evicted
    # some: what is gone is then named an eviction, not blamed on a foreign client.
    evicted: str = ""

    @property
    def ok(self) -> bool:
        """Conservation holds: each job in exactly one place (vanished counts) with its record."""
        return not (
            self.missing or self.duplicated or self.strays or self.records_missing or self.foreign_keys
        )


async def audit(b: Broker, *, with_history: bool = True) -> AuditReport:
    k = b.keys
    agents = sorted(cast("set[str]", await b.guard(b.redis.smembers(k.agents))))
    place_keys = [k.key(place) for place in PLACE_OF.values()] + [k.queue(a) for a in agents]
    pipe = b.redis.pipeline(transaction=True)
    pipe.zrange(k.jobs, 0, -1)
    for key in place_keys:
        pipe.zrange(key, 0, -1)
    res = await b.guard(pipe.execute(raise_on_error=False))
    if isinstance(res[0], Exception):
        raise await b.explain_wrongtype() if "WRONGTYPE" in str(res[0]) else res[0]
    index = set(res[0])
    where: dict[str, list[str]] = {}
    by_place: dict[str, int] = {}
    foreign: dict[str, str] = {}
    names = [state.value for state in PLACE_OF] + [f"waiting:{a}" for a in agents]
    for name, key, members in zip(names, place_keys, res[1:], strict=True):
        if isinstance(members, Exception):
            if "WRONGTYPE" not in str(members):
                raise members
            foreign[key] = str(await b.guard(b.redis.type(key)))
            members = []
        by_place[name] = len(members)
        for m in members:
            where.setdefault(m, []).append(name)
    missing_ids = sorted(index - where.keys())
    dup_ids = sorted(j for j, p in where.items() if len(p) > 1)
    strays = sorted(where.keys() - index)
    gone = await records_gone(b, sorted(index))
    evicted = await eviction(b) if gone or missing_ids or strays else ""

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
        missing=[await describe(j) for j in missing_ids],
        duplicated=[await describe(j) for j in dup_ids],
        strays=strays,
        records_missing=gone,
        foreign_keys=foreign,
        evicted=evicted,
    )


EVICTING = ("allkeys-", "volatile-")  # maxmemory policies under which Redis deletes keys itself


async def eviction(b: Broker) -> str:
    """'evicted by Redis: maxmemory-policy P (N keys …)' when the policy evicts and Redis has
    evicted keys since it started; '' otherwise."""
    stats = await b.node_command("INFO", "stats")
    memory = await b.node_command("INFO", "memory")
    count, policy = int(stats.get("evicted_keys") or 0), str(memory.get("maxmemory_policy") or "")
    if count and policy.startswith(EVICTING):
        return f"evicted by Redis: maxmemory-policy {policy} ({count} keys evicted since the server started)"
    return ""


async def records_gone(b: Broker, job_ids: list[str], chunk: int = 1000) -> list[str]:
    """The ids whose job record does not exist (EXISTS, pipelined in chunks)."""
    gone: list[str] = []
    for at in range(0, len(job_ids), chunk):
        part = job_ids[at : at + chunk]
        pipe = b.redis.pipeline(transaction=False)
        for job_id in part:
            pipe.exists(b.keys.job(job_id))
        found = await b.guard(pipe.execute())
        gone += [j for j, n in zip(part, found, strict=True) if not n]
    return gone
