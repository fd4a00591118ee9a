"""Tasks over HTTP: submit (the seed request), read, list, cancel, idempotency."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from typer.testing import CliRunner

from hiveq.cli.main import app as cli_app
from hiveq.contract.views import SubmitResponse
from hiveq.queue import inspect, registry
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


async def test_q_finds_tasks_whose_description_contains_it_in_any_case(api: httpx.AsyncClient) -> None:
    ids = {}
    for text in ("Build the LOGIN page", "write docs", "build an API", "Rebuild caches"):
        ids[text] = (await api.post("/tasks", json={"description": text})).json()["task_id"]
    found = (await api.get("/tasks", params={"q": "build"})).json()
    assert (found["total"], found["total_exact"]) == (3, True)
    assert [t["id"] for t in found["items"]] == [
        ids["Rebuild caches"],
        ids["build an API"],
        ids["Build the LOGIN page"],
    ]
    page = (await api.get("/tasks", params={"q": "BUILD", "offset": 1, "limit": 1})).json()
    assert (page["total"], [t["id"] for t in page["items"]]) == (3, [ids["build an API"]])
    await api.post(f"/tasks/{ids['build an API']}/cancel")
    both = (await api.get("/tasks", params={"q": "Build", "status": "cancelled"})).json()
    assert (both["total"], [t["id"] for t in both["items"]]) == (1, [ids["build an API"]])
    none = (await api.get("/tasks", params={"q": "<b>nothing</b>"})).json()
    assert (none["total"], none["items"]) == (0, [])
    everything = (await api.get("/tasks", params={"q": ""})).json()  # an empty search is no search
    assert everything["total"] == 4
    too_long = await api.get("/tasks", params={"q": "x" * 201})
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "q"


async def test_a_search_past_its_bound_says_its_total_is_a_lower_bound(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        await api.post("/tasks", json={"description": f"needle {i} " + "hay" * 50})
    monkeypatch.setattr(inspect, "SEARCH_MAX_TASKS", 4)
    capped = (await api.get("/tasks", params={"q": "needle", "limit": 10})).json()
    assert (capped["total"], capped["total_exact"], len(capped["items"])) == (4, False, 4)
    assert capped["items"][0]["description"].startswith("needle 5")  # the newest ones were read
    monkeypatch.setattr(inspect, "SEARCH_MAX_TASKS", 100)
    monkeypatch.setattr(inspect, "SCAN_BATCH", 2)
    monkeypatch.setattr(inspect, "SEARCH_MAX_BYTES", 300)  # each description is about 160 bytes
    by_bytes = (await api.get("/tasks", params={"q": "needle"})).json()
    assert (by_bytes["total"], by_bytes["total_exact"]) == (2, False)
    unfiltered = (await api.get("/tasks", params={"status": "queued"})).json()  # no search: exact
    assert (unfiltered["total"], unfiltered["total_exact"]) == (6, True)


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


def submit_json(broker: Broker, *args: str) -> dict[str, object]:
    """`hiveq submit … --json` (the real typer app, in process) on the test's namespace."""
    s = broker.settings
    env = {"REDIS_URL": s.redis_url, "HIVEQ_APP": s.app, "HIVEQ_ENV": s.env, "HIVEQ_DEBUG": None}
    res = CliRunner().invoke(cli_app, ["submit", *args, "--json"], env=env)
    assert res.exit_code == 0, res.output
    body: dict[str, object] = json.loads(res.stdout)
    return body


async def test_post_tasks_and_submit_json_answer_in_one_shape(api: httpx.AsyncClient, broker: Broker) -> None:
    over_http = (await api.post("/tasks", json=SEED, headers={"Idempotency-Key": "one"})).json()
    from_cli = await asyncio.to_thread(submit_json, broker, str(SEED["description"]), "--priority", "1")
    assert SubmitResponse.model_validate(from_cli).model_dump(mode="json") == from_cli  # nothing more
    tid = from_cli["task_id"]
    assert from_cli == {
        **over_http,
        "task_id": tid,
        "links": {
            "self": f"/tasks/{tid}",
            "events": f"/tasks/{tid}/events",
            "cancel": f"/tasks/{tid}/cancel",
        },
    }
    replay = await asyncio.to_thread(
        submit_json, broker, str(SEED["description"]), "--priority", "1", "--idempotency-key", "one"
    )
    assert replay == {**over_http, "duplicate": True}  # the same task, said the same way
