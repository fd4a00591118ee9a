"""fetch: claim several jobs in one atomic step (claim.lua) and wait for work without polling."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from hiveq.contract.errors import HiveqError, NotReplicated
from hiveq.contract.models import ClaimedJob
from hiveq.contract.protocol import subtask_of
from hiveq.queue.broker import Broker
from hiveq.queue.release import release


def new_token() -> str:
    return secrets.token_hex(8)


def _decode(raw: str, worker_id: str) -> ClaimedJob:
    d = json.loads(raw)
    text_input = d.get("input")
    raw_input: str | None = None
    try:
        value = json.loads(text_input) if text_input not in (None, "") else None
    except ValueError:
        value, raw_input = None, text_input
    deps: dict[str, object] = {}
    for job_id, result in (d.get("deps") or {}).items():
        sub = subtask_of(job_id)
        try:
            deps[sub] = json.loads(result)
        except ValueError:
            deps[sub] = result
    try:
        metadata = json.loads(d.get("metadata") or "{}")
    except ValueError:
        metadata = {}
    return ClaimedJob(
        id=d["id"],
        task_id=d["task"],
        subtask_id=d["sub"],
        agent=d["agent"],
        input=value,
        raw_input=raw_input,
        priority=d["prio"],
        attempt=d["attempt"],
        max_attempts=d["max_attempts"],
        timeout_s=d["timeout"],
        token=d["token"],
        worker_id=worker_id,
        lease_deadline_ms=d["deadline"],
        description=d.get("description") or "",
        metadata=metadata if isinstance(metadata, dict) else {},
        dependency_results=deps,
        limit_fail=d.get("fail"),
    )


@dataclass(frozen=True)
class Claimed:
    jobs: list[ClaimedJob]
    retry_s: float | None  # a job was held by a window that refills in this long (docs/limits.md)


async def claim_batch(
    b: Broker,
    worker_id: str,
    agents: Sequence[str],
    count: int,
    token: str | None = None,
    agent_limits: Mapping[str, Sequence[str]] | None = None,
) -> Claimed:
    """Lease up to `count` jobs across `agents`, most urgent first, passing over jobs held by
    their limits. `agent_limits`: the limit keys each agent adds to its jobs (@agent(limits=…))."""
    if count <= 0 or not agents:
        return Claimed([], None)
    lease_ms = int(b.settings.leases.lease_s * 1000)
    defaults = {a: " ".join(ks) for a, ks in (agent_limits or {}).items() if ks and a in agents}
    queues = [(b.keys.queue(a), "zset") for a in agents]
    token = token or new_token()
    args = [worker_id, token, count, lease_ms, json.dumps(defaults) if defaults else "", *agents]
    try:
        raw = await b.run("claim", args, queues)
    except NotReplicated as exc:
        # HIVEQ_MIN_REPLICAS: a lease no replica confirmed could vanish in a failover, and the job
        # run twice; hand the jobs back unstarted (they keep their place) and report the outage.
        jobs = [_decode(r, worker_id) for r in exc.reply or [] if not r.startswith("retry:")]
        if jobs:
            with contextlib.suppress(HiveqError):
                await release(b, [j.lease for j in jobs], "claim not confirmed by replicas")
        raise
    retry_s = None
    if raw and raw[-1].startswith("retry:"):
        retry_s = int(raw.pop()[6:]) / 1000
    return Claimed([_decode(r, worker_id) for r in raw], retry_s)


async def claim(
    b: Broker,
    worker_id: str,
    agents: Sequence[str],
    count: int,
    token: str | None = None,
    agent_limits: Mapping[str, Sequence[str]] | None = None,
) -> list[ClaimedJob]:
    """Lease up to `count` jobs across `agents`, most urgent first. Returns [] when none wait."""
    return (await claim_batch(b, worker_id, agents, count, token, agent_limits)).jobs


async def wait_for_work(
    b: Broker, agents: Sequence[str], timeout_s: float, conn: Redis | None = None
) -> bool:
    """Block (no polling) until an enqueue wakes one of `agents`' queues or `timeout_s` passes.

    Uses BZPOPMIN on the agents' wake markers; pass a dedicated `conn` so that the blocking call
    does not hold a pooled connection others need.
    """
    r = conn or b.redis
    wakes = [b.keys.wake(a) for a in agents]
    res = await b.guard(r.bzpopmin(wakes, timeout=timeout_s), [(k, "zset") for k in wakes])
    return res is not None
