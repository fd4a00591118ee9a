"""signal.lua with suspend.lua and promote_due.lua: a signal sent before the wait is kept, one
sent during it resumes the job, each wait receives exactly one signal, and a timed-out wait is
woken by maintenance with the timeout stored."""

from __future__ import annotations

import asyncio
import json

import pytest

from hiveq.contract.errors import Conflict, NotFound, ValidationFailed
from hiveq.contract.limits import SIGNALS_PENDING_MAX
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job
from hiveq.queue.maintain import promote_due
from hiveq.queue.steps import load_steps
from hiveq.queue.suspend import signal, wait_signal
from tests.queue.helpers import enqueue_task, last_event, places_of, st
from tests.support.waiting import until


async def test_a_signal_sent_before_the_wait_is_kept_and_taken_without_suspending(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [jid] = res.job_ids
    sent = await signal(b, jid, "approval", {"ok": True}, "ann")
    assert (sent.delivered, sent.pending) == (False, 1)
    [job] = await claim(b, "w", ["a"], 1)
    got = await wait_signal(b, job.lease, "hiveq.signal:approval", "approval", None)
    assert got.ready
    entry = json.loads(got.outcome)
    assert (entry["name"], entry["by"], entry["data"]) == ("approval", "ann", {"ok": True})
    assert await places_of(b, jid) == ["active"]
    assert await b.redis.llen(b.keys.job_signals(jid)) == 0
    assert json.loads((await load_steps(b, jid))["hiveq.signal:approval"])["data"] == {"ok": True}


async def test_a_signal_sent_during_the_wait_resumes_the_job_once_and_a_second_one_is_kept(
    any_broker: Broker,
) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert not (await wait_signal(b, job.lease, "hiveq.signal:go", "go", None)).ready
    assert (await get_job(b, job.id)).wait.name == "go"  # type: ignore[union-attr]
    other = await signal(b, job.id, "stop", 0, "bob")  # another name: kept, no wake-up
    assert (other.delivered, await places_of(b, job.id)) == (False, ["suspended"])
    first, second = await asyncio.gather(signal(b, job.id, "go", 1, "ann"), signal(b, job.id, "go", 2, "cid"))
    assert sorted([first.delivered, second.delivered]) == [False, True]  # exactly one is delivered
    assert await places_of(b, job.id) == ["waiting"]
    stored = json.loads((await load_steps(b, job.id))["hiveq.signal:go"])
    winner = first if first.delivered else second
    assert stored["data"] == (1 if winner is first else 2)
    [again] = await claim(b, "w", ["a"], 1)
    nxt = await wait_signal(b, again.lease, "hiveq.signal:go#2", "go", None)  # the next wait: the other one
    assert nxt.ready and json.loads(nxt.outcome)["data"] == (2 if winner is first else 1)
    kinds = [
        (e.type, (e.data or {}).get("delivered")) for e in await job_history(b, job.id) if e.type == "signal"
    ]
    assert kinds == [("signal", False), ("signal", True), ("signal", False), ("signal", None)]
    assert (await audit(b)).ok


async def test_a_wait_that_times_out_is_woken_by_maintenance_with_the_timeout_stored(
    any_broker: Broker,
) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await wait_signal(b, job.lease, "hiveq.signal:go", "go", 0.05)
    deadline = await b.redis.zscore(b.keys.suspended, job.id)
    assert deadline is not None and deadline != float("inf")
    assert await until(lambda: promote_due(b), what="the timed-out wait to wake") == 1
    assert await places_of(b, job.id) == ["waiting"]
    assert json.loads((await load_steps(b, job.id))["hiveq.signal:go"]) == {"timeout": True}
    assert "timed out" in ((await last_event(b, job.id)).reason or "")
    late = await signal(b, job.id, "go", "late", "ann")  # kept for a later wait, never lost
    assert (late.delivered, late.pending) == (False, 1)


async def test_signals_to_unknown_or_finished_jobs_bad_names_and_a_full_inbox_are_refused(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"), st("y"))
    with pytest.raises(NotFound, match="unknown job id"):
        await signal(b, f"{res.task_id}.nope", "go", 1, "ann")
    with pytest.raises(ValidationFailed, match="signal name"):
        await signal(b, res.job_ids[0], "no spaces", 1, "ann")
    [job] = [j for j in await claim(b, "w", ["a"], 2) if j.subtask_id == "x"]
    await complete(b, [Completion(job.lease, "done")])
    with pytest.raises(Conflict, match="has finished"):
        await signal(b, job.id, "go", 1, "ann")
    for i in range(SIGNALS_PENDING_MAX):
        await signal(b, res.job_ids[1], "go", i, "ann")
    with pytest.raises(Conflict, match=f"already keeps {SIGNALS_PENDING_MAX} signals"):
        await signal(b, res.job_ids[1], "go", "one too many", "ann")
