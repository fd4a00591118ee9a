"""Schedules over HTTP: PUT adds (201) or replaces (200), GET lists and reads with next_run,
DELETE removes; unknown names are 404; a bad cron, zone, name or task is a 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from hiveq.queue.broker import Broker
from hiveq.schedule.cron import iso
from hiveq.schedule.fire import fire_due
from hiveq.schedule.store import server_ms

TASK = {"description": "nightly report", "priority": 3}


async def put(api: httpx.AsyncClient, name: str, **body: Any) -> httpx.Response:
    return await api.put(f"/schedules/{name}", json={"cron": "0 9 * * *", "task": TASK, **body})


async def test_put_adds_a_schedule_with_its_next_run_in_its_zone_then_replaces_it(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    r = await put(api, "nightly", tz="Europe/Berlin")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["name"], body["cron"], body["tz"]) == ("nightly", "0 9 * * *", "Europe/Berlin")
    assert body["task"] == {"description": "nightly report", "priority": 3}
    nxt = datetime.fromisoformat(body["next_run"])
    assert (nxt.hour, nxt.minute, nxt.second) == (9, 0, 0)
    offset = nxt.utcoffset()
    assert offset is not None and offset.total_seconds() in (3600, 7200)
    now = await server_ms(broker)
    assert now < body["next_run_ms"] <= now + 86_400_000
    assert body["next_run_ms"] == round(nxt.timestamp() * 1000)
    assert body["last_fired"] is None and body["fired"] == 0

    r = await put(api, "nightly", cron="*/5 * * * *")
    assert r.status_code == 200, r.text
    assert (r.json()["cron"], r.json()["tz"]) == ("*/5 * * * *", "UTC")
    assert r.json()["created_ms"] == body["created_ms"]

    listed = (await api.get("/schedules")).json()["items"]
    assert [s["name"] for s in listed] == ["nightly"]
    one = (await api.get("/schedules/nightly")).json()
    assert one["next_run_ms"] == listed[0]["next_run_ms"]


async def test_list_is_sorted_by_next_run(api: httpx.AsyncClient) -> None:
    assert (await put(api, "daily", cron="@daily")).status_code == 201
    assert (await put(api, "often", cron="* * * * * *")).status_code == 201
    items = (await api.get("/schedules")).json()["items"]
    assert [s["name"] for s in items] == ["often", "daily"]


async def test_delete_removes_it_and_unknown_names_are_404(api: httpx.AsyncClient) -> None:
    assert (await put(api, "gone")).status_code == 201
    r = await api.delete("/schedules/gone")
    assert r.status_code == 200 and r.json() == {"name": "gone", "removed": True}
    for call in (api.get("/schedules/gone"), api.delete("/schedules/gone")):
        r = await call
        assert r.status_code == 404, r.text
        assert "gone" in r.json()["error"]["message"]
    assert (await api.get("/schedules")).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "not a valid cron"),
        ({"cron": "* * *"}, "cron", "3 fields"),
        ({"cron": ""}, "cron", "1-200 characters"),
        ({"tz": "Mars/Olympus"}, "tz", "IANA time zone"),
        ({"tz": "../../etc/passwd"}, "tz", "IANA time zone"),
        ({"task": {"priority": 1}}, "task.description", "required"),
        ({"task": {"description": "x", "priority": 11}}, "task.priority", "less than or equal"),
        ({"task": {"description": "x", "planner": "nope"}}, "task.planner", "unknown planner"),
        ({"task": {"description": " "}}, "task.description", "must not be empty"),
        ({"task": {"description": "x", "run_at": "2030-01-01T00:00:00Z"}}, "task.run_at", "leave it out"),
        ({"task": {"description": "x", "delay_s": 5}}, "task.delay_s", "leave it out"),
        ({"task": {"description": "x", "bogus": 1}}, "task.bogus", "Extra inputs"),
        (
            {"task": {"description": "x", "subtasks": [{"id": "a", "agent": "nobody-serves-this"}]}},
            "task.subtasks[0].agent",
            "unknown agent",
        ),
        (
            {"task": {"description": "x", "subtasks": [{"id": "a", "agent": "demo", "depends_on": ["b"]}]}},
            "task.subtasks[0].depends_on",
            "unknown subtask",
        ),
        ({"nope": 1}, "nope", "not a known field"),
    ],
)
async def test_a_bad_schedule_is_a_422_naming_the_field_and_nothing_is_stored(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    r = await put(api, "bad", **body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field, err
    assert words in err["message"], err
    assert (await api.get("/schedules/bad")).status_code == 404


async def test_a_bad_name_is_a_422(api: httpx.AsyncClient) -> None:
    r = await put(api, "-starts-with-dash")
    assert r.status_code == 422 and r.json()["error"]["field"] == "name", r.text
    r = await api.get("/schedules/" + "x" * 65)
    assert r.status_code == 422 and r.json()["error"]["field"] == "name", r.text


async def test_a_body_that_is_not_an_object_or_not_json_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.put("/schedules/x", json=[1])
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    r = await api.put("/schedules/x", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = await api.put("/schedules/x", json={"task": TASK})
    assert r.status_code == 422 and r.json()["error"]["field"] == "cron"


async def test_a_foreign_value_on_a_schedule_key_is_a_409_naming_it_and_nothing_is_written(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    key = broker.keys.schedule("taken")
    await broker.redis.set(key, "someone else's")
    for call in (put(api, "taken"), api.delete("/schedules/taken"), api.get("/schedules/taken")):
        r = await call
        assert r.status_code == 409, r.text
        assert key in r.json()["error"]["message"]
    assert await broker.redis.get(key) == "someone else's"
    assert await broker.redis.zcard(broker.keys.schedules) == 0


async def test_a_fired_task_links_to_its_schedule_and_the_list_filters_by_it(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    assert (await put(api, "nightly")).status_code == 201
    other = await api.post("/tasks", json={"description": "not scheduled"})
    assert other.status_code == 201
    nxt = (await api.get("/schedules/nightly")).json()["next_run_ms"]
    [fired] = await fire_due(broker, now_ms=nxt)
    view = (await api.get(f"/tasks/{fired.task_id}")).json()
    assert view["schedule"] == "nightly"
    assert view["metadata"]["schedule_tick"] == iso(nxt)
    listed = (await api.get("/tasks", params={"meta": "schedule:nightly"})).json()["items"]
    assert [t["id"] for t in listed] == [fired.task_id]
    assert listed[0]["schedule"] == "nightly"
    s = (await api.get("/schedules/nightly")).json()
    assert (s["last_task_id"], s["last_fired_ms"], s["fired"]) == (fired.task_id, nxt, 1)
