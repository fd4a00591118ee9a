"""suspend.lua and the scripts that end a wait: a durable agent waiting for its children holds no
lease; the last child to finish (succeeded, dead, cancelled) resumes it with their states stored
as the wait's step; cancelling the parent cancels its children."""

from __future__ import annotations

import json

import pytest

from hiveq.contract.errors import Code, ValidationFailed
from hiveq.contract.lease import LeaseLost
from hiveq.contract.models import ClaimedJob, SubtaskSpec
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_job, cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import last_event_id, read_events
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.inspect import get_job, get_jobs
from hiveq.queue.retry import Failure, fail
from hiveq.queue.spawn import spawn
from hiveq.queue.steps import load_steps
from hiveq.queue.suspend import wait_children
from tests.queue.helpers import enqueue_task, hash_of, job_edges, last_event, off_table, places_of, st


async def parent_with_children(b: Broker, n: int = 2) -> tuple[ClaimedJob, list[str]]:
    await enqueue_task(b, st("plan"))
    [parent] = await claim(b, "w1", ["a"], 1)
    kids = [SubtaskSpec(id=f"k{i}", agent="b", input=i) for i in range(n)]
    return parent, await spawn(b, parent.lease, "hiveq.spawn", kids)


async def test_waiting_for_unfinished_children_suspends_the_job_and_frees_its_lease(
    any_broker: Broker,
) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b)
    got = await wait_children(b, parent.lease, "hiveq.wait", kids)
    assert not got.ready
    assert await places_of(b, parent.id) == ["suspended"]
    assert await b.redis.zscore(b.keys.suspended, parent.id) == float("inf")  # no timeout
    rec = await get_job(b, parent.id)
    assert rec.state == "suspended" and rec.attempts == 0  # a suspension is not a delivery
    assert rec.wait is not None and (rec.wait.kind, rec.wait.children) == ("children", ["k0", "k1"])
    ev = await last_event(b, parent.id)
    assert (ev.frm, ev.to, ev.worker) == ("active", "suspended", "w1")
    assert "waiting for its children" in (ev.reason or "")
    assert (await heartbeat(b, "w1", [parent.lease], 1)).lost == [parent.id]  # no lease to extend
    with pytest.raises(LeaseLost):
        await wait_children(b, parent.lease, "hiveq.wait", kids)
    assert (await audit(b)).ok


async def test_the_last_child_to_finish_resumes_the_parent_with_every_state_stored(
    any_broker: Broker,
) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b, 3)
    await wait_children(b, parent.lease, "hiveq.wait", kids)
    c0, c1, c2 = sorted(await claim(b, "w2", ["b"], 3), key=lambda j: j.id)
    await complete(b, [Completion(c0.lease, 0)])
    await fail(b, [Failure(c1.lease, "boom", fatal=True)])
    assert await places_of(b, parent.id) == ["suspended"]
    await complete(b, [Completion(c2.lease, 4)])
    assert await places_of(b, parent.id) == ["waiting"]
    assert (await last_event(b, parent.id)).reason == "its children finished"
    stored = json.loads((await load_steps(b, parent.id))["hiveq.wait"])
    assert stored == {"children": {kids[0]: "succeeded", kids[1]: "dead", kids[2]: "succeeded"}}
    assert "wait" not in await hash_of(b, b.keys.job(parent.id))
    [again] = await claim(b, "w3", ["a"], 1)  # any worker runs it on; the same delivery number
    assert (again.id, again.attempt) == (parent.id, 1)
    assert (await audit(b)).ok


async def test_children_that_finished_already_are_no_reason_to_suspend(any_broker: Broker) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b, 1)
    [c] = await claim(b, "w2", ["b"], 1)
    await complete(b, [Completion(c.lease, "r")])
    got = await wait_children(b, parent.lease, "hiveq.wait", kids)
    assert got.ready and json.loads(got.outcome) == {"children": {kids[0]: "succeeded"}}
    assert await places_of(b, parent.id) == ["active"]
    assert (await load_steps(b, parent.id))["hiveq.wait"] == got.outcome


