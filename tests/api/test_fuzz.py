"""Property-based fuzz of the whole API from its own OpenAPI schema (schemathesis) against a real
uvicorn process: no 5xx, and every response matches the schema (status, content type, body)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks

from hiveq.api.app import create_app
from hiveq.queue.keys import Keyspace
from hiveq.server import ServerProcess, free_port
from hiveq.settings import Settings
from tests.conftest import fresh_settings

ROOT = Path(__file__).resolve().parents[2]
# Acceptance of schema-valid data is not a property of this API: a well-formed task is still refused
# when it names an agent no worker registered or a graph with a cycle. Those rules depend on the
# namespace's state or span several fields, so they cannot live in the schema (the planner, which
# can, is an enum there).
EXCLUDED = [checks.positive_data_acceptance]


@pytest.fixture(scope="module")
def api_url(server: ServerProcess) -> Iterator[str]:
    s = fresh_settings(server.url)
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": s.redis_url,
        "HIVEQ_APP": s.app,
        "HIVEQ_ENV": s.env,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "hiveq.api.app:create_app_from_env",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)  # polling a subprocess's readiness: there is no event to await
    yield url
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()
    import redis

    r = redis.Redis.from_url(server.url)
    keys = list(r.scan_iter(match=Keyspace(s.app, s.env).prefix + "*", count=1000))
    if keys:
        r.unlink(*keys)
    r.close()


# The schema comes from the app itself (no server needed to build it). Left out: the namespace
# stream (it never ends, by design) and /doctor (its `sample` asks for up to 30 s of MONITOR per
# call; it has its own tests). Every other operation is fuzzed.
schema = (
    schemathesis.openapi.from_dict(create_app(Settings()).openapi())
    .exclude(path="/events")
    .exclude(path="/doctor")
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_5xx_and_answers_match_the_schema(case: Any, api_url: str) -> None:
    response = case.call(base_url=api_url, timeout=10)
    assert response.status_code < 500, response.text
    case.validate_response(response, excluded_checks=EXCLUDED)
