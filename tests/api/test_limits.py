"""The /limits routes (docs/limits.md): set, read, list and remove rules; bad bodies are 422s
naming the field; a held job's `why` names the limit with live numbers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim


async def test_put_get_list_and_delete_a_rule(api: httpx.AsyncClient) -> None:
    r = await api.put("/limits/tenant:*", json={"concurrency": 2, "rate": "10/s"})
    assert r.status_code == 200, r.text
    assert r.json()["key"] == "tenant:*" and r.json()["rule"]["concurrency"] == 2
    assert (await api.get("/limits/tenant:*")).json()["rule"]["rate"] == "10/s"
    assert [v["key"] for v in (await api.get("/limits")).json()] == ["tenant:*"]
    assert (await api.delete("/limits/tenant:*")).status_code == 204
    gone = await api.get("/limits/tenant:*")
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "key"
    assert (await api.delete("/limits/tenant:*")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"rate": "ten"}, "rate", "must look like 10/s or 60/min"),
        ({"rate": "0/s"}, "rate", "must look like 10/s"),
        ({"concurrency": 0}, "concurrency", "greater than or equal to 1"),
        ({"concurrency": "two"}, "concurrency", "valid integer"),
        ({"tokens": "lots"}, "tokens", "whole number of tokens per minute"),
        ({"budget_usd": -1}, "budget_usd", "greater than 0"),
        ({"concurrency": 1, "on_exhausted": "explode"}, "on_exhausted", "'wait' or 'fail'"),
        ({"concurrency": 1, "burst": 3}, "burst", "not a known field"),
        ({}, "body", "set at least one of concurrency"),
    ],
)
async def test_a_bad_rule_body_is_a_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, rule: str
) -> None:
    r = await api.put("/limits/model:x", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and rule in err["message"], err


async def test_a_bad_key_is_a_422_naming_the_key(api: httpx.AsyncClient) -> None:
    r = await api.put("/limits/has space", json={"concurrency": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "key"


async def test_a_bad_limit_key_on_a_subtask_is_a_422_naming_it(api: httpx.AsyncClient) -> None:
    body = {"description": "x", "subtasks": [{"id": "a", "agent": "demo", "limits": ["tenant:*"]}]}
    r = await api.post("/tasks", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "subtasks[0].limits", r.text


async def test_why_names_the_limit_holding_a_job_with_live_numbers(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    await api.put("/limits/tenant:*", json={"concurrency": 1})
    sub = {"agent": "demo", "limits": ["tenant:acme"]}
    body = {"description": "x", "subtasks": [{"id": "a", **sub}, {"id": "b", **sub}]}
    task = (await api.post("/tasks", json=body)).json()
    [running] = await claim(broker, "w", ["demo"], 5)
    held = (
        next(j for j in task["job_ids"] if j != running.id) if "job_ids" in task else f"{task['task_id']}.b"
    )
    r = await api.get(f"/jobs/{held}/why")
    assert r.status_code == 200
    assert r.json()["summary"].startswith(
        f"waiting: tenant:acme at its concurrency limit 1/1 (jobs {running.id})"
    )
    usage = (await api.get("/limits/tenant:*")).json()["usage"]
    assert (
        usage[0]["key"] == "tenant:acme" and usage[0]["in_use"] == 1 and usage[0]["holders"] == [running.id]
    )
    metrics = (await api.get("/metrics")).text
    assert 'hiveq_limit_in_use{key="tenant:acme",rule="tenant:*"} 1.0' in metrics
    assert 'hiveq_limit_throttled_total{key="tenant:acme",rule="tenant:*"}' in metrics