async def test_only_the_jobs_it_spawned_can_be_waited_for(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("plan"), st("other"))
    [parent] = [j for j in await claim(b, "w1", ["a"], 2) if j.subtask_id == "plan"]
    with pytest.raises(ValidationFailed, match="was not spawned by job"):
        await wait_children(b, parent.lease, "hiveq.wait", [f"{res.task_id}.other"])
    assert await places_of(b, parent.id) == ["active"]


async def test_cancelling_a_parent_cancels_its_children_and_says_who(any_broker: Broker) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b)
    await wait_children(b, parent.lease, "hiveq.wait", kids)
    [running] = await claim(b, "w2", ["b"], 1)
    assert await cancel_job(b, parent.id, "cancelled from the CLI by ann@laptop") == 3
    assert [j.state for j in await get_jobs(b, [parent.id, *kids])] == ["cancelled"] * 3
    assert (await last_event(b, parent.id)).reason == "cancelled from the CLI by ann@laptop"
    kid_ev = await last_event(b, running.id)
    assert (kid_ev.frm, kid_ev.worker) == ("active", "w2")
    assert kid_ev.reason == f"parent {parent.id} was cancelled: cancelled from the CLI by ann@laptop"
    assert await b.redis.zrange(b.keys.inbox("w2"), 0, -1) == ["1"]  # its worker hears of it at once
    assert (await heartbeat(b, "w2", [running.lease], 1)).lost == [running.id]
    assert (await audit(b)).ok


async def test_a_child_cancelled_alone_ends_its_parents_wait_and_a_task_cancel_ends_everything(
    any_broker: Broker,
) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b, 1)
    await wait_children(b, parent.lease, "hiveq.wait", kids)
    await cancel_job(b, kids[0], "not needed")
    assert await places_of(b, parent.id) == ["waiting"]
    assert json.loads((await load_steps(b, parent.id))["hiveq.wait"]) == {"children": {kids[0]: "cancelled"}}
    [again] = await claim(b, "w1", ["a"], 1)
    more = await spawn(b, again.lease, "hiveq.spawn#2", [SubtaskSpec(id="k9", agent="b")])
    await wait_children(b, again.lease, "hiveq.wait#2", more)
    task = parent.task_id
    assert await cancel_task(b, task) == 2  # the suspended parent and its new child
    assert await places_of(b, parent.id) == ["cancelled"]
    assert await b.redis.zcard(b.keys.suspended) == 0
    assert (await audit(b)).ok


async def test_a_foreign_steps_key_never_stops_the_resume_half_way(any_broker: Broker) -> None:
    b = any_broker
    parent, kids = await parent_with_children(b, 1)
    await wait_children(b, parent.lease, "hiveq.wait", kids)
    await b.redis.delete(b.keys.job_steps(parent.id))
    await b.redis.set(b.keys.job_steps(parent.id), "not ours")  # another application's value
    [child] = await claim(b, "w2", ["b"], 1)
    since = await last_event_id(b)
    assert await complete(b, [Completion(child.lease, 1)]) == [Code.OK]
    _, events = await read_events(b, since)
    assert off_table(job_edges(events)) == []
    assert await places_of(b, parent.id) == ["waiting"]  # resumed all the same ...
    assert any(e.type == "anomaly" and "step hiveq.wait was not stored" in (e.reason or "") for e in events)
    assert await b.redis.get(b.keys.job_steps(parent.id)) == "not ours"  # ... and the value left alone
    assert (await audit(b)).ok


async def test_a_foreign_inbox_key_leaves_the_cancel_whole_and_the_worker_learns_at_its_heartbeat(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w1", ["a"], 1)
    await b.redis.set(b.keys.inbox("w1"), "not ours")
    assert await cancel_task(b, res.task_id) == 1
    assert await places_of(b, job.id) == ["cancelled"]
    assert (await heartbeat(b, "w1", [job.lease], 1)).lost == [job.id]
