"""A foreign Redis type on any fixed key a script declares makes that script refuse before it
writes anything: the namespace is unchanged and the error names the key, the type found and
the type hiveq keeps there. Each script is called in a state where it would otherwise write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hiveq.contract.errors import WrongTypeError
from hiveq.contract.lease import Lease
from hiveq.contract.limit_rules import LimitRule
from hiveq.contract.models import SubtaskSpec
from hiveq.contract.views import ScheduleRequest
from hiveq.queue import archiving
from hiveq.queue.assemble import key_rows
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.epoch import EpochGuard
from hiveq.queue.fetch import claim
from hiveq.queue.heartbeat import heartbeat, progress
from hiveq.queue.keys import FIXED_KEY_TYPES
from hiveq.queue.limits import report_usage, set_limit
from hiveq.queue.maintain import expire_finished, promote_due, reap_expired
from hiveq.queue.output import append_output
from hiveq.queue.registry import deregister_worker, register_worker
from hiveq.queue.release import release
from hiveq.queue.repair import ForeignValue, set_aside
from hiveq.queue.retry import Failure, Quarantine, discard_dead, fail, quarantine, retry_dead
from hiveq.queue.scripts import SCRIPT_NAMES, script_keys
from hiveq.queue.spawn import spawn
from hiveq.queue.steps import step_done
from hiveq.queue.suspend import signal, wait_children, wait_signal
from hiveq.queue.vanish import Seen, mark_vanished, recover
from hiveq.schedule import store as schedules
from tests.queue.helpers import enqueue_task, server_ms, snapshot, st, submission, variant
from tests.support.waiting import until

Call = Callable[[], Awaitable[Any]]


async def _leased(b: Broker, *, lease_s: float | None = None) -> Lease:
    """A registered worker `w` holding the lease of job x, which job y depends on."""
    await register_worker(b, "w", ["a"], 1)
    await enqueue_task(b, st("x"), st("y", deps=("x",)))
    [job] = await claim(variant(b, lease_s=lease_s) if lease_s else b, "w", ["a"], 1)
    return job.lease


async def _dead(b: Broker) -> str:
    lease = await _leased(b)
    await fail(b, [Failure(lease, "boom", fatal=True)])
    return lease.job_id


async def _past(b: Broker, job_id: str, field: str) -> None:
    """Wait until Redis time passes the job's `field` (a due time or lease deadline, in ms)."""
    ms = int(await b.redis.hget(b.keys.job(job_id), field) or 0)
    await until(lambda: _later(b, ms), what=f"{field} of {job_id} to pass")


async def _later(b: Broker, ms: int) -> bool:
    return await server_ms(b) > ms


async def s_claim_namespace(b: Broker) -> Call:
    await b.redis.delete(b.keys.meta)  # a first use: the owner record is written
    return b.claim_namespace


async def s_enqueue(b: Broker) -> Call:
    return lambda: enqueue_task(b, st("x"), st("y", deps=("x",)), idem="once")


async def s_enqueue_delayed(b: Broker) -> Call:
    """A task whose start is ahead: its ready job goes to `delayed`."""
    sub = submission(st("x")).model_copy(update={"delay_ms": 60_000})
    return lambda: enqueue(b, [sub])


async def s_claim(b: Broker) -> Call:
    await enqueue_task(b, st("x"))
    return lambda: claim(b, "w", ["a"], 5)


