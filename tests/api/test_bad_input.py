"""Bad input gets the right status and a JSON error naming the field and the rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hiveq.api.app import create_app
from hiveq.queue.broker import Broker
from tests.api.live import asgi_client, live_server

SUB = {"id": "a", "agent": "demo"}


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"priority": 1}, "description", "is required"),
        ({"description": ""}, "description", "must not be empty"),
        ({"description": "   \n"}, "description", "must not be empty"),
        ({"description": "x" * 10_001}, "description", "over the limit of 10000"),
        ({"description": "x", "metadata": {"blob": "y" * 70_000}}, "metadata", "over the limit of 65536"),
        ({"description": "x", "priority": 0}, "priority", "greater than or equal to 1"),
        ({"description": "x", "priority": 11}, "priority", "less than or equal to 10"),
        ({"description": "x", "priority": "urgent"}, "priority", "valid integer"),
        ({"description": "x", "planner": "magic"}, "planner", "unknown planner 'magic'"),
        ({"description": "x", "planner": ""}, "planner", "unknown planner ''"),
        ({"description": "x", "colour": "red"}, "colour", "not a known field"),
        (
            {"description": "x", "subtasks": [{"id": "a", "agent": "ghost"}]},
            "subtasks[0].agent",
            "unknown agent 'ghost'",
        ),
        ({"description": "x", "subtasks": [{"id": "a"}]}, "subtasks[0].agent", "is required"),
        (
            {
                "description": "x",
                "subtasks": [{**SUB, "depends_on": ["b"]}, {"id": "b", "agent": "demo", "depends_on": ["a"]}],
            },
            "subtasks",
            "dependency cycle: a -> b -> a",
        ),
        (
            {"description": "x", "subtasks": [{**SUB, "depends_on": ["zz"]}]},
            "subtasks[0].depends_on",
            "unknown subtask 'zz'",
        ),
        (
            {"description": "x", "subtasks": [{"id": f"s{i}", "agent": "demo"} for i in range(101)]},
            "subtasks",
            "over the limit of 100",
        ),
        (
            {"description": "x", "subtasks": [{"id": "bad id!", "agent": "demo"}]},
            "subtasks[0].id",
            "1-64 characters",
        ),
        (
            {"description": "x", "planner": "template", "subtasks": [SUB]},
            "subtasks",
            "only accepted with the explicit",
        ),
        ({"description": "x", "planner": "explicit"}, "subtasks", "needs a non-empty list"),
    ],
)
async def test_invalid_task_is_422_naming_field_and_rule(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, rule: str
) -> None:
    r = await api.post("/tasks", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert err["field"] == field
    assert rule in err["message"]
    assert (await api.get("/tasks")).json()["total"] == 0  # nothing half-created


@pytest.mark.parametrize(
    ("content", "field", "rule"),
    [
        (b'{"description": "x",', "body", "is not valid JSON"),
        (b"[1, 2]", "body", "must be a JSON object"),
        (b"\xff\xfe", "body", "is not valid JSON"),
    ],
)
async def test_malformed_json_is_422(api: httpx.AsyncClient, content: bytes, field: str, rule: str) -> None:
    r = await api.post("/tasks", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field
    assert rule in r.json()["error"]["message"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
async def test_wrong_content_type_is_415(api: httpx.AsyncClient, ctype: str) -> None:
    r = await api.post("/tasks", content=b'{"description": "x"}', headers={"Content-Type": ctype})
    assert r.status_code == 415
    assert r.json()["error"] == {
        "code": "unsupported_media_type",
        "field": "Content-Type",
        "message": f"Content-Type {ctype.split(';')[0]!r} is not supported; send the task as JSON with "
        "'Content-Type: application/json'",
    }


@pytest.mark.parametrize("headers", [{"Content-Type": "application/x-www-form-urlencoded"}, {}])
async def test_broken_json_without_a_json_content_type_is_422_about_the_json(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # What `curl -d` sends when the JSON is broken (form type) or a client sends no type at all.
    for body in (b'{"description": "x",', b"description=x"):
        r = await api.post("/tasks", content=body, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "body"
        assert "is not valid JSON" in r.json()["error"]["message"]
    r = await api.post("/tasks", content=b'{"description": "x"}', headers=headers)
    assert r.status_code == 201


# The three hostile bodies, sent to a real uvicorn (its stack is deeper than the in-process
# client's, which is where a deep document used to overflow).
NESTED = b'{"description":"x","metadata":{"a":' + b"[" * 946 + b"]" * 946 + b"}}"
HOSTILE = [
    (NESTED, "body", "nests deeper than 64 levels"),
    (b'{"description":"x","metadata":{"score":Infinity}}', "body", "'Infinity', which is not a JSON number"),
    (b'{"description":"x","metadata":{"score":NaN}}', "body", "'NaN', which is not a JSON number"),
    (b'{"description":"x","metadata":{"big":1e999}}', "body", "'1e999', which is not a JSON number"),
    (b'{"description":"a\\ud800b"}', "body", "lone UTF-16 surrogate"),
    (
        b'{"description":"x","subtasks":[{"id":"a","agent":"demo","input":"a\\ud800b"}]}',
        "body",
        "lone UTF-16 surrogate",
    ),
]


async def test_hostile_json_is_422_naming_the_rule_never_500(broker: Broker) -> None:
    assert 1800 < len(NESTED) < 2000  # about 1.9 KB, as in the report
    async with live_server(broker.settings) as url, httpx.AsyncClient(base_url=url) as http:
        for body, field, rule in HOSTILE:
            r = await http.post("/tasks", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (body[:60], r.text)
            err = r.json()["error"]
            assert err["code"] == "validation_failed" and err["field"] == field
            assert rule in err["message"], err
        ok = b'{"description":"\\ud83d\\ude00 a pair is fine","metadata":{"n":1.5}}'
        assert (
            await http.post("/tasks", content=ok, headers={"Content-Type": "application/json"})
        ).status_code == 201
        assert (await http.get("/tasks")).json()["total"] == 1


async def test_oversized_body_is_413_by_content_length_and_by_streamed_size(broker: Broker) -> None:
    app = create_app(broker.settings.with_(max_payload_bytes=2048))
    async with asgi_client(app) as api:
        big = {"description": "x", "metadata": {"k": "v" * 3000}}
        r = await api.post("/tasks", json=big)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        assert "over the limit of 2048 bytes" in r.json()["error"]["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: a chunked upload
            for _ in range(10):
                yield b" " * 500

        r = await api.post("/tasks", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert (await api.get("/tasks")).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/tasks/tnope", "task"),
        ("POST", "/tasks/tnope/cancel", "task"),
        ("GET", "/tasks/tnope/events", "task"),
        ("GET", "/jobs/tnope.a", "job"),
        ("GET", "/jobs/tnope.a/history", "job"),
        ("POST", "/dlq/tnope.a/retry", "job"),
        ("POST", "/dlq/tnope.a/discard", "job"),
    ],
)
async def test_unknown_id_is_404_never_pending(
    api: httpx.AsyncClient, method: str, path: str, kind: str
) -> None:
    r = await api.request(method, path)
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and err["field"] == f"{kind}_id"
    assert f"unknown {kind} id" in err["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_bad_query_parameters_are_422(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    r = await api.get("/tasks", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


async def test_bad_idempotency_key_is_422(api: httpx.AsyncClient) -> None:
    r = await api.post("/tasks", json={"description": "x"}, headers={"Idempotency-Key": "has space"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "Idempotency-Key"


async def test_unknown_route_is_a_json_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
