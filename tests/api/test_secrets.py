"""No secret in any output: a password-protected redis-server (requirepass) is stopped under a
running API, CLI, doctor, worker and `hiveq up`; the password and the API token appear in none of
their answers, errors or log lines, whether REDIS_URL carries the password as user info or as
`?password=`. Each output must still say which Redis it means (redacted), so the checks can fail."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hiveq.server import ServerProcess, find_server_binary, free_port
from tests.api.live import live_server
from tests.cli.conftest import ROOT, Hiveq, base_env, stop
from tests.cli.test_up import Up
from tests.conftest import fresh_settings
from tests.support.waiting import wait_for

PW = "pw-Zq81-never-shown"
TOKEN = "tok-Hx55-never-shown"
SECRETS = (PW, TOKEN)


@pytest.fixture
def locked() -> Iterator[ServerProcess]:
    """A private redis-server that requires a password; tests stop it when they need it down."""
    srv = ServerProcess(find_server_binary("redis"), password=PW).start()
    yield srv
    srv.stop(kill=True)


def urls(srv: ServerProcess) -> dict[str, str]:
    return {
        "userinfo": srv.url,  # redis://:PW@127.0.0.1:port/0
        "query": f"redis://127.0.0.1:{srv.port}/0?password={PW}",
    }


def clean(text: str) -> str:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in: {text[:2000]}"
    return text


@pytest.mark.parametrize("form", ["userinfo", "query"])
async def test_health_and_every_503_hide_the_password(locked: ServerProcess, form: str) -> None:
    settings = fresh_settings(urls(locked)[form], api_tokens=(TOKEN,))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with live_server(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.get("/health")).status_code == 200  # the password works
        locked.stop(kill=True)
        health = await http.get("/health")  # unauthenticated, as a prober would ask
        post = await http.post("/tasks", json={"description": "x"}, headers=auth)
        listing = await http.get("/tasks", headers=auth)
        for r in (health, post, listing):
            assert r.status_code == 503, r.text
            clean(r.text)
        assert "unreachable" in health.json()["redis"]["error"]
        shown = "redis://:***@127.0.0.1" if form == "userinfo" else "/0?password=***"
        assert shown in post.json()["error"]["message"] and shown in listing.json()["error"]["message"]


@pytest.mark.slow
def test_cli_errors_and_the_doctor_hide_the_password(locked: ServerProcess) -> None:
    clis = {
        form: Hiveq(base_env(REDIS_URL=url, HIVEQ_APP="secrets", HIVEQ_ENV="test"))
        for form, url in urls(locked).items()
    }
    for cli in clis.values():  # Redis up: the doctor's report and evidence name the URL
        res = cli("doctor", "--json")
        assert '"redis_url"' in clean(res.stdout + res.stderr)
        assert "***" in res.stdout
    locked.stop(kill=True)
    for cli in clis.values():
        res = cli("tasks")
        assert res.returncode == 5, res.stderr
        assert "unreachable" in clean(res.stdout + res.stderr)
        res = cli("doctor", "--json")
        assert res.returncode == 1 and "unreachable" in clean(res.stdout + res.stderr)
        res = cli("--redis-url", urls(locked)["userinfo"].replace("redis://", "http://"), "tasks")
        assert res.returncode == 2 and "is not a Redis URL" in clean(res.stderr)


@pytest.mark.slow
def test_worker_log_lines_hide_the_password(locked: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    env = base_env(REDIS_URL=locked.url, HIVEQ_APP="secrets", HIVEQ_ENV="test", HIVEQ_API_TOKENS=TOKEN)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hiveq", "worker", "--log-level", "debug"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        wait_for(lambda: "worker started" in log.read_text(), 30, "the worker to start")
        locked.stop(kill=True)
        wait_for(lambda: "Redis lost at" in log.read_text(), 30, "the worker to notice the outage")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = clean(log.read_text())
    assert "Redis lost at redis://:***@127.0.0.1" in text


@pytest.mark.slow
def test_serve_access_log_hides_the_sse_token_and_query_passwords(
    locked: ServerProcess, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    port = free_port()
    env = base_env(REDIS_URL=locked.url, HIVEQ_APP="secrets", HIVEQ_ENV="test", HIVEQ_API_TOKENS=TOKEN)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hiveq", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/health"), 30, "the API to start")
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/tasks/tnope/events", params={"token": TOKEN}).status_code == 404
            assert http.get("/docs", params={"token": TOKEN}).status_code == 200
            assert http.get("/health", params={"password": PW}).status_code == 200
            locked.stop(kill=True)
            assert http.get("/health").status_code == 503
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = clean(log.read_text())
    assert "GET /tasks/tnope/events?token=*** HTTP/1.1" in text  # the access log is there, redacted
    assert "GET /health?password=*** HTTP/1.1" in text


@pytest.mark.slow
def test_up_banner_and_its_children_hide_the_password_and_token(
    locked: ServerProcess, tmp_path: Path
) -> None:
    api_port = free_port()
    up = Up(tmp_path / "data", api_port, free_port(), "--token", TOKEN, env={"REDIS_URL": locked.url})
    try:
        up.wait_up()
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            assert http.get("/tasks/tnope/events", params={"token": TOKEN}).status_code == 404
        locked.stop(kill=True)
        wait_for(lambda: "Redis lost at" in up.output, 30, "the worker to notice the outage")
        assert up.interrupt() == 0, up.output
    finally:
        stop(up.proc, signal.SIGKILL)
    text = clean(up.output)
    assert "Redis      redis://:***@127.0.0.1" in text


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
