"""Firing recurring schedules: each tick submits its task exactly once, however many processes run.

Every worker (from its maintenance loop) and every API process calls `fire_due` about every
`reap_interval_s`. When nothing is due that is one script call, one ZRANGEBYSCORE. A due schedule:

1. due_schedules.lua hands it to one caller under a lease (FIRE_LEASE_MS): the others don't see
   it until the lease ends, so one process plans it (an llm planner is not paid three times);
2. the caller picks the tick (the catch-up policy: of the ticks missed since its `next`, only the
   latest fires) and submits the task with the idempotency key `schedule:<name>:<tick>`, so
   should the lease end while it works (a slow planner, a crash after the enqueue) and another
   process fire the same tick, enqueue.lua's SET NX lets only one task in: a double fire is
   impossible, not merely unlikely;
3. schedule_fired.lua records the task and moves the schedule to its next tick, only if the
   schedule is still the one it was handed (not replaced or removed meanwhile).

The task carries `metadata.schedule` (the name) and `metadata.schedule_tick` (the tick, ISO 8601
UTC), which link it to its schedule in every view. docs/schedules.md has the policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import exceptions as rex

from hiveq.contract.errors import HiveqError, OutcomeUnknown, RedisUnavailable
from hiveq.contract.limits import ERROR_MAX_CHARS
from hiveq.contract.models import TaskRequest
from hiveq.contract.redact import redact
from hiveq.contract.timing import SCHEDULE_META, TICK_META
from hiveq.queue.broker import Broker
from hiveq.schedule.cron import check_cron, iso, latest_since, next_after
from hiveq.submit import submit_task

FIRE_LEASE_MS = 30_000  # a firing process that dies is replaced after this long
MAX_PER_CALL = 50
COMPLAIN_EVERY_S = 60.0
log = logging.getLogger("hiveq.schedule")


@dataclass(frozen=True, slots=True)
class Fired:
    name: str
    tick_ms: int | None  # None: the schedule's cron or zone no longer loads
    task_id: str | None  # None: the task was refused (`error`) or Redis failed (retried later)
    error: str | None
    missed: int
    recorded: bool  # False: replaced or removed meanwhile, or not recorded (Redis failed)


def idempotency_key(name: str, tick_ms: int) -> str:
    return f"schedule:{name}:{iso(tick_ms)}"


async def fire_due(b: Broker, holder: str | None = None, *, now_ms: int | None = None) -> list[Fired]:
    """Fire every schedule that is due (at `now_ms`, a test's clock; default: the Redis time)."""
    who = holder or b.identity
    res = await b.run("due_schedules", ["" if now_ms is None else now_ms, who, FIRE_LEASE_MS, MAX_PER_CALL])
    now = int(res[0])
    return [await fire_one(b, who, now, [str(x) for x in row]) for row in res[1:]]


async def fire_one(b: Broker, who: str, now: int, row: list[str]) -> Fired:
    name, handed, cron, tz, task = row
    due = int(handed)
    try:
        expr, where = check_cron(cron, tz)
    except HiveqError as exc:  # the zone database changed under it: say so, try again in a day
        await _record(b, name, handed, "", now + 86_400_000, "", str(exc), 0, who)
        return Fired(name, None, None, str(exc), 0, True)
    tick, missed = latest_since(expr, where, due, now)
    nxt = next_after(expr, where, max(tick, now))
    task_id, error = "", ""
    try:
        request = TaskRequest.model_validate(json.loads(task))
        meta = {**request.metadata, SCHEDULE_META: name, TICK_META: iso(tick)}
        request = request.model_copy(update={"metadata": meta})
        done = await submit_task(b, request, idempotency_key=idempotency_key(name, tick))
        task_id = done.task_id
    except (RedisUnavailable, OutcomeUnknown):
        return Fired(name, tick, None, None, missed, False)  # the lease ends; the same tick again
    except HiveqError as exc:  # refused (an agent nobody serves, a planner's error): recorded
        error = str(exc)
    except Exception as exc:  # a stored task that no longer parses, a planner's bug: recorded, and
        # the caller's loop (a worker's maintenance) goes on
        error = redact(f"{type(exc).__name__}: {exc}", b.settings.secrets)[:ERROR_MAX_CHARS]
    recorded = await _record(b, name, handed, tick, nxt, task_id, error, missed, who)
    if error:
        log.warning("schedule %s: tick %s submitted no task: %s", name, iso(tick), error)
    return Fired(name, tick, task_id or None, error or None, missed, recorded)


async def _record(
    b: Broker,
    name: str,
    handed: str,
    tick: int | str,
    nxt: int,
    task_id: str,
    error: str,
    missed: int,
    who: str,
) -> bool:
    (code,) = await b.run("schedule_fired", [name, handed, tick, nxt, task_id, error, missed, who])
    return int(code) == 0


async def fire_forever(
    b: Broker, *, interval_s: float, ready: Callable[[], bool] = lambda: True, logger: logging.Logger = log
) -> None:
    """The API's loop (workers fire from their maintenance loop). A failing round is logged at
    most once a minute and never ends the loop."""
    said = -COMPLAIN_EVERY_S
    while True:
        await asyncio.sleep(interval_s)
        if not ready():
            continue
        try:
            await fire_due(b)
        except (HiveqError, rex.RedisError) as exc:
            if time.monotonic() - said >= COMPLAIN_EVERY_S:
                said = time.monotonic()
                logger.warning("schedules not fired this round: %s", exc)
