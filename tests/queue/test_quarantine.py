"""quarantine.lua: a job a worker cannot decode or run is kept with the reason, never dropped."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task, list_dead
from hiveq.queue.retry import Quarantine, quarantine
from tests.queue.helpers import enqueue_task, last_event, places_of, st


async def test_quarantine_keeps_the_job_with_its_reason_and_fails_the_task(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x", agent="nobody"), st("y", agent="nobody", deps=("x",)))
    jx, jy = res.job_ids
    [job] = await claim(b, "w", ["nobody"], 1)
    assert await quarantine(b, Quarantine(job.lease, "no agent named 'nobody'")) == Code.OK
    rec = await get_job(b, jx)
    assert (rec.state, rec.reason) == ("quarantined", "no agent named 'nobody'")
    assert await places_of(b, jx) == ["quarantined"]
    ev = await last_event(b, jx)
    assert (ev.frm, ev.to, ev.worker) == ("active", "quarantined", "w")
    assert await places_of(b, jy) == ["cancelled"]
    task = await get_task(b, res.task_id)
    assert (task.status, task.dead) == ("failed", 1)
    assert [j.id for j in await list_dead(b)] == [jx]


async def test_quarantine_with_a_stale_token_is_refused(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await quarantine(b, Quarantine(Lease(job.id, "old", "w"), "r")) == Code.STALE_TOKEN
    assert await quarantine(b, Quarantine(Lease("t0.nope", "x", "w"), "r")) == Code.NOT_FOUND
    assert await places_of(b, job.id) == ["active"]
