"""recover.lua: a vanished job goes back where it belongs, one delivery counted; at the limit, dead."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import Conflict, NotFound
from hiveq.contract.states import JobState
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task, stats
from hiveq.queue.retry import Failure, fail, retry_dead
from hiveq.queue.vanish import Seen, mark_vanished, recover
from tests.queue.helpers import enqueue_task, last_event, members, places_of, st, variant

SEEN = Seen(suspect="10.0.0.9:5555 name='rogue'")


async def vanish(b: Broker, job_id: str, key: str) -> None:
    await b.redis.zrem(key, job_id)
    assert await mark_vanished(b, SEEN, [(job_id, "")]) == [0]


async def test_a_vanished_waiting_job_goes_back_to_its_queue_position(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    x, y = res.job_ids
    await vanish(b, x, b.keys.queue("a"))
    assert await recover(b, x, "me") == JobState.WAITING
    assert await members(b, b.keys.queue("a")) == [x, y]  # ahead of y again, as before
    job = await get_job(b, x)
    assert (job.state, job.attempts, job.reason) == ("waiting", 1, None)
    ev = await last_event(b, x)
    assert (ev.frm, ev.to) == ("vanished", "waiting") and ev.reason == "recovered by me (delivery 1 of 5)"
    assert (await stats(b))["recovered"] == 1
    [again] = await claim(b, "w", ["a"], 1)
    assert (again.id, again.attempt) == (x, 2)


async def test_a_vanished_job_with_a_pending_dependency_goes_back_to_blocked(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    _x, y = res.job_ids
    await vanish(b, y, b.keys.blocked)
    assert await recover(b, y, "me") == JobState.BLOCKED
    assert await places_of(b, y) == ["blocked"]
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, 1)])
    assert await places_of(b, y) == ["waiting"]  # released by its dependency as usual


async def test_a_dependency_that_succeeded_meanwhile_lets_it_go_straight_to_waiting(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    _x, y = res.job_ids
    await vanish(b, y, b.keys.blocked)
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, 1)])
    assert await recover(b, y, "me") == JobState.WAITING


async def test_a_dependency_dead_meanwhile_cancels_it_instead(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)), st("z", deps=("y",)))
    x, y, z = res.job_ids
    await vanish(b, y, b.keys.blocked)
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "boom", fatal=True)])
    assert await recover(b, y, "me") == JobState.CANCELLED
    assert (await get_job(b, z)).state == JobState.CANCELLED  # and what was waiting for it
    assert (await get_task(b, res.task_id)).status == "failed"
    await retry_dead(b, x, "me")  # retrying the dead dependency revives both, as for any cascade
    assert [(await get_job(b, j)).state for j in (y, z)] == [JobState.BLOCKED, JobState.BLOCKED]


async def test_a_vanished_job_in_backoff_goes_back_to_delayed_until_due(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=600)
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "rate limited")])
    due = (await get_job(b, job.id)).due_ms
    await vanish(b, job.id, b.keys.delayed)
    assert await recover(b, job.id, "me") == JobState.DELAYED
    assert await b.redis.zscore(b.keys.delayed, job.id) == due
    assert res.job_ids == [job.id]


async def test_at_the_delivery_limit_it_is_dead_lettered_with_the_reason(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    x = res.job_ids[0]
    await b.redis.hset(b.keys.job(x), "max_deliveries", 2)
    await vanish(b, x, b.keys.queue("a"))
    assert await recover(b, x, "me") == JobState.WAITING
    await vanish(b, x, b.keys.queue("a"))
    assert await recover(b, x, "me") == JobState.DEAD
    job = await get_job(b, x)
    assert job.reason is not None and "deliveries used up (delivery 2 of 2)" in job.reason
    assert f"last from {b.keys.queue('a')}" in job.reason and "rogue" in job.reason
    assert (await get_task(b, res.task_id)).status == "failed"
    assert await places_of(b, x) == ["dead"]


async def test_recover_refuses_unknown_ids_jobs_that_did_not_vanish_and_lost_agents(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    with pytest.raises(NotFound):
        await recover(b, "t0.nope", "me")
    with pytest.raises(Conflict, match="is waiting, not vanished"):
        await recover(b, res.job_ids[0], "me")
    await b.redis.delete(b.keys.job(res.job_ids[1]))
    await mark_vanished(b, SEEN, [(res.job_ids[1], b.keys.blocked)])
    with pytest.raises(Conflict, match="neither its agent nor its input survived"):
        await recover(b, res.job_ids[1], "me")
    with pytest.raises(Conflict, match="hiveq recover"):  # dlq retry points to recover
        await retry_dead(b, res.job_ids[1], "me")


async def test_cancelling_a_task_cancels_its_vanished_job_out_of_the_vanished_place(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    await vanish(b, res.job_ids[0], b.keys.queue("a"))
    assert await cancel_task(b, res.task_id) == 1
    assert await places_of(b, res.job_ids[0]) == ["cancelled"]
    assert (await get_task(b, res.task_id)).status == "cancelled"
