"""suspend: a durable agent waits for its children or a signal without holding a slot
(suspend.lua); signal: a named signal reaches a job (signal.lua). What a wait receives is stored
as its step; docs/durable.md has the whole story."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hiveq.contract.codec import dumps, dumps_bounded
from hiveq.contract.errors import Code, Conflict, NotFound, ValidationFailed
from hiveq.contract.lease import Lease, LeaseLost
from hiveq.contract.limits import SIGNALS_PENDING_MAX
from hiveq.contract.models import ChildOutcome
from hiveq.contract.protocol import PATTERN_RULES, SIGNAL_NAME_PATTERN, SIGNAL_NAME_RE
from hiveq.contract.views import SignalSent
from hiveq.queue.broker import Broker
from hiveq.queue.inspect import get_jobs


@dataclass(frozen=True, slots=True)
class Suspension:
    ready: bool  # True: nothing to wait for, `outcome` is stored and the job runs on
    outcome: str = ""  # JSON text: {"children": {id: state}} or the signal entry {name, by, ts, data}


async def _suspend(b: Broker, lease: Lease, kind: str, key: str, target: str, deadline: str) -> Suspension:
    res = await b.run(
        "suspend",
        [lease.worker_id, lease.job_id, lease.token, kind, key, target, deadline],
    )
    code = Code(int(res[0]))
    if code == Code.WRONG_STATE:
        rule = f"{res[2]} was not spawned by job {lease.job_id}; wait_for takes the ids ctx.spawn returned"
        raise ValidationFailed("children", rule)
    if code != Code.OK:
        raise LeaseLost(lease, "wait")
    return Suspension(ready=int(res[1]) == 1, outcome=str(res[2]))


async def wait_children(b: Broker, lease: Lease, key: str, children: Sequence[str]) -> Suspension:
    """Suspend until every child (job ids this job spawned) has finished, unless they all have."""
    return await _suspend(b, lease, "children", key, dumps(list(children)), "")


async def wait_signal(b: Broker, lease: Lease, key: str, name: str, timeout_s: float | None) -> Suspension:
    """Suspend until signal `name` arrives (or `timeout_s` passes), unless one was kept."""
    check_signal_name(name)
    timeout = "" if timeout_s is None else str(max(0, int(timeout_s * 1000)))
    return await _suspend(b, lease, "signal", key, name, timeout)


def check_signal_name(name: str) -> None:
    if not SIGNAL_NAME_RE.match(name):
        raise ValidationFailed("name", f"signal name {name[:80]!r} {PATTERN_RULES[SIGNAL_NAME_PATTERN]}")


async def signal(b: Broker, job_id: str, name: str, data: object, who: str) -> SignalSent:
    """Send signal `name` with JSON `data` to a job. Raises NotFound, Conflict (the job finished,
    or it keeps SIGNALS_PENDING_MAX signals already), ValidationFailed, PayloadTooLarge."""
    check_signal_name(name)
    text = dumps_bounded(data, "signal data", b.settings.limits.max_payload_bytes)
    res = await b.run("signal", [job_id, name, text, who[:200], SIGNALS_PENDING_MAX])
    code, delivered, kept, why = Code(int(res[0])), int(res[1]) == 1, int(res[2]), str(res[3])
    if code == Code.NOT_FOUND:
        raise NotFound("job", job_id)
    if code == Code.WRONG_STATE and why == "full":
        raise Conflict(
            f"job {job_id!r} already keeps {kept} signals that no wait has received (the most it keeps); "
            "see `hiveq why` for what it waits for"
        )
    if code == Code.WRONG_STATE:
        raise Conflict(f"job {job_id!r} has finished; no wait will ever receive signal {name!r}")
    return SignalSent(job_id=job_id, name=name, delivered=delivered, pending=kept)


async def children_outcomes(b: Broker, job_ids: Sequence[str]) -> list[ChildOutcome]:
    """How each child ended, in order (results are read from the children's records, which live
    as long as their task)."""
    jobs = {j.id: j for j in await get_jobs(b, job_ids)}
    out = []
    for jid in job_ids:
        j = jobs.get(jid)
        if j is None:
            raise NotFound("job", jid)
        error = None if j.state == "succeeded" else (j.reason or j.error)
        out.append(
            ChildOutcome(job_id=jid, subtask_id=j.subtask_id, state=j.state, result=j.result, error=error)
        )
    return out
