"""Small helpers shared by the engine tests: build tasks, read where a job is, poll a condition."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from redis.asyncio import Redis

from hiveq.contract.models import Event, SubtaskSpec, TaskSubmission
from hiveq.contract.states import ENQUEUED_AS, PLACE_OF, STATE_OF_PLACE, TRANSITIONS
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import Enqueued, enqueue
from hiveq.queue.events import job_history, read_events


def st(sid: str, agent: str = "a", deps: tuple[str, ...] = (), **kw: Any) -> SubtaskSpec:
    return SubtaskSpec(id=sid, agent=agent, input={"n": sid}, depends_on=list(deps), **kw)


def submission(*subs: SubtaskSpec, priority: int = 5, idem: str | None = None) -> TaskSubmission:
    return TaskSubmission(
        description="test task", priority=priority, subtasks=list(subs) or [st("s1")], idempotency_key=idem
    )


async def enqueue_task(b: Broker, *subs: SubtaskSpec, priority: int = 5, idem: str | None = None) -> Enqueued:
    [res] = await enqueue(b, [submission(*subs, priority=priority, idem=idem)])
    return res


def variant(b: Broker, **overrides: Any) -> Broker:
    """The same connection and namespace with other settings (e.g. a tiny lease for one call)."""
    v = Broker(b.redis, b.keys, b.settings.with_(**overrides), b.client_name)
    v.epoch = b.epoch
    return v


async def state_of(b: Broker, job_id: str) -> str | None:
    value = await b.redis.hget(b.keys.job(job_id), "state")
    return None if value is None else str(value)


async def places_of(b: Broker, job_id: str) -> list[str]:
    """Every place (as a job state name) that holds `job_id` right now."""
    found = []
    for place in PLACE_OF.values():
        if await b.redis.zscore(b.keys.key(place), job_id) is not None:
            found.append(STATE_OF_PLACE[place].value)
    for agent in sorted(str(a) for a in await b.redis.smembers(b.keys.agents)):
        q = b.keys.queue(agent)
        if await b.redis.type(q) == "zset" and await b.redis.zscore(q, job_id) is not None:
            found.append("waiting")
    return found


async def hash_of(b: Broker, key: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (await b.redis.hgetall(key)).items()}


async def members(b: Broker, key: str) -> list[str]:
    return [str(m) for m in await b.redis.zrange(key, 0, -1)]


async def last_event(b: Broker, job_id: str) -> Event:
    hist = await job_history(b, job_id)
    assert hist, f"no custody history for {job_id}"
    return hist[-1]


async def stream_events(b: Broker) -> list[Event]:
    _, events = await read_events(b, "0", count=100_000)
    return events


async def server_ms(b: Broker) -> int:
    s, us = await b.redis.time()
    return int(s) * 1000 + int(us) // 1000


def job_edges(events: Iterable[Event]) -> list[tuple[str, str]]:
    """(from, to) of every job event, in order ("" as `from` for a job's enqueue)."""
    return [(e.frm or "", e.to or "") for e in events if e.type == "job"]


def off_table(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges that the transition table (hiveq/contract/states.py) does not hold."""
    known = {(a.value, b.value) for a, b in TRANSITIONS} | {("", s.value) for s in ENQUEUED_AS}
    return [e for e in edges if e not in known]


async def snapshot(b: Broker) -> dict[str, tuple[str, Any, bool]]:
    """Every key of the namespace with its type, content and whether it expires, to compare before
    and after a call."""
    out: dict[str, tuple[str, Any, bool]] = {}
    async for key in b.redis.scan_iter(match=b.keys.prefix + "*", count=1000):
        kind = str(await b.redis.type(key))
        value: Any
        if kind == "hash":
            value = await b.redis.hgetall(key)
        elif kind == "zset":
            value = await b.redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await b.redis.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await b.redis.smembers(key))
        elif kind == "stream":
            value = await b.redis.xrange(key)
        else:
            value = await b.redis.get(key)
        out[str(key)] = (kind, value, await b.redis.ttl(key) >= 0)
    return out


async def zpopmin(r: Redis, key: str) -> list[str]:
    """What a foreign client's ZPOPMIN takes from `key` (member ids)."""
    rows = cast("list[tuple[str, float]]", await r.zpopmin(key))
    return [m for m, _ in rows]


async def bzpopmin(r: Redis, key: str, timeout_s: float) -> str | None:
    """A foreign client's blocking pop on `key`: the member it got, or None."""
    got = cast("tuple[str, str, float] | None", await r.bzpopmin([key], timeout=timeout_s))
    return got[1] if got else None
