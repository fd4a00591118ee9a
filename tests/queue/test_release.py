"""release.lua: a stopping worker hands its leases back at once, without spending a delivery."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job
from hiveq.queue.release import release
from tests.queue.helpers import enqueue_task, last_event, places_of, st


async def test_released_jobs_return_to_the_head_of_their_priority(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("first"), st("second"))
    [first] = await claim(b, "w", ["a"], 1)
    codes = await release(b, [first.lease], "shutting down")
    assert codes == [Code.OK]
    rec = await get_job(b, first.id)
    assert (rec.state, rec.attempts, rec.worker) == ("waiting", 0, "w")
    assert await places_of(b, first.id) == ["waiting"]
    ev = await last_event(b, first.id)
    assert (ev.frm, ev.to, ev.reason, ev.worker) == ("active", "waiting", "shutting down", "w")
    [again] = await claim(b, "w2", ["a"], 1)
    assert again.id == first.id and again.attempt == 1


async def test_release_with_a_stale_token_is_refused(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    stale = [Lease(job.id, "old", "w"), Lease("t0.nope", "x", "w")]
    assert await release(b, stale) == [Code.STALE_TOKEN, Code.NOT_FOUND]
    assert await places_of(b, job.id) == ["active"]
