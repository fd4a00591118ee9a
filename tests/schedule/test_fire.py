"""Firing on the real scripts with a test clock (`now_ms`): each tick submits exactly one task
while several brokers (separate connections) race on due_schedules; after a downtime only the
latest missed tick fires, once; a firing process that dies is replaced and cannot double-fire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hiveq.contract.models import TaskRequest
from hiveq.contract.views import ScheduleRequest
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import read_events
from hiveq.schedule import store
from hiveq.schedule.cron import iso
from hiveq.schedule.fire import FIRE_LEASE_MS, fire_due, idempotency_key
from hiveq.submit import submit_task

MINUTE = 60_000
TASK = {"description": "report", "metadata": {"team": "ops"}}


@pytest.fixture
async def others(broker: Broker) -> AsyncIterator[list[Broker]]:
    """Two more processes' worth of connections to the same namespace."""
    out = [await Broker.connect(broker.settings, role="test", ident=f"p{i}") for i in (2, 3)]
    yield out
    for b in out:
        await b.close()


async def fired_tasks(b: Broker) -> dict[str, str]:
    """tick (metadata.schedule_tick) -> task id, over every task; fails on a tick seen twice."""
    page = await inspect.list_tasks(b, None, 0, 10_000)
    out: dict[str, str] = {}
    for t in page.items:
        tick = t.metadata.get("schedule_tick")
        if tick is not None:
            assert tick not in out, f"tick {tick} fired twice: {out[tick]} and {t.id}"
            out[str(tick)] = t.id
    return out


async def test_each_tick_fires_exactly_once_with_three_brokers_racing(
    broker: Broker, others: list[Broker]
) -> None:
    view, _ = await store.put(broker, "every-minute", ScheduleRequest(cron="* * * * *", task=TASK))
    first = view.next_run_ms
    assert first is not None
    brokers = [broker, *others]
    for k in range(20):
        now = first + k * MINUTE + 250  # each process sees the tick come, in lockstep
        rounds = await asyncio.gather(*(fire_due(b, f"h{i}", now_ms=now) for i, b in enumerate(brokers)))
        fired = [f for r in rounds for f in r]
        assert len(fired) == 1, fired  # one process was handed the tick
        assert fired[0].tick_ms == first + k * MINUTE and fired[0].missed == 0
    ticks = await fired_tasks(broker)
    assert sorted(ticks) == [iso(first + k * MINUTE) for k in range(20)]
    s = await store.get(broker, "every-minute")
    assert (s.fired, s.missed, s.next_run_ms) == (20, 0, first + 20 * MINUTE)
    assert s.last_task_id == ticks[iso(first + 19 * MINUTE)]
    task = await inspect.get_task(broker, s.last_task_id)
    assert task.metadata == {
        "team": "ops",
        "schedule": "every-minute",
        "schedule_tick": iso(first + 19 * MINUTE),
    }


async def test_after_a_downtime_only_the_latest_missed_tick_fires_once(
    broker: Broker, others: list[Broker]
) -> None:
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="* * * * *", task=TASK))
    first = view.next_run_ms
    assert first is not None
    back = first + 10 * MINUTE + 30_000  # everything was down for ticks first … first + 10 min
    rounds = await asyncio.gather(
        *(fire_due(b, f"h{i}", now_ms=back) for i, b in enumerate([broker, *others]))
    )
    [fired] = [f for r in rounds for f in r]
    assert (fired.tick_ms, fired.missed) == (first + 10 * MINUTE, 10)
    # the processes keep running: nothing more until the next tick, which fires once
    again = await asyncio.gather(*(fire_due(b, now_ms=back + 1000) for b in [broker, *others]))
    assert [f for r in again for f in r] == []
    await fire_due(broker, now_ms=first + 11 * MINUTE)
    assert sorted(await fired_tasks(broker)) == [iso(first + 10 * MINUTE), iso(first + 11 * MINUTE)]
    s = await store.get(broker, "m")
    assert (s.fired, s.missed) == (2, 10)


