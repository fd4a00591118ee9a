"""retry_dead.lua and discard_dead.lua: handle a dead letter by retrying or discarding it."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import Conflict, NotFound
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task
from hiveq.queue.retry import Failure, discard_dead, fail, retry_dead
from tests.queue.helpers import enqueue_task, last_event, places_of, st


async def _kill(b: Broker, *subs: str) -> list[str]:
    """Claim and fatally fail the waiting jobs of these subtasks; return their ids."""
    ids = []
    for job in await claim(b, "w", ["a"], 10):
        if job.subtask_id in subs:
            await fail(b, [Failure(job.lease, "boom", fatal=True)])
            ids.append(job.id)
        else:
            await complete(b, [Completion(job.lease, job.subtask_id)])
    return ids


async def test_retry_dead_revives_the_job_its_cancelled_dependents_and_the_task(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)), st("z", deps=("y",)))
    jx, jy, jz = res.job_ids
    await _kill(b, "x")
    assert (await get_task(b, res.task_id)).status == "failed"
    await retry_dead(b, jx, "alice")
    rec = await get_job(b, jx)
    assert (rec.state, rec.attempts, rec.failures, rec.reason) == ("waiting", 0, 0, None)
    ev = await last_event(b, jx)
    assert (ev.frm, ev.to, ev.reason) == ("dead", "waiting", "retried by alice")
    assert [await places_of(b, j) for j in (jy, jz)] == [["blocked"], ["blocked"]]
    assert (await last_event(b, jy)).reason == f"dependency {jx} retried"
    task = await get_task(b, res.task_id)
    assert (task.status, task.dead, task.cancelled) == ("running", 0, 0)
    for _ in range(3):
        [job] = await claim(b, "w", ["a"], 5)
        await complete(b, [Completion(job.lease, "ok")])
    assert (await get_task(b, res.task_id)).status == "succeeded"


async def test_retry_dead_keeps_a_join_cancelled_while_another_dependency_is_still_dead(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("l"), st("r"), st("join", deps=("l", "r")))
    jl, jr, jjoin = res.job_ids
    await _kill(b, "l", "r")
    await retry_dead(b, jl, "alice")
    assert await places_of(b, jjoin) == ["cancelled"]  # r is still dead: join cannot run
    await discard_dead(b, jr, "alice")
    [job] = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(job.lease, "ok")])
    task = await get_task(b, res.task_id)
    assert (task.status, task.succeeded, task.cancelled, task.dead) == ("failed", 1, 2, 0)


async def test_retry_dead_refuses_live_unknown_and_user_cancelled_jobs(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    with pytest.raises(Conflict, match="cannot be retried"):
        await retry_dead(b, res.job_ids[0], "alice")
    with pytest.raises(NotFound):
        await retry_dead(b, "tnope.x", "alice")
    [jx] = await _kill(b, "x")
    assert (await get_task(b, res.task_id)).status == "failed"
    res2 = await enqueue_task(b, st("p"), st("q"))
    jobs = await claim(b, "w", ["a"], 2)
    await fail(b, [Failure(jobs[0].lease, "boom", fatal=True)])
    await cancel_task(b, res2.task_id)
    with pytest.raises(Conflict):
        await retry_dead(b, jobs[0].id, "alice")
    assert await places_of(b, jx) == ["dead"]


async def test_discard_dead_moves_the_letter_to_cancelled_and_starts_retention(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [jx] = await _kill(b, "x")
    assert await b.redis.zscore(b.keys.finished, res.task_id) is None
    await discard_dead(b, jx, "bob")
    assert await places_of(b, jx) == ["cancelled"]
    ev = await last_event(b, jx)
    assert (ev.frm, ev.to, ev.reason) == ("dead", "cancelled", "discarded by bob")
    task = await get_task(b, res.task_id)
    assert (task.status, task.dead, task.cancelled) == ("failed", 0, 1)
    assert await b.redis.zscore(b.keys.finished, res.task_id) is not None
    with pytest.raises(Conflict, match="cannot be discarded"):
        await discard_dead(b, jx, "bob")
