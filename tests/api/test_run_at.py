"""Scheduled starts over HTTP: `run_at` (ISO 8601 with a zone) or `delay_s` delay a task's ready
jobs (state delayed) and the task view shows when; a bad value is a 422 naming the field;
cancel before the start cancels them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from hiveq.schedule.store import server_ms
from tests.queue.helpers import places_of

ONE = [{"id": "a", "agent": "demo"}, {"id": "b", "agent": "demo", "depends_on": ["a"]}]


async def post(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post("/tasks", json={"description": "later", "subtasks": ONE, **body})


async def test_delay_s_puts_ready_jobs_in_delayed_until_then_and_the_view_shows_it(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    before = await server_ms(broker)
    r = await post(api, delay_s=120)
    assert r.status_code == 201, r.text
    tid = r.json()["task_id"]
    view = (await api.get(f"/tasks/{tid}")).json()
    assert before + 120_000 <= view["run_at_ms"] <= await server_ms(broker) + 120_000
    assert view["status"] == "queued"
    states = {s["id"]: s["state"] for s in view["subtasks"]}
    assert states == {"a": "delayed", "b": "blocked"}
    assert await places_of(broker, f"{tid}.a") == ["delayed"]
    job = await inspect.get_job(broker, f"{tid}.a")
    assert job.due_ms == view["run_at_ms"]
    [enq] = await job_history(broker, f"{tid}.a")
    assert (enq.frm, enq.to) == ("", "delayed")
    listed = (await api.get("/tasks")).json()["items"]
    assert listed[0]["run_at_ms"] == view["run_at_ms"]


async def test_run_at_with_a_zone_is_the_instant_it_names(api: httpx.AsyncClient, broker: Broker) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    berlin = at.astimezone(ZoneInfo("Europe/Berlin")).isoformat()
    r = await post(api, run_at=berlin)
    assert r.status_code == 201, r.text
    view = (await api.get(f"/tasks/{r.json()['task_id']}")).json()
    assert abs(view["run_at_ms"] - at.timestamp() * 1000) < 1
    z = await post(api, run_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert z.status_code == 201


async def test_a_past_run_at_starts_at_once(api: httpx.AsyncClient, broker: Broker) -> None:
    r = await post(api, run_at="2001-01-01T00:00:00+00:00")
    assert r.status_code == 201, r.text
    job = await inspect.get_job(broker, f"{r.json()['task_id']}.a")
    assert job.state == JobState.WAITING


async def test_cancel_before_the_start_cancels_the_delayed_jobs(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    tid = (await post(api, delay_s=60)).json()["task_id"]
    r = await api.post(f"/tasks/{tid}/cancel")
    assert r.status_code == 200 and r.json()["cancelled"] == 2, r.text
    assert await places_of(broker, f"{tid}.a") == ["cancelled"]
    assert await broker.redis.zcard(broker.keys.delayed) == 0
    assert (await api.get(f"/tasks/{tid}")).json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"run_at": "2030-01-01T09:00:00"}, "run_at", "no time zone"),
        ({"run_at": "next tuesday"}, "run_at", "not an ISO 8601 time"),
        ({"run_at": "2999-01-01T00:00:00Z"}, "run_at", "at most 366 days"),
        ({"run_at": 1234567890}, "run_at", "string"),
        ({"delay_s": -1}, "delay_s", "greater than or equal to 0"),
        ({"delay_s": 366 * 86400 + 1}, "delay_s", "less than or equal"),
        ({"delay_s": "soon"}, "delay_s", "number"),
        ({"delay_s": 5, "run_at": "2030-01-01T09:00:00Z"}, "delay_s", "not both"),
    ],
)
async def test_a_bad_start_is_a_422_naming_the_field_and_no_task_is_made(
    api: httpx.AsyncClient, broker: Broker, body: dict[str, Any], field: str, words: str
) -> None:
    r = await post(api, **body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and words in err["message"], err
    assert await broker.redis.zcard(broker.keys.tasks) == 0
