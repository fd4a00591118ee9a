"""complete.lua: store the result, release dependents, update the task, all in one step."""

from __future__ import annotations

import pytest

from hiveq.aggregate import task_view
from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import progress
from hiveq.queue.inspect import get_job, get_task, stats
from tests.queue.helpers import enqueue_task, last_event, places_of, st, stream_events


async def test_complete_stores_the_result_and_finishes_the_task(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("only"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await complete(b, [Completion(job.lease, {"ok": True})]) == [Code.OK]
    rec = await get_job(b, job.id)
    assert (rec.state, rec.result, rec.lease_deadline_ms) == ("succeeded", {"ok": True}, None)
    assert await places_of(b, job.id) == ["succeeded"]
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.to, ev.worker, ev.attempt) == ("active", "succeeded", "w", 1)
    task = await get_task(b, res.task_id)
    assert (task.status, task.succeeded, task.progress) == ("succeeded", 1, 1.0)
    assert await b.redis.zscore(b.keys.finished, res.task_id) is not None
    task_events = [(e.frm, e.to) for e in await stream_events(b) if e.type == "task"]
    assert task_events == [("", "queued"), ("queued", "running"), ("running", "succeeded")]
    assert (await stats(b))["succeeded"] == 1


async def test_a_succeeded_job_shows_progress_1_not_the_last_fraction_its_agent_reported(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("only"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await progress(b, job.lease, 0.67, "writing") == Code.OK
    assert (await get_job(b, job.id)).progress == 0.67
    assert await complete(b, [Completion(job.lease, "done")]) == [Code.OK]
    assert (await get_job(b, job.id)).progress == 1.0
    [sub] = (await task_view(b, res.task_id)).subtasks
    assert (sub.state, sub.progress) == ("succeeded", 1.0)


async def test_complete_updates_progress_of_a_partly_done_task(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    [j1, _] = await claim(b, "w", ["a"], 2)
    await complete(b, [Completion(j1.lease, 1)])
    task = await get_task(b, res.task_id)
    assert (task.status, task.succeeded, task.progress) == ("running", 1, 0.5)


async def test_stale_token_complete_is_refused_and_records_nothing(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await complete(b, [Completion(Lease(job.id, "old-token", "w"), "forged")]) == [Code.STALE_TOKEN]
    rec = await get_job(b, job.id)
    assert (rec.state, rec.result) == ("active", None)
    assert await complete(b, [Completion(job.lease, "real")]) == [Code.OK]
    assert await complete(b, [Completion(job.lease, "twice")]) == [Code.STALE_TOKEN]
    assert (await get_job(b, job.id)).result == "real"
    assert (await stats(b))["succeeded"] == 1


async def test_complete_of_an_unknown_job_is_not_found(any_broker: Broker) -> None:
    assert await complete(any_broker, [Completion(Lease("t0.nope", "x", "w"), None)]) == [Code.NOT_FOUND]


async def test_complete_batch_returns_one_code_per_job_in_order(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"), st("y"))
    j1, j2 = await claim(b, "w", ["a"], 2)
    codes = await complete(
        b,
        [
            Completion(j1.lease, 1),
            Completion(Lease(j2.id, "bad", "w"), 2),
            Completion(Lease("t0.zz", "t", "w"), 3),
        ],
    )
    assert codes == [Code.OK, Code.STALE_TOKEN, Code.NOT_FOUND]


async def test_dependency_chain_releases_one_job_at_a_time(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("a"), st("b", deps=("a",)), st("c", deps=("b",)))
    order = []
    for _ in range(3):
        [job] = await claim(b, "w", ["a"], 5)  # exactly one runnable at each step
        order.append(job.subtask_id)
        await complete(b, [Completion(job.lease, job.subtask_id)])
    assert order == ["a", "b", "c"]
    assert (await get_task(b, res.task_id)).status == "succeeded"


async def test_fan_out_releases_every_dependent_at_once(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(
        b, st("root"), st("x", deps=("root",)), st("y", deps=("root",)), st("z", deps=("root",))
    )
    [root] = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(root.lease, "r")])
    for jid in res.job_ids[1:]:
        assert await places_of(b, jid) == ["waiting"]
        ev = await last_event(b, jid)
        assert (ev.frm, ev.to, ev.reason) == ("blocked", "waiting", "dependencies succeeded")
    assert {j.subtask_id for j in await claim(b, "w", ["a"], 5)} == {"x", "y", "z"}


async def test_diamond_releases_the_join_only_after_both_branches(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(
        b,
        st("top"),
        st("left", deps=("top",)),
        st("right", deps=("top",)),
        st("join", deps=("left", "right")),
    )
    join = res.job_ids[3]
    [top] = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(top.lease, "t")])
    left, right = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(left.lease, "l")])
    assert await places_of(b, join) == ["blocked"]
    await complete(b, [Completion(right.lease, "r")])
    assert await places_of(b, join) == ["waiting"]
    [j] = await claim(b, "w", ["a"], 5)
    assert j.id == join and j.dependency_results == {"left": "l", "right": "r"}


async def test_completing_both_branches_in_one_batch_releases_the_join_once(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("l"), st("r"), st("join", deps=("l", "r")))
    left, right = await claim(b, "w", ["a"], 5)
    await complete(b, [Completion(left.lease, 1), Completion(right.lease, 2)])
    assert await places_of(b, res.job_ids[2]) == ["waiting"]
    assert len(await claim(b, "w", ["a"], 5)) == 1


async def test_a_batch_mixing_two_workers_leases_is_refused_before_anything_is_written(
    broker: Broker,
) -> None:
    b = broker
    await enqueue_task(b, st("x"), st("y"))
    [mine] = await claim(b, "w1", ["a"], 1)
    [theirs] = await claim(b, "w2", ["a"], 1)
    with pytest.raises(ValueError, match=r"exactly one worker, got \['w1', 'w2'\]"):
        await complete(b, [Completion(mine.lease, 1), Completion(theirs.lease, 2)])
    assert [(await get_job(b, j.id)).state for j in (mine, theirs)] == ["active", "active"]
