"""Workers and queues: stale heartbeats, agents nobody serves, leases nobody reaps, dead letters
(and their growth since the last doctor run), and the oldest waiting job."""

from __future__ import annotations

from dataclasses import dataclass

from hiveq.contract.models import QueueDepth, WorkerInfo
from hiveq.diagnose.report import Check, ago, fail, ok, warn, when
from hiveq.queue.broker import Broker
from hiveq.queue.inspect import queue_depths
from hiveq.queue.registry import list_workers

# Per-namespace hash the doctor keeps between runs: `dead` (dead + quarantined count last seen)
# and `at` (ms). Documented in docs/protocol.md; written only when the namespace exists.
DOCTOR_KEY = "doctor"
OLDEST_WARN_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class Liveness:
    now_ms: int
    live: list[WorkerInfo]
    stale: list[WorkerInfo]

    @property
    def addresses(self) -> set[str]:
        return {w.client for w in self.live if w.client}

    @property
    def agents(self) -> set[str]:
        return {a for w in self.live for a in w.agents}


async def now_ms(b: Broker) -> int:
    s, us = await b.guard(b.redis.time())
    return int(s) * 1000 + int(us) // 1000


def stale_after_ms(b: Broker) -> int:
    """A worker that missed about three heartbeats (and at least a lease) is not alive."""
    s = b.settings
    return int(max(3 * s.leases.heartbeat_s, s.leases.lease_s) * 1000)


async def liveness(b: Broker) -> Liveness:
    now = await now_ms(b)
    workers = await list_workers(b)
    limit = stale_after_ms(b)
    live = [w for w in workers if now - w.last_heartbeat_ms <= limit]
    stale = [w for w in workers if now - w.last_heartbeat_ms > limit]
    return Liveness(now, live, stale)


def _who(w: WorkerInfo) -> str:
    return f"{w.id} on {w.host} pid {w.pid} (client {w.client or '?'})"


def workers_check(lv: Liveness) -> Check:
    name = "workers"
    if lv.stale:
        return warn(
            name,
            f"{len(lv.stale)} worker(s) stopped heartbeating ({len(lv.live)} live)",
            [f"{_who(w)}: last heartbeat {ago(lv.now_ms - w.last_heartbeat_ms)} ago" for w in lv.stale],
            fix="Check those processes (host, pid above). Their leases expire and the jobs run again "
            "on a live worker; the reaper drops their records.",
        )
    if not lv.live:
        return warn(name, "no live workers: nothing will run", fix="Start one: `hiveq worker`.")
    evidence = [
        f"{_who(w)}: agents {', '.join(w.agents)}, running {w.running}/{w.concurrency}" for w in lv.live
    ]
    return ok(name, f"{len(lv.live)} live worker(s)", evidence)


def agents_check(depths: list[QueueDepth], lv: Liveness) -> Check:
    name = "unserved queues"
    orphans = [d for d in depths if d.waiting and d.agent not in lv.agents]
    if orphans:
        names = ", ".join(d.agent for d in orphans)
        return fail(
            name,
            f"{sum(d.waiting for d in orphans)} job(s) wait for agent(s) no live worker serves: {names}",
            [f"agent {d.agent}: {d.waiting} waiting, oldest {ago(d.oldest_age_ms or 0)}" for d in orphans],
            fix=f"Start a worker for them: `hiveq worker --agents {','.join(d.agent for d in orphans)}` "
            "(and check the agent names your planner emits match the ones your workers register).",
        )
    busy = [d for d in depths if d.waiting]
    return ok(name, f"every agent with waiting jobs has a live worker ({len(busy)} busy queue(s))")


async def leases_check(b: Broker, lv: Liveness) -> Check:
    name = "expired leases"
    grace = int((2 * b.settings.leases.reap_interval_s + 0.5) * 1000)
    raw = await b.guard(b.redis.zrangebyscore(b.keys.leases, "-inf", lv.now_ms - grace, withscores=True))
    rows = [(str(r[0]), float(r[1])) for r in raw]
    if not rows:
        return ok(name, "no lease is past its deadline")
    pipe = b.redis.pipeline(transaction=False)
    for job_id, _ in rows[:50]:
        pipe.hmget(b.keys.job(job_id), ["worker", "attempts", "max_deliveries"])
    info: list[list[str | None]] = await b.guard(pipe.execute())
    evidence = [
        f"{job_id}: leased to {f[0] or '?'} (delivery {f[1]} of {f[2]}), "
        f"deadline passed {ago(lv.now_ms - dl)} ago"
        for (job_id, dl), f in zip(rows, info, strict=False)
    ]
    return fail(
        name,
        f"{len(rows)} lease(s) are past their deadline and nobody reaped them: those jobs are stuck "
        "until a worker of this namespace runs maintenance",
        evidence,
        fix="Start any `hiveq worker` for this namespace: every worker reaps expired leases within "
        f"{b.settings.leases.reap_interval_s} s, and the jobs run again (after max deliveries they are "
        "dead-lettered instead).",
    )


async def dead_check(b: Broker, now: int, remember: bool) -> Check:
    name = "dead letters"
    k = b.keys
    pipe = b.redis.pipeline(transaction=False)
    pipe.zcard(k.dead)
    pipe.zcard(k.quarantine)
    pipe.hgetall(k.key(DOCTOR_KEY))
    pipe.exists(k.meta)
    dead, quarantined, last, exists = await b.guard(pipe.execute())
    total = int(dead) + int(quarantined)
    growth = ""
    if last.get("dead") is not None:
        delta = total - int(last["dead"])
        growth = f"; {delta:+d} since the last doctor run at {when(int(last.get('at') or 0))}"
    if remember and exists:
        await b.guard(b.redis.hset(k.key(DOCTOR_KEY), mapping={"dead": total, "at": now}))
    evidence = [f"dead={dead}", f"quarantined={quarantined}"]
    if total:
        return warn(
            name,
            f"{dead} dead-lettered and {quarantined} quarantined job(s){growth}",
            evidence,
            fix="Inspect them with `hiveq dlq list`; retry with `hiveq dlq retry JOB` (or POST "
            "/dlq/JOB/retry) once the cause is fixed, or discard them.",
        )
    return ok(name, f"no dead-lettered or quarantined jobs{growth}", evidence)


def oldest_check(depths: list[QueueDepth]) -> Check:
    name = "oldest waiting job"
    ages = [(d.oldest_age_ms, d.agent) for d in depths if d.oldest_age_ms is not None]
    if not ages:
        return ok(name, "no job is waiting")
    age, agent = max(ages)
    summary = f"the oldest waiting job (agent {agent}) has waited {ago(age)}"
    evidence = [
        f"agent {d.agent}: {d.waiting} waiting, oldest {ago(d.oldest_age_ms or 0)}"
        for d in depths
        if d.waiting
    ]
    if age > OLDEST_WARN_MS:
        return warn(
            name,
            summary,
            evidence,
            fix="Add workers or concurrency for that agent, or look for a stuck worker.",
        )
    return ok(name, summary, evidence)


async def worker_checks(b: Broker, lv: Liveness, *, remember: bool = True) -> list[Check]:
    depths = await queue_depths(b)
    return [
        workers_check(lv),
        agents_check(depths, lv),
        await leases_check(b, lv),
        await dead_check(b, lv.now_ms, remember),
        oldest_check(depths),
    ]