async def test_a_firing_process_that_died_after_its_enqueue_is_replaced_without_a_second_task(
    broker: Broker, others: list[Broker]
) -> None:
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="* * * * *", task=TASK))
    tick = view.next_run_ms
    assert tick is not None
    # process A is handed the tick, submits its task, and dies before recording it
    handed = await broker.run("due_schedules", [tick, "A", FIRE_LEASE_MS, 10])
    assert [r[0] for r in handed[1:]] == ["m"]
    request = TaskRequest.model_validate({**TASK, "metadata": {"schedule": "m", "schedule_tick": iso(tick)}})
    first = await submit_task(broker, request, idempotency_key=idempotency_key("m", tick))
    # while A's lease runs, nobody else gets the schedule
    assert await fire_due(others[0], now_ms=tick + FIRE_LEASE_MS - 1) == []
    # then B fires the same tick: the idempotency key hands back A's task
    [fired] = await fire_due(others[1], "B", now_ms=tick + FIRE_LEASE_MS + 1)
    assert (fired.tick_ms, fired.task_id, fired.recorded) == (tick, first.task_id, True)
    assert await fired_tasks(broker) == {iso(tick): first.task_id}
    s = await store.get(broker, "m")
    assert (s.last_task_id, s.fired, s.firing) == (first.task_id, 1, None)


async def test_a_tick_whose_task_is_refused_records_the_error_and_moves_on(broker: Broker) -> None:
    await broker.redis.sadd(broker.keys.agents, "gone-agent")  # a worker served it when it was put
    body = {"description": "x", "subtasks": [{"id": "a", "agent": "gone-agent"}]}
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="* * * * *", task=body))
    assert view.next_run_ms is not None
    await broker.redis.srem(broker.keys.agents, "gone-agent")
    [fired] = await fire_due(broker, now_ms=view.next_run_ms)
    assert fired.task_id is None and fired.error and "unknown agent 'gone-agent'" in fired.error
    s = await store.get(broker, "m")
    assert s.last_error == fired.error and s.next_run_ms == view.next_run_ms + MINUTE and s.fired == 0
    assert await fired_tasks(broker) == {}


async def test_a_schedule_replaced_while_it_fires_keeps_its_new_spec(broker: Broker) -> None:
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="* * * * *", task=TASK))
    assert view.next_run_ms is not None
    handed = await broker.run("due_schedules", [view.next_run_ms, "A", FIRE_LEASE_MS, 10])
    newer, created = await store.put(broker, "m", ScheduleRequest(cron="@daily", task=TASK))
    assert not created
    code = await broker.run(
        "schedule_fired", ["m", handed[1][1], view.next_run_ms, view.next_run_ms + MINUTE, "", "", 0, "A"]
    )
    assert code == [3]  # WRONG_STATE: the firing records nothing
    assert (await store.get(broker, "m")).next_run_ms == newer.next_run_ms


async def test_an_idle_call_hands_out_nothing_and_writes_nothing(broker: Broker) -> None:
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="@daily", task=TASK))
    before = await broker.redis.hgetall(broker.keys.schedule("m"))
    assert await fire_due(broker) == []
    assert await broker.redis.hgetall(broker.keys.schedule("m")) == before
    assert await broker.redis.zscore(broker.keys.schedules, "m") == view.next_run_ms


async def test_a_member_without_a_record_is_dropped_with_an_anomaly(broker: Broker) -> None:
    await broker.redis.zadd(broker.keys.schedules, {"stray": 0})
    await broker.redis.set(broker.keys.schedule("foreign"), "x")
    await broker.redis.zadd(broker.keys.schedules, {"foreign": 0})
    assert await fire_due(broker) == []
    assert await broker.redis.zcard(broker.keys.schedules) == 0
    _, events = await read_events(broker, "0", count=1000)
    reasons = [e.reason or "" for e in events if e.type == "anomaly"]
    assert any("schedule stray had no record" in x for x in reasons)
    assert any("schedule foreign had a record key holding a string" in x for x in reasons)


async def test_a_stored_task_that_no_longer_parses_is_recorded_and_the_schedule_moves_on(
    broker: Broker,
) -> None:
    view, _ = await store.put(broker, "m", ScheduleRequest(cron="* * * * *", task=TASK))
    assert view.next_run_ms is not None
    await broker.redis.hset(broker.keys.schedule("m"), "task", '{"priority": "high"}')  # another writer
    [fired] = await fire_due(broker, now_ms=view.next_run_ms)
    assert fired.task_id is None and fired.error and fired.error.startswith("ValidationError")
    s = await store.get(broker, "m")
    assert s.next_run_ms == view.next_run_ms + MINUTE and s.last_error == fired.error
    await broker.redis.hset(broker.keys.schedule("m"), "task", "{not json")
    assert (await store.get(broker, "m")).task == {}  # shown, not a 500