async def s_heartbeat(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: heartbeat(b, "w", [lease], 1)


async def s_progress(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: progress(b, lease, 0.5, "half way")


async def s_complete(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: complete(b, [Completion(lease, {"ok": True})])


async def s_fail(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: fail(b, [Failure(lease, "boom", fatal=True, traceback="Traceback …")])


async def s_release(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: release(b, [lease])


async def s_quarantine(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: quarantine(b, Quarantine(lease, "undecodable"))


async def s_cancel(b: Broker) -> Call:
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    return lambda: cancel_task(b, res.task_id)


async def s_retry_dead(b: Broker) -> Call:
    job_id = await _dead(b)
    return lambda: retry_dead(b, job_id, "ops")


async def s_discard_dead(b: Broker) -> Call:
    job_id = await _dead(b)
    return lambda: discard_dead(b, job_id, "ops")


async def s_promote_due(b: Broker) -> Call:
    lease = await _leased(b)
    await fail(variant(b, backoff_base_s=0.001), [Failure(lease, "boom")])
    await _past(b, lease.job_id, "due")
    return lambda: promote_due(b)


async def s_reap_expired(b: Broker) -> Call:
    lease = await _leased(b, lease_s=0.001)
    await _past(b, lease.job_id, "deadline")
    return lambda: reap_expired(b)


async def s_expire_finished(b: Broker) -> Call:
    await enqueue_task(b, st("x"), idem="once")
    [job] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(job.lease, "ok")])
    return lambda: expire_finished(variant(b, retention_s=0))


async def s_register_worker(b: Broker) -> Call:
    return lambda: register_worker(b, "w", ["a"], 1, modules={"a": "my_agents"})


async def s_deregister_worker(b: Broker) -> Call:
    await register_worker(b, "w", ["a"], 1)
    return lambda: deregister_worker(b, "w")


async def s_watch_tick(b: Broker) -> Call:
    await enqueue_task(b, st("x"))
    return lambda: b.run("watch_tick", ["the watch", 2000, 0, 256])  # takes its lease


async def s_find_vanished(b: Broker) -> Call:
    await enqueue_task(b, st("x"))
    return lambda: b.run("find_vanished", ["rank", 0, 100, "a"])  # reads only


async def _taken(b: Broker) -> str:
    res = await enqueue_task(b, st("x"), st("y", deps=("x",)))
    await b.redis.zrem(b.keys.queue("a"), res.job_ids[0])  # a foreign client took it
    return res.job_ids[0]


async def s_mark_vanished(b: Broker) -> Call:
    job_id = await _taken(b)
    return lambda: mark_vanished(b, Seen(suspect="a thief"), [(job_id, "")])


async def s_recover(b: Broker) -> Call:
    job_id = await _taken(b)
    await mark_vanished(b, Seen(), [(job_id, "")])
    return lambda: recover(b, job_id, "ops")


async def s_record_loss(b: Broker) -> Call:
    await b.redis.delete(b.keys.meta)  # the namespace's data went: the owner record is re-created
    return lambda: EpochGuard(b, "w").report(["x"])


async def s_archive_lease(b: Broker) -> Call:
    return lambda: archiving.lease(b, "archiver-1", "take", 5000, "sqlite")


async def s_mark_archived(b: Broker) -> Call:
    t = await enqueue_task(b, st("x"))
    return lambda: archiving.mark_archived(b, 1, [t.task_id])


async def s_trim_events(b: Broker) -> Call:
    await enqueue_task(b, st("x"))
    await archiving.ensure_group(b)
    return lambda: archiving.trim_events(b, "99999999999999-0")


async def s_snapshot_tasks(b: Broker) -> Call:
    t = await enqueue_task(b, st("x"))
    return lambda: archiving.snapshot_tasks(b, [t.task_id])


async def s_set_aside(b: Broker) -> Call:
    """`hiveq repair` moving another application's list off an agent's queue key."""
    await b.redis.lpush(b.keys.queue("a"), "foreign")
    return lambda: set_aside(b, ForeignValue(b.keys.queue("a"), "list", "zset"))


async def s_set_aside_of_a_key_of_hiveqs_own_type(b: Broker) -> Call:
    await enqueue_task(b, st("x"))  # q:a holds hiveq's zset: nothing to move
    return lambda: set_aside(b, ForeignValue(b.keys.queue("a"), "list", "zset"))


async def s_claim_of_a_member_without_a_record(b: Broker) -> Call:
    await enqueue_task(b, st("x"))
    await b.redis.zadd(b.keys.queue("a"), {"garbage-from-elsewhere": 0})
    return lambda: claim(b, "w", ["a"], 5)


async def s_claim_for_a_task_marked_finished(b: Broker) -> Call:
    """A waiting job of a task whose record says it finished: never in a consistent state, so
    the record is edited here; the claim then takes the task out of `finished`."""
    res = await enqueue_task(b, st("x"))
    await b.redis.hset(b.keys.task(res.task_id), "status", "failed")
    return lambda: claim(b, "w", ["a"], 5)


async def s_claim_of_a_job_with_limit_keys(b: Broker) -> Call:
    await enqueue_task(b, st("x", limits=["tenant:acme"]))
    return lambda: claim(b, "w", ["a"], 5)


async def s_complete_of_one_of_two_independent_jobs(b: Broker) -> Call:
    """Neither releases a dependent nor finishes its task."""
    await enqueue_task(b, st("x"), st("z"))
    [job] = await claim(b, "w", ["a"], 1)
    return lambda: complete(b, [Completion(job.lease, "ok")])


async def s_step_done(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: step_done(b, lease, "fetch", '{"rows": 3}', 5)


async def s_spawn(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: spawn(b, lease, "hiveq.spawn", [SubtaskSpec(id="kid", agent="a")])


async def s_suspend(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: wait_signal(b, lease, "hiveq.signal:go", "go", 60)


async def s_signal(b: Broker) -> Call:
    """A signal that ends a wait (a kept one writes fewer keys: see IDLE)."""
    lease = await _leased(b)
    await wait_signal(b, lease, "hiveq.signal:go", "go", None)
    return lambda: signal(b, lease.job_id, "go", {"ok": True}, "ops")


async def s_signal_kept(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: signal(b, lease.job_id, "go", {"ok": True}, "ops")


async def s_set_limit(b: Broker) -> Call:
    await enqueue_task(b, st("x"))  # an agent to wake
    return lambda: set_limit(b, "tenant:*", LimitRule(concurrency=1))


async def s_report_usage(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: report_usage(b, lease, 10, 0.5)


async def s_output(b: Broker) -> Call:
    lease = await _leased(b)
    return lambda: append_output(b, lease, "hello\n")


async def s_complete_of_a_child_its_parent_waits_for(b: Broker) -> Call:
    parent = await _leased(b)
    kids = await spawn(b, parent, "hiveq.spawn", [SubtaskSpec(id="kid", agent="a")])
    await wait_children(b, parent, "hiveq.wait", kids)
    [child] = await claim(b, "w", ["a"], 1)
    return lambda: complete(b, [Completion(child.lease, "done")])


SPEC = ScheduleRequest(cron="* * * * *", task={"description": "report"})


async def s_put_schedule(b: Broker) -> Call:
    return lambda: schedules.put(b, "nightly", SPEC)


async def s_remove_schedule(b: Broker) -> Call:
    await schedules.put(b, "nightly", SPEC)
    return lambda: schedules.remove(b, "nightly")


async def s_due_schedules(b: Broker) -> Call:
    """A due schedule: handed out under a lease (the clock is the test's)."""
    view, _ = await schedules.put(b, "nightly", SPEC)
    return lambda: b.run("due_schedules", [view.next_run_ms, "h", 30_000, 10])


async def s_due_schedules_of_a_stray_member(b: Broker) -> Call:
    await b.redis.zadd(b.keys.schedules, {"stray": 0})
    return lambda: b.run("due_schedules", ["", "h", 30_000, 10])


async def s_schedule_fired(b: Broker) -> Call:
    view, _ = await schedules.put(b, "nightly", SPEC)
    tick = view.next_run_ms
    await b.run("due_schedules", [tick, "h", 30_000, 10])
    return lambda: b.run("schedule_fired", ["nightly", tick, tick, (tick or 0) + 60_000, "t1", "", 0, "h"])


SCENARIOS: dict[str, Callable[[Broker], Awaitable[Call]]] = {
    name: globals()[f"s_{name}"] for name in SCRIPT_NAMES
}
# Keys marked * are checked only by the calls that write them: these scenarios make such a call.
WRITES: dict[tuple[str, str], Callable[[Broker], Awaitable[Call]]] = {
    ("enqueue", "delayed"): s_enqueue_delayed,
    ("due_schedules", "events"): s_due_schedules_of_a_stray_member,
    ("claim", "quarantine"): s_claim_of_a_member_without_a_record,
    ("claim", "jobs"): s_claim_of_a_member_without_a_record,
    ("claim", "finished"): s_claim_for_a_task_marked_finished,
    ("claim", "limits"): s_claim_of_a_job_with_limit_keys,
    ("complete", "suspended"): s_complete_of_a_child_its_parent_waits_for,
}
# ... and these make a call that does not write them.
IDLE: dict[str, Callable[[Broker], Awaitable[Call]]] = {
    "claim": s_claim,
    "complete": s_complete_of_one_of_two_independent_jobs,
    "enqueue": lambda b: s_enqueue_one(b),
    "promote_due": lambda b: _idle(promote_due, b),
    "reap_expired": lambda b: _idle(reap_expired, b),
    "expire_finished": lambda b: _idle(expire_finished, b),
    "signal": s_signal_kept,
    "set_aside": s_set_aside_of_a_key_of_hiveqs_own_type,
    "due_schedules": s_due_schedules,
}
CASES = [(name, key) for name in SCRIPT_NAMES for key in script_keys(name)]
# The watch's targeted sweep and the archiver's snapshot write nothing.
READ_ONLY = {"find_vanished", "snapshot_tasks"}
LATER = [(name, key) for name in SCRIPT_NAMES for key, later in key_rows(name) if later]


async def s_enqueue_one(b: Broker) -> Call:
    return lambda: enqueue_task(b, st("x"))


async def _idle(op: Callable[[Broker], Awaitable[Any]], b: Broker) -> Call:
    await enqueue_task(b, st("x"))  # a namespace in use, with nothing due, expired or finished
    return lambda: op(b)


async def _put_foreign(b: Broker, key: str) -> str:
    """Replace `key` with a value of another Redis type, as a foreign client would; returns it."""
    await b.redis.delete(key)
    if FIXED_KEY_TYPES[key.removeprefix(b.keys.prefix)] == "string":
        await b.redis.rpush(key, "foreign")
        return "list"
    await b.redis.set(key, "foreign")
    return "string"


def test_every_script_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(SCRIPT_NAMES)


@pytest.mark.parametrize("script", SCRIPT_NAMES)
async def test_each_scenario_makes_its_script_write_when_no_key_is_foreign(
    any_broker: Broker, script: str
) -> None:
    b = any_broker
    call = await SCENARIOS[script](b)
    before = await snapshot(b)
    await call()
    assert (await snapshot(b) == before) is (script in READ_ONLY)


@pytest.mark.parametrize(("script", "suffix"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
async def test_a_foreign_type_on_a_declared_fixed_key_refuses_the_script_before_any_write(
    any_broker: Broker, script: str, suffix: str
) -> None:
    b = any_broker
    call = await WRITES.get((script, suffix), SCENARIOS[script])(b)
    key = b.keys.key(suffix)
    found = await _put_foreign(b, key)
    before = await snapshot(b)
    with pytest.raises(WrongTypeError) as err:
        await call()
    assert (err.value.key, err.value.found, err.value.expected) == (key, found, FIXED_KEY_TYPES[suffix])
    assert key in str(err.value)
    assert await snapshot(b) == before


def test_every_script_with_keys_checked_later_has_a_call_that_does_not_write_them() -> None:
    assert {script for script, _ in LATER} == set(IDLE)


@pytest.mark.parametrize(("script", "suffix"), LATER, ids=[f"{s}-{k}" for s, k in LATER])
async def test_a_foreign_type_on_a_key_checked_later_is_left_alone_by_a_call_that_does_not_write_it(
    any_broker: Broker, script: str, suffix: str
) -> None:
    b = any_broker
    call = await IDLE[script](b)
    key = b.keys.key(suffix)
    await _put_foreign(b, key)
    foreign = (await snapshot(b))[key]
    await call()
    assert (await snapshot(b))[key] == foreign
