"""`why`: in plain words, why one job is where it is — and, for a pending job, what it waits for
(a suspended durable agent: the signal or the children, and how to end the wait).

Reads the job record, the place the record says it is in (a record that says "waiting" but sits
in no queue has vanished: something outside hiveq took it), the registered workers and the
custody log. Read-only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hiveq.contract.models import JobRecord
from hiveq.contract.protocol import job_id_for
from hiveq.contract.states import PLACE_OF, TERMINAL_JOB_STATES, JobState
from hiveq.diagnose.limit_why import held_by
from hiveq.diagnose.neighbours import describe, neighbours, start_worker_command
from hiveq.diagnose.report import ago, when
from hiveq.diagnose.workers_check import Liveness, liveness
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from hiveq.queue.inspect import PRIO_SHIFT, get_job, get_jobs
from hiveq.queue.vanish import RECOVER_HINT


class Why(BaseModel):
    job_id: str
    state: str
    summary: str  # one or two sentences a person can act on
    details: dict[str, Any]


PENDING_PLACES = (JobState.BLOCKED, JobState.DELAYED, JobState.ACTIVE, JobState.SUSPENDED)  # and q:<agent>


def _place_key(b: Broker, job: JobRecord) -> str:
    if job.state == JobState.WAITING:
        return b.keys.queue(job.agent)
    return b.keys.key(PLACE_OF[job.state])


async def _vanished(b: Broker, job: JobRecord) -> Why | None:
    """A pending job whose record names a place it is not in: it left without a hiveq step."""
    if job.state not in (*PENDING_PLACES, JobState.WAITING):
        return None
    key = _place_key(b, job)
    if await b.guard(b.redis.zscore(key, job.id)) is not None:
        return None
    hist = await job_history(b, job.id)
    last = hist[-1] if hist else None
    seen = (
        (
            f"; its last custody event was {last.frm} -> {last.to} at {when(last.ts)}"
            + (f" by {last.worker or last.client}" if (last.worker or last.client) else "")
        )
        if last
        else ""
    )
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=f"vanished: its record says {job.state.value}, but it is not in {key} — something "
        f"outside hiveq removed it (a foreign pop, DEL or script){seen}. No conservation watch has "
        "marked it yet (no worker or API process of this namespace runs?); run `hiveq doctor "
        "--sample 5` to name the culprit.",
        details={
            "expected_in": key,
            "last_event": last.model_dump(mode="json", by_alias=True) if last else None,
        },
    )


async def _blocked(b: Broker, job: JobRecord) -> Why:
    deps = await get_jobs(b, [job_id_for(job.task_id, d) for d in job.depends_on])
    pending = [d for d in deps if d.state != JobState.SUCCEEDED]
    states = {d.subtask_id: d.state.value for d in deps}
    names = " and ".join(f"{d.subtask_id} ({d.state.value})" for d in pending) or "none (release pending)"
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=f"waiting on dependencies {names}; it runs when all of them have succeeded",
        details={"dependencies": states, "pending": [d.subtask_id for d in pending]},
    )


async def _waiting(b: Broker, job: JobRecord, lv: Liveness) -> Why:
    serving = [w for w in lv.live if job.agent in w.agents]
    key = b.keys.queue(job.agent)
    score = await b.guard(b.redis.zscore(key, job.id))
    band = job.priority * PRIO_SHIFT
    higher = int(await b.guard(b.redis.zcount(key, "-inf", f"({band}")))
    equal = int(await b.guard(b.redis.zcount(key, band, f"({score}"))) if score is not None else 0
    details = {
        "agent": job.agent,
        "ahead_higher_priority": higher,
        "ahead_equal_priority": equal,
        "live_workers": [w.id for w in serving],
    }
    held = await held_by(b, job)
    if held is not None:  # a limit holds it: that comes first, whoever serves the agent
        sentence, numbers = held
        tail = "" if serving else f"; and no live worker serves agent {job.agent}"
        return Why(
            job_id=job.id,
            state=job.state.value,
            summary=f"{sentence}; it keeps its place ({higher} job(s) of higher and {equal} of equal "
            f"priority ahead) and starts when the limit frees{tail}",
            details=details | {"held_by": numbers},
        )
    if not serving:
        cmd = await start_worker_command(b, [job.agent])
        others = await neighbours(b, [job.agent])
        summary = (
            f"no live worker serves agent {job.agent}: start one with `{cmd}` ({higher + equal} "
            "job(s) are ahead of it)"
        )
        return Why(
            job_id=job.id,
            state=job.state.value,
            summary=f"{summary}. {describe(others)}" if others else summary,
            details=details
            | {
                "start_worker": cmd,
                "other_namespaces": [
                    {"namespace": n.namespace, "workers": n.workers, "agents": list(n.agents)} for n in others
                ],
            },
        )
    free = sum(max(0, w.concurrency - w.running) for w in serving)
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=f"waiting behind {higher} job(s) of higher and {equal} of equal priority for agent "
        f"{job.agent}; {len(serving)} live worker(s) serve it with {free} free slot(s)",
        details=details | {"free_slots": free},
    )


def _delayed(job: JobRecord, lv: Liveness) -> Why:
    k, n = job.failures + 1, job.max_attempts
    due = job.due_ms or 0
    summary = f"delayed until {when(due)} for retry {k} of {n} (last error: {job.error or 'unknown'})"
    if not job.failures:  # never failed: its task's run_at / delay_s holds it (docs/schedules.md)
        summary = f"delayed until {when(due)}: its task's start (run_at / delay_s)"
    if due < lv.now_ms and not lv.live:
        summary += f"; it has been due for {ago(lv.now_ms - due)}, but no live worker promotes it — start one"
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=summary,
        details={"due_ms": due, "retry": k, "max_attempts": n, "last_error": job.error},
    )


def _active(job: JobRecord, lv: Liveness) -> Why:
    w = next((x for x in [*lv.live, *lv.stale] if x.id == job.worker), None)
    where = f" (host {w.host}, pid {w.pid})" if w else " (no longer registered)"
    deadline = job.lease_deadline_ms or 0
    summary = (
        f"leased by worker {job.worker}{where} since {when(job.started_ms)}, delivery {job.attempts} "
        f"of {job.max_deliveries}; lease deadline {when(deadline)}"
    )
    if deadline < lv.now_ms:
        summary += (
            f" — expired {ago(lv.now_ms - deadline)} ago: the worker stopped heartbeating; the "
            "job runs again once a live worker reaps it"
        )
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=summary,
        details={
            "worker": job.worker,
            "host": w.host if w else None,
            "pid": w.pid if w else None,
            "started_ms": job.started_ms,
            "lease_deadline_ms": deadline,
            "worker_live": bool(w and w in lv.live),
        },
    )


async def _suspended(b: Broker, job: JobRecord, lv: Liveness) -> Why:
    wait = job.wait
    since = f" since {when(wait.since_ms)}" if wait and wait.since_ms else ""
    details: dict[str, Any] = {"wait": wait.model_dump(mode="json") if wait else None}
    if wait is not None and wait.kind == "children":
        kids = await get_jobs(b, [job_id_for(job.task_id, c) for c in wait.children])
        open_ = [k for k in kids if k.state not in TERMINAL_JOB_STATES]
        states = ", ".join(f"{k.subtask_id} ({k.state.value})" for k in kids)
        summary = (
            f"suspended{since}, holding no worker slot: waiting for its children {states}; it runs again "
            f"on any worker once all have finished ({len(kids) - len(open_)} of {len(kids)} have)"
        )
        details["children"] = {k.subtask_id: k.state.value for k in kids}
    else:
        name = wait.name if wait and wait.name else "?"
        summary = (
            f"suspended{since}, holding no worker slot: waiting for signal {name!r}; send it with "
            f"`hiveq signal {job.id} {name} --data '<json>'` or POST /jobs/{job.id}/signals/{name}"
        )
        deadline = wait.deadline_ms if wait else None
        if deadline:
            summary += f"; the wait times out at {when(deadline)}"
            if deadline < lv.now_ms and not lv.live:
                summary += f", {ago(lv.now_ms - deadline)} ago, but no live worker wakes it — start one"
        kept = await b.guard(b.redis.llen(b.keys.job_signals(job.id)))
        if kept:
            summary += f" ({kept} signal(s) of other names are kept for it)"
        details["signals_kept"] = int(kept)
    return Why(job_id=job.id, state=job.state.value, summary=summary, details=details)


def _marked_vanished(job: JobRecord) -> Why:
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=f"{job.reason or 'vanished'} (seen at {when(job.vanished_ms)}). Its task cannot finish "
        f"until it is back: {RECOVER_HINT.format(job=job.id)}, once the culprit is stopped",
        details={
            "key": job.vanished_key,
            "seen_ms": job.vanished_ms,
            "suspect": job.suspect,
            "record_rebuilt": job.rebuilt,
            "deliveries": job.attempts,
            "max_deliveries": job.max_deliveries,
        },
    )


def _finished(job: JobRecord) -> Why:
    at = when(job.finished_ms)
    if job.state == JobState.DEAD:
        summary = (
            f"dead-lettered at {at} because {job.reason or 'unknown'}; once the cause is fixed, "
            f"retry it with `hiveq dlq retry {job.id}` or POST /dlq/{job.id}/retry"
        )
    elif job.state == JobState.SUCCEEDED:
        summary = f"succeeded at {at} on worker {job.worker or '?'} after {job.attempts} delivery(ies)"
    elif job.state == JobState.CANCELLED:
        summary = f"cancelled at {at}" + (f": {job.reason}" if job.reason else "")
    else:
        summary = f"quarantined at {at}: {job.reason or 'unknown reason'}; it is kept, never run"
    return Why(
        job_id=job.id,
        state=job.state.value,
        summary=summary,
        details={
            "finished_ms": job.finished_ms,
            "reason": job.reason,
            "error": job.error,
            "worker": job.worker,
        },
    )


async def why(b: Broker, job_id: str) -> Why:
    """Why `job_id` is where it is. Raises NotFound for an unknown id (never "pending")."""
    job = await get_job(b, job_id)
    gone = await _vanished(b, job)
    if gone is not None:
        return gone
    if job.state == JobState.VANISHED:
        return _marked_vanished(job)
    if job.state == JobState.BLOCKED:
        return await _blocked(b, job)
    lv = await liveness(b)
    if job.state == JobState.WAITING:
        return await _waiting(b, job, lv)
    if job.state == JobState.DELAYED:
        return _delayed(job, lv)
    if job.state == JobState.ACTIVE:
        return _active(job, lv)
    if job.state == JobState.SUSPENDED:
        return await _suspended(b, job, lv)
    return _finished(job)
