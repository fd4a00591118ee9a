"""Aggregation over HTTP: a dead-lettered subtask fails the task and cancels its dependents;
retrying the dead letter revives the task; discarding it closes the case."""

from __future__ import annotations

import httpx

from hiveq.queue import complete, fetch, retry
from hiveq.queue.broker import Broker

PIPELINE = {
    "description": "three steps",
    "subtasks": [
        {"id": "a", "agent": "demo"},
        {"id": "b", "agent": "demo", "depends_on": ["a"]},
        {"id": "c", "agent": "demo", "depends_on": ["b"]},
    ],
}


async def kill_first_job(api: httpx.AsyncClient, b: Broker) -> str:
    tid: str = (await api.post("/tasks", json=PIPELINE)).json()["task_id"]
    (job,) = await fetch.claim(b, "w-test", ["demo"], 1)
    assert job.id == f"{tid}.a"
    await retry.fail(b, [retry.Failure(job.lease, "disk full", fatal=True)])
    return tid


async def test_dead_subtask_fails_task_and_cancels_dependents(api: httpx.AsyncClient, broker: Broker) -> None:
    tid = await kill_first_job(api, broker)
    view = (await api.get(f"/tasks/{tid}")).json()
    assert view["status"] == "failed"
    assert {s["id"]: s["state"] for s in view["subtasks"]} == {
        "a": "dead",
        "b": "cancelled",
        "c": "cancelled",
    }
    assert "disk full" in view["error"]
    assert view["subtasks"][0]["worker"] == "w-test"
    dlq = (await api.get("/dlq")).json()["items"]
    assert [j["id"] for j in dlq] == [f"{tid}.a"]
    assert "fatal error: disk full" in dlq[0]["reason"]


async def test_retrying_the_dead_letter_revives_the_task_to_success(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    tid = await kill_first_job(api, broker)
    r = await api.post(f"/dlq/{tid}.a/retry")
    assert r.status_code == 200
    assert r.json() == {"job_id": f"{tid}.a", "state": "waiting"}
    view = (await api.get(f"/tasks/{tid}")).json()
    assert view["status"] != "failed"
    assert {s["id"]: s["state"] for s in view["subtasks"]} == {"a": "waiting", "b": "blocked", "c": "blocked"}
    for expected in ("a", "b", "c"):
        (job,) = await fetch.claim(broker, "w-test", ["demo"], 1)
        assert job.subtask_id == expected
        await complete.complete(broker, [complete.Completion(job.lease, {"step": expected})])
    view = (await api.get(f"/tasks/{tid}")).json()
    assert view["status"] == "succeeded"
    assert view["progress"] == {"done": 3, "total": 3, "fraction": 1.0}
    assert view["result"] == {
        "final": {"step": "c"},
        "sinks": ["c"],
        "subtasks": {"a": {"step": "a"}, "b": {"step": "b"}, "c": {"step": "c"}},
    }
    assert (await api.post(f"/dlq/{tid}.a/retry")).status_code == 409  # no longer dead


async def test_discarding_a_dead_letter_empties_the_dlq(api: httpx.AsyncClient, broker: Broker) -> None:
    tid = await kill_first_job(api, broker)
    r = await api.post(f"/dlq/{tid}.a/discard")
    assert r.json() == {"job_id": f"{tid}.a", "state": "cancelled"}
    assert (await api.get("/dlq")).json()["items"] == []


async def test_job_and_its_custody_history_name_who_took_it(api: httpx.AsyncClient, broker: Broker) -> None:
    tid = await kill_first_job(api, broker)
    job = (await api.get(f"/jobs/{tid}.a")).json()
    assert job["state"] == "dead" and job["attempts"] == 1
    history = (await api.get(f"/jobs/{tid}.a/history")).json()
    assert [(e["from"], e["to"]) for e in history["events"]] == [
        ("", "waiting"),
        ("waiting", "active"),
        ("active", "dead"),
    ]
    assert history["events"][1]["worker"] == "w-test"
