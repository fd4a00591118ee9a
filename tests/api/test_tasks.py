"""Tasks over HTTP: submit (the seed request), read, list, cancel, idempotency."""

from __future__ import annotations

import asyncio

import httpx

from hiveq.queue import registry
from hiveq.queue.broker import Broker

SEED = {"description": "Build a user authentication system", "priority": 1}


async def test_seed_request_answers_201_with_task_id_plan_and_links(api: httpx.AsyncClient) -> None:
    r = await api.post("/tasks", json=SEED)
    assert r.status_code == 201, r.text
    body = r.json()
    tid = body["task_id"]
    assert body["status"] == "queued" and body["duplicate"] is False
    assert body["plan"]["planner"] == "template"
    assert [(s["id"], s["agent"], s["depends_on"], s["priority"]) for s in body["plan"]["subtasks"]] == [
        ("design", "demo", [], 1),
        ("implement", "demo", ["design"], 1),
        ("test", "demo", ["implement"], 1),
        ("document", "demo", ["test"], 1),
    ]
    assert body["links"] == {
        "self": f"/tasks/{tid}",
        "events": f"/tasks/{tid}/events",
        "cancel": f"/tasks/{tid}/cancel",
    }
    assert r.headers["location"] == f"/tasks/{tid}"


async def test_get_task_shows_status_progress_and_each_subtask(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/tasks", json=SEED)).json()["task_id"]
    r = await api.get(f"/tasks/{tid}")
    assert r.status_code == 200
    view = r.json()
    assert view["status"] == "queued"
    assert view["progress"] == {"done": 0, "total": 4, "fraction": 0.0}
    states = {s["id"]: s["state"] for s in view["subtasks"]}
    assert states == {"design": "waiting", "implement": "blocked", "test": "blocked", "document": "blocked"}
    assert view["subtasks"][0]["job_id"] == f"{tid}.design"
    assert view["result"] is None


async def test_html_in_description_is_stored_and_returned_as_text(api: httpx.AsyncClient) -> None:
    html = "<script>alert('x')</script><b>bold</b> & done"
    tid = (await api.post("/tasks", json={"description": html})).json()["task_id"]
    r = await api.get(f"/tasks/{tid}")
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["description"] == html


async def test_list_tasks_filters_by_status_and_paginates_newest_first(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(3):
        ids.append((await api.post("/tasks", json={"description": f"Build thing {i}"})).json()["task_id"])
    await api.post(f"/tasks/{ids[0]}/cancel")
    page = (await api.get("/tasks", params={"limit": 2})).json()
    assert page["total"] == 3
    assert [t["id"] for t in page["items"]] == [ids[2], ids[1]]
    rest = (await api.get("/tasks", params={"limit": 2, "offset": 2})).json()
    assert [t["id"] for t in rest["items"]] == [ids[0]]
    cancelled = (await api.get("/tasks", params={"status": "cancelled"})).json()
    assert [t["id"] for t in cancelled["items"]] == [ids[0]]
    assert cancelled["total"] == 1  # the count of matching tasks, not of all tasks
    assert cancelled["items"][0]["progress"]["total"] == 4
    queued = (await api.get("/tasks", params={"status": "queued", "limit": 1, "offset": 1})).json()
    assert (queued["total"], [t["id"] for t in queued["items"]]) == (2, [ids[1]])


async def test_cancel_cancels_unfinished_work_then_409_once_finished(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/tasks", json=SEED)).json()["task_id"]
    r = await api.post(f"/tasks/{tid}/cancel")
    assert r.status_code == 200
    assert r.json() == {"task_id": tid, "cancelled": 4}
    assert (await api.get(f"/tasks/{tid}")).json()["status"] == "cancelled"
    again = await api.post(f"/tasks/{tid}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "already finished" in again.json()["error"]["message"]


async def test_idempotency_key_replay_returns_the_same_task_never_a_second(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post("/tasks", json=SEED, headers=headers)
    replays = await asyncio.gather(*[api.post("/tasks", json=SEED, headers=headers) for _ in range(5)])
    assert first.status_code == 201
    assert {r.status_code for r in replays} == {200}
    assert {r.json()["task_id"] for r in replays} == {first.json()["task_id"]}
    assert all(r.json()["duplicate"] for r in replays)
    assert replays[0].json()["plan"]["subtasks"] == first.json()["plan"]["subtasks"]
    assert (await api.get("/tasks")).json()["total"] == 1


async def test_explicit_subtasks_are_planned_as_sent(api: httpx.AsyncClient) -> None:
    body = {
        "description": "fan out",
        "subtasks": [
            {"id": "a", "agent": "demo"},
            {"id": "b", "agent": "demo"},
            {"id": "join", "agent": "llm", "depends_on": ["a", "b"], "priority": 2},
        ],
    }
    r = await api.post("/tasks", json=body)
    assert r.status_code == 201, r.text
    plan = r.json()["plan"]
    assert plan["planner"] == "explicit"
    assert [(s["id"], s["depends_on"], s["priority"]) for s in plan["subtasks"]] == [
        ("a", [], 5),
        ("b", [], 5),
        ("join", ["a", "b"], 2),
    ]


async def test_agent_registered_by_a_worker_is_accepted(api: httpx.AsyncClient, broker: Broker) -> None:
    body = {"description": "custom", "subtasks": [{"id": "a", "agent": "resize-images"}]}
    assert (await api.post("/tasks", json=body)).status_code == 422
    await registry.register_worker(broker, "w1", ["resize-images"], concurrency=1)
    assert (await api.post("/tasks", json=body)).status_code == 201
