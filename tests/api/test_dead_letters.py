"""Aggregation over HTTP: a dead-lettered subtask fails the task and cancels its dependents;
retrying the dead letter revives the task; discarding it closes the case."""

from __future__ import annotations

import json

import httpx

from hiveq.queue import complete, fetch, retry
from hiveq.queue.broker import Broker
from hiveq.queue.maintain import promote_due
from tests.queue.helpers import variant
from tests.support.waiting import until

PIPELINE = {
    "description": "three steps",
    "subtasks": [
        {"id": "a", "agent": "demo"},
        {"id": "b", "agent": "demo", "depends_on": ["a"]},
        {"id": "c", "agent": "demo", "depends_on": ["b"]},
    ],
}


async def retry_due(b: Broker) -> None:
    """Wait out the retry backoff and put the job back in its queue."""
    await until(lambda: promote_due(b), what="the retry to become due")


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


async def test_job_and_dead_letter_list_carry_the_agent_tracebacks(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    body = {"description": "one step", "subtasks": [{"id": "a", "agent": "demo", "max_attempts": 2}]}
    tid: str = (await api.post("/tasks", json=body)).json()["task_id"]
    job_id = f"{tid}.a"
    fast = variant(broker, backoff_base_s=0.001)
    for n in (1, 2):
        if n == 2:
            await retry_due(broker)
        (job,) = await fetch.claim(broker, "w-test", ["demo"], 1)
        tb = f'Traceback (most recent call last):\n  File "a.py", line {n}, in run\nOSError: disk full {n}\n'
        failure = retry.Failure(job.lease, f"OSError: disk full {n}", traceback=tb)
        await retry.fail(fast, [failure])
    rec = (await api.get(f"/jobs/{job_id}")).json()
    assert rec["state"] == "dead"
    assert [(t["attempt"], t["failure"], t["worker"], t["error"]) for t in rec["tracebacks"]] == [
        (1, 1, "w-test", "OSError: disk full 1"),
        (2, 2, "w-test", "OSError: disk full 2"),
    ]
    assert rec["tracebacks"][1]["traceback"].endswith("OSError: disk full 2\n")
    dlq = (await api.get("/dlq")).json()
    assert dlq["total"] == 1
    [item] = dlq["items"]
    assert [t["failure"] for t in item["tracebacks"]] == [2]  # the list carries the last one only
    # A task view reads many jobs and shows no tracebacks; the history's events carry none either.
    view = (await api.get(f"/tasks/{tid}")).json()
    assert "tracebacks" not in view["subtasks"][0]
    history = (await api.get(f"/jobs/{job_id}/history")).json()["events"]
    assert not any("Traceback" in json.dumps(e) for e in history)


async def test_dead_letter_total_counts_every_letter_beyond_the_page(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    for _ in range(3):
        await kill_first_job(api, broker)
    page = (await api.get("/dlq", params={"limit": 2})).json()
    assert (page["total"], len(page["items"])) == (3, 2)
