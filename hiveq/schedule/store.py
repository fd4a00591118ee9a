"""Recurring schedules in Redis: put (checked once, fully), remove, read. One hash per schedule
(`sched:<name>`) and the `schedules` sorted set by next fire time; only the scripts write them
(put_schedule.lua, remove_schedule.lua, due_schedules.lua, schedule_fired.lua).

A schedule's task is checked when it is put as a submit would check it (fields, planner, graph,
agents), so a typo fails the `PUT`, not a tick at 3 a.m.; what only a fire can tell (an agent
no worker serves any more) is recorded as the schedule's `last_error`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from hiveq.contract.codec import dumps
from hiveq.contract.errors import NotFound, ValidationFailed
from hiveq.contract.models import TaskRequest
from hiveq.contract.protocol import PATTERN_RULES, SCHEDULE_NAME_PATTERN, SCHEDULE_NAME_RE
from hiveq.contract.validate import check_fields, validate_graph
from hiveq.contract.views import ScheduleRequest, ScheduleView
from hiveq.plan import get_planner
from hiveq.queue.broker import Broker
from hiveq.schedule.cron import check_cron, iso, next_after, zone
from hiveq.submit import check_agents, choose_planner

MAX_SCHEDULES = 10_000  # a list reads at most this many


def check_name(name: str) -> str:
    if not SCHEDULE_NAME_RE.match(name):
        raise ValidationFailed("name", f"{name!r} {PATTERN_RULES[SCHEDULE_NAME_PATTERN]}")
    return name


def _under_task(exc: ValidationFailed) -> ValidationFailed:
    return ValidationFailed(f"task.{exc.field}", exc.rule)


async def check_task(b: Broker, body: dict[str, Any]) -> TaskRequest:
    """The schedule's task as a submit would check it; every error names `task.<field>`."""
    try:
        request = TaskRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        rule = "is required" if first.get("type") == "missing" else str(first.get("msg", "is invalid"))
        raise ValidationFailed(f"task.{where}", rule) from None
    for name in ("run_at", "delay_s"):
        if getattr(request, name) is not None:
            raise ValidationFailed(f"task.{name}", "a schedule's task starts at its ticks; leave it out")
    try:
        check_fields(request.description, request.metadata, None, b.settings.limits)
        get_planner(choose_planner(request, b.settings.api.default_planner))
        if request.subtasks:
            validate_graph(request.subtasks, b.settings.limits.max_subtasks)
            await check_agents(b, request.subtasks)
    except ValidationFailed as exc:
        raise _under_task(exc) from None
    return request


async def put(
    b: Broker, name: str, spec: ScheduleRequest, who: str | None = None
) -> tuple[ScheduleView, bool]:
    """Add or replace a schedule; returns it and whether it was created."""
    check_name(name)
    cron, where = check_cron(spec.cron, spec.tz)
    request = await check_task(b, spec.task)
    task = dumps(request.model_dump(exclude_defaults=True))
    now = await server_ms(b)
    nxt = next_after(cron, where, now)
    res = await b.run("put_schedule", [name, cron, spec.tz, task, nxt, who or b.identity])
    return await get(b, name), bool(int(res[1]))


async def remove(b: Broker, name: str, who: str | None = None) -> None:
    check_name(name)
    (code,) = await b.run("remove_schedule", [name, who or b.identity])
    if int(code):
        raise NotFound("schedule", name)


async def get(b: Broker, name: str) -> ScheduleView:
    check_name(name)
    h = await b.guard(b.redis.hgetall(b.keys.schedule(name)))
    if not h:
        raise NotFound("schedule", name)
    return view({str(k): str(v) for k, v in h.items()})


async def list_schedules(b: Broker) -> list[ScheduleView]:
    """Every schedule, soonest next run first (one ZRANGE and one pipelined HGETALL each)."""
    names = await b.guard(b.redis.zrange(b.keys.schedules, 0, MAX_SCHEDULES - 1))
    if not names:
        return []
    pipe = b.redis.pipeline(transaction=False)
    for n in names:
        pipe.hgetall(b.keys.schedule(str(n)))
    rows = await b.guard(pipe.execute())
    found = [view({str(k): str(v) for k, v in h.items()}) for h in rows if h]
    return sorted(found, key=lambda v: (v.next_run_ms or 0, v.name))


async def server_ms(b: Broker) -> int:
    s, us = await b.guard(b.redis.time())
    return int(s) * 1000 + int(us) // 1000


def _int(v: str | None) -> int | None:
    return int(v) if v else None


def _task_of(text: str | None) -> dict[str, Any]:
    """The stored task as JSON; text another writer left there reads as {} (fire records why)."""
    try:
        task = json.loads(text or "{}")
    except ValueError:
        return {}
    return task if isinstance(task, dict) else {}


def view(h: dict[str, str]) -> ScheduleView:
    """A schedule's hash as users see it; a zone that no longer loads shows times in UTC."""
    try:
        where = zone(h.get("tz") or "UTC")
    except ValidationFailed:
        where = None
    nxt, last = _int(h.get("next")), _int(h.get("last_fired"))
    return ScheduleView(
        name=h.get("name", ""),
        cron=h.get("cron", ""),
        tz=h.get("tz", "UTC"),
        task=_task_of(h.get("task")),
        next_run=iso(nxt, where) if nxt else None,
        next_run_ms=nxt,
        last_fired=iso(last, where) if last else None,
        last_fired_ms=last,
        last_task_id=h.get("last_task") or None,
        last_error=h.get("last_error") or None,
        fired=int(h.get("fired") or 0),
        missed=int(h.get("missed") or 0),
        firing=h.get("firing") or None,
        created_ms=_int(h.get("created")),
        updated_ms=_int(h.get("updated")),
    )
