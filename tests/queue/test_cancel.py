"""cancel.lua: cancel a task (everything unfinished, running jobs included) or one job."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import Code, Conflict, NotFound
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_job, cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat
from hiveq.queue.inspect import get_job, get_task, stats
from hiveq.queue.retry import Failure, fail
from tests.queue.helpers import enqueue_task, last_event, places_of, st


async def test_cancel_of_a_running_task_revokes_the_lease_and_refuses_its_complete(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("run"), st("wait"), st("later", deps=("run",)), st("done"))
    jrun, jwait, jlater, jdone = res.job_ids
    jobs = {j.subtask_id: j for j in await claim(b, "w", ["a"], 2)}  # run and wait are taken
    [done] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(done.lease, "ok")])
    run = jobs["run"]
    assert (await get_job(b, jobs["wait"].id)).state == "active"
    assert await cancel_task(b, res.task_id, "user changed their mind") == 3
    for jid in (jrun, jwait, jlater):
        assert await places_of(b, jid) == ["cancelled"]
    assert await places_of(b, jdone) == ["succeeded"]
    ev = await last_event(b, jrun)
    assert (ev.frm, ev.to, ev.worker, ev.reason) == ("active", "cancelled", "w", "user changed their mind")
    assert (await last_event(b, jlater)).frm == "blocked"
    # The running worker learns at its next heartbeat, and its late result is not recorded.
    assert (await heartbeat(b, "w", [run.lease], 1)).lost == [run.id]
    assert await complete(b, [Completion(run.lease, "late")]) == [Code.STALE_TOKEN]
    assert await fail(b, [Failure(run.lease, "late")]) == [Code.STALE_TOKEN]
    assert (await get_job(b, jrun)).result is None
    task = await get_task(b, res.task_id)
    assert (task.status, task.cancelled, task.succeeded) == ("cancelled", 3, 1)
    assert (await stats(b))["cancelled"] == 3
    assert await b.redis.zscore(b.keys.finished, res.task_id) is not None


async def test_cancel_of_a_finished_task_is_a_conflict_and_unknown_ids_are_not_found(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, 1)])
    with pytest.raises(Conflict, match="already finished"):
        await cancel_task(b, res.task_id)
    with pytest.raises(Conflict):
        await cancel_job(b, job.id)
    with pytest.raises(NotFound, match="unknown task id 'tnope'"):
        await cancel_task(b, "tnope")
    with pytest.raises(NotFound, match="unknown job id"):
        await cancel_job(b, "tnope.x")


async def test_cancel_of_one_job_cancels_what_depends_on_it_and_nothing_else(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)), st("z", deps=("y",)), st("free"))
    jx, jy, jz, jfree = res.job_ids
    assert await cancel_job(b, jx) == 3
    assert [await places_of(b, j) for j in (jx, jy, jz, jfree)] == [
        ["cancelled"],
        ["cancelled"],
        ["cancelled"],
        ["waiting"],
    ]
    assert (await last_event(b, jz)).reason == f"dependency {jx} was cancelled"
    task = await get_task(b, res.task_id)
    assert (task.status, task.cancelled) == ("queued", 3)
    [free] = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(free.lease, 1)])
    assert (await get_task(b, res.task_id)).status == "cancelled"


async def test_cancel_of_a_delayed_job_removes_it_from_delayed(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e")])
    await cancel_job(b, job.id)
    assert await places_of(b, job.id) == ["cancelled"]
    assert (await last_event(b, job.id)).frm == "delayed"
