"""A web page on another origin cannot drive the token-less loopback API: Host allow-list (DNS
rebinding), Origin check on state-changing requests, no form bodies from browsers."""

from __future__ import annotations

import httpx
import pytest

from hiveq.api.app import create_app
from hiveq.api.guard import allowed_hosts, host_name
from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.api.live import asgi_client, live_server

TASK = b'{"description": "Build a user authentication system"}'
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def total(api: httpx.AsyncClient) -> int:
    count: int = (await api.get("/tasks")).json()["total"]
    return count


@pytest.mark.parametrize("host", ["localhost:8001", "127.0.0.1", "[::1]:8001", "LOCALHOST.:8001"])
async def test_loopback_host_names_are_answered(api: httpx.AsyncClient, host: str) -> None:
    assert (await api.get("/health", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/tasks", "/docs", "/dashboard/"])
async def test_a_rebound_host_name_is_421_naming_the_setting(api: httpx.AsyncClient, path: str) -> None:
    r = await api.get(path, headers={"Host": "evil.example:8001"})
    assert r.status_code == 421
    err = r.json()["error"]
    assert err["code"] == "host_not_allowed" and err["field"] == "Host"
    assert "'evil.example:8001'" in err["message"] and "HIVEQ_ALLOWED_HOSTS" in err["message"]


async def test_allowed_hosts_setting_adds_names_and_star_allows_any(broker: Broker) -> None:
    app = create_app(broker.settings.with_(allowed_hosts=("hiveq.internal",)))
    async with asgi_client(app) as api:
        assert (await api.get("/health", headers={"Host": "hiveq.internal:8001"})).status_code == 200
        assert (await api.get("/health", headers={"Host": "localhost"})).status_code == 200
        assert (await api.get("/health", headers={"Host": "other.internal"})).status_code == 421
    async with asgi_client(create_app(broker.settings.with_(allowed_hosts=("*",)))) as api:
        assert (await api.get("/health", headers={"Host": "anything.example"})).status_code == 200


def test_wildcard_bind_answers_any_host_unless_a_list_is_set() -> None:
    assert allowed_hosts(Settings().with_(host="0.0.0.0", api_tokens=("t",))) is None
    assert allowed_hosts(Settings().with_(host="0.0.0.0", allowed_hosts=("api.example",))) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "api.example",
    )
    assert allowed_hosts(Settings().with_(host="192.168.1.5")) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "192.168.1.5",
    )
    assert host_name("[::1]:8001") == "::1" and host_name("Example.COM:80") == "example.com"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # sandboxed frames and file:// pages
        {"Origin": "http://127.0.0.1.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},  # a browser that left Origin out
        {"Origin": "http://evil.example", **FORM, "Sec-Fetch-Site": "cross-site"},  # an HTML form post
    ],
)
async def test_state_changing_request_from_another_origin_is_403_and_changes_nothing(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    tid = (await api.post("/tasks", json={"description": "mine"})).json()["task_id"]
    for path in ("/tasks", f"/tasks/{tid}/cancel", f"/dlq/{tid}.design/retry"):
        r = await api.post(path, content=TASK, headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 403, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == "origin_not_allowed" and err["field"] == "Origin"
        assert "HIVEQ_ALLOWED_HOSTS" in err["message"]
    assert await total(api) == 1
    assert (await api.get(f"/tasks/{tid}")).json()["status"] == "queued"


@pytest.mark.parametrize("origin", ["http://127.0.0.1", "http://localhost:3000", "http://[::1]:5173"])
async def test_same_origin_and_loopback_origins_may_post_json(api: httpx.AsyncClient, origin: str) -> None:
    r = await api.post("/tasks", content=TASK, headers={"Content-Type": "application/json", "Origin": origin})
    assert r.status_code == 201, r.text


async def test_reads_from_another_origin_are_not_refused_by_the_origin_check(api: httpx.AsyncClient) -> None:
    # Reading needs no Origin check: the browser withholds cross-origin answers (no CORS headers),
    # and a rebound Host is refused above.
    r = await api.get("/tasks", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_form_bodies_are_refused_from_browsers_even_on_an_allowed_origin(
    api: httpx.AsyncClient,
) -> None:
    for browser in (
        {"Origin": "http://127.0.0.1"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Mode": "cors"},
    ):
        for ctype in (FORM, {}):
            r = await api.post("/tasks", content=TASK, headers={**ctype, **browser})
            assert r.status_code == 415, (browser, ctype, r.text)
            assert r.json()["error"]["code"] == "unsupported_media_type"
    assert await total(api) == 0


async def test_curl_form_typed_json_still_works_outside_browsers(api: httpx.AsyncClient) -> None:
    assert (await api.post("/tasks", content=TASK, headers=FORM)).status_code == 201
    assert (await api.post("/tasks", content=TASK)).status_code == 201  # no Content-Type at all


async def test_real_server_refuses_a_rebound_host_and_a_cross_site_form(broker: Broker) -> None:
    async with live_server(broker.settings) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/tasks", headers={"Host": "attacker.example"})
        assert r.status_code == 421
        form = {**FORM, "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}
        assert (await http.post("/tasks", content=TASK, headers=form)).status_code == 403
        assert (await http.get("/tasks")).json()["total"] == 0
