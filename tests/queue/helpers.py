"""Small helpers shared by the engine tests: build tasks, read where a job is, poll a condition."""

from __future__ import annotations

from typing import Any

from hiveq.contract.models import Event, SubtaskSpec, TaskSubmission
from hiveq.contract.states import PLACE_OF, STATE_OF_PLACE
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
    return Broker(b.redis, b.keys, b.settings.with_(**overrides), b.client_name)


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
