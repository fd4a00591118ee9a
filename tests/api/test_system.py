"""Health, queues, workers, metrics, auth, and Redis going away (503 within two seconds)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from hiveq.api.app import create_app
from hiveq.api.deps import token_ok
from hiveq.queue import complete, fetch, registry, retry
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess, free_port
from hiveq.settings import Settings
from tests.api.live import asgi_client
from tests.conftest import fresh_settings


async def test_health_reports_redis_version_and_namespace(api: httpx.AsyncClient, broker: Broker) -> None:
    r = await api.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["redis"]["reachable"] is True and body["redis"]["version"]
    assert body["namespace"] == broker.settings.namespace


async def test_queues_and_workers_show_depth_by_agent_and_priority(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    await api.post("/tasks", json={"description": "Build it", "priority": 2})
    await api.post(
        "/tasks", json={"description": "x", "subtasks": [{"id": "a", "agent": "llm", "priority": 9}]}
    )
    await registry.register_worker(broker, "w-1", ["demo", "llm"], concurrency=3)
    q = (await api.get("/queues")).json()
    depth = {d["agent"]: d for d in q["queues"]}
    assert depth["demo"]["waiting"] == 1 and depth["demo"]["by_priority"] == {"2": 1}
    assert depth["llm"]["by_priority"] == {"9": 1}
    assert depth["demo"]["oldest_age_ms"] >= 0
    assert q["counts"]["blocked"] == 3 and q["counts"]["waiting"] == 2
    workers = (await api.get("/workers")).json()["workers"]
    assert [(w["id"], w["agents"], w["concurrency"]) for w in workers] == [("w-1", ["demo", "llm"], 3)]


async def test_metrics_expose_depth_states_throughput_latency_dead_and_workers(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    await api.post("/tasks", json={"description": "Build it", "priority": 3})
    await registry.register_worker(broker, "w-1", ["demo"], concurrency=1)
    (job,) = await fetch.claim(broker, "w-1", ["demo"], 1)
    await complete.complete(broker, [complete.Completion(job.lease, "ok")])
    r = await api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'hiveq_queue_depth{agent="demo",priority="3"} 1.0' in text
    assert 'hiveq_jobs{state="succeeded"} 1.0' in text
    assert 'hiveq_jobs{state="blocked"} 2.0' in text
    assert 'hiveq_jobs_transitions_total{event="enqueued"} 4.0' in text
    assert "hiveq_dead_letters 0.0" in text
    assert "hiveq_workers_alive 1.0" in text
    assert "hiveq_job_run_seconds_count 1.0" in text
    assert 'hiveq_job_wait_seconds_bucket{le="+Inf"} 1.0' in text
    again = (await api.get("/metrics")).text  # a job is folded into the histograms once
    assert "hiveq_job_run_seconds_count 1.0" in again


async def test_throughput_counts_jobs_finished_in_each_bucket_of_the_window_from_redis(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    body = {"description": "four", "subtasks": [{"id": f"s{i}", "agent": "demo"} for i in range(4)]}
    tid = (await api.post("/tasks", json=body)).json()["task_id"]
    await registry.register_worker(broker, "w-1", ["demo"], concurrency=4)
    jobs = await fetch.claim(broker, "w-1", ["demo"], 4)
    await complete.complete(broker, [complete.Completion(j.lease, "ok") for j in jobs[:3]])
    await retry.fail(broker, [retry.Failure(jobs[3].lease, "boom", fatal=True)])
    r = (await api.get("/throughput", params={"window_s": 30})).json()
    assert (r["window_s"], r["bucket_s"], len(r["succeeded"]), len(r["dead"])) == (30, 0.5, 60, 60)
    assert (sum(r["succeeded"]), sum(r["dead"])) == (3, 1)
    for job in (await api.get(f"/tasks/{tid}")).json()["subtasks"]:  # each in the bucket of its finish
        bucket = int((job["finished_ms"] - (r["now_ms"] - 30_000) - 1) // 500)
        assert r["dead" if job["state"] == "dead" else "succeeded"][bucket] >= 1
    bad = await api.get("/throughput", params={"window_s": 1})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "window_s"


async def test_tokens_guard_every_route_but_health(broker: Broker) -> None:
    app = create_app(broker.settings.with_(api_tokens=("s3cret", "other")))
    async with asgi_client(app) as api:
        assert (await api.get("/health")).status_code == 200
        for method, path in [
            ("GET", "/tasks"),
            ("POST", "/tasks"),
            ("GET", "/queues"),
            ("GET", "/metrics"),
            ("GET", "/events"),
            ("GET", "/dlq"),
            ("GET", "/workers"),
        ]:
            r = await api.request(method, path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthorized"
            assert "Authorization: Bearer" in r.json()["error"]["message"]
        wrong = await api.get("/tasks", headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401
        assert (await api.get("/tasks", params={"token": "s3cret"})).status_code == 401  # query only for SSE
        # SSE accepts ?token= (EventSource cannot send headers): past auth, an unknown task is a 404.
        assert (await api.get("/tasks/tnope/events", params={"token": "s3cret"})).status_code == 404
        assert (await api.get("/tasks/tnope/events", params={"token": "nope"})).status_code == 401
        ok = await api.post("/tasks", json={"description": "x"}, headers={"Authorization": "Bearer other"})
        assert ok.status_code == 201
        tid = ok.json()["task_id"]
        assert (await api.get(f"/tasks/{tid}", headers={"Authorization": "Bearer s3cret"})).status_code == 200


def test_token_comparison_accepts_only_exact_tokens() -> None:
    assert token_ok(("a", "bb"), "bb")
    assert not token_ok(("a", "bb"), "b")
    assert not token_ok(("a",), None)
    assert not token_ok((), "a")


async def test_redis_down_is_503_with_a_clear_message_within_two_seconds(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server("valkey")
    app = create_app(fresh_settings(srv.url))
    async with asgi_client(app) as api:
        tid = (await api.post("/tasks", json={"description": "x"})).json()["task_id"]
        srv.stop(kill=True)
        for method, path in [
            ("GET", "/health"),
            ("POST", "/tasks"),
            ("GET", f"/tasks/{tid}"),
            ("GET", "/tasks"),
            ("GET", "/queues"),
            ("GET", "/metrics"),
            ("GET", "/events"),
        ]:
            start = time.monotonic()
            r = await api.request(method, path, json={"description": "x"} if method == "POST" else None)
            assert time.monotonic() - start < 2.0, path
            assert r.status_code == 503, (path, r.text)
            if path == "/health":
                assert r.json()["status"] == "unavailable"
                assert "unreachable" in r.json()["redis"]["error"]
            else:
                assert r.json()["error"]["code"] == "redis_unavailable"
                assert f"Redis at {srv.url} is unreachable" in r.json()["error"]["message"]


async def test_app_starts_while_redis_is_down_and_answers_503() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", app="tdown", env="test")
    async with asgi_client(create_app(settings)) as api:
        start = time.monotonic()
        assert (await api.get("/health")).status_code == 503
        assert (await api.post("/tasks", json={"description": "x"})).status_code == 503
        assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("host", "tokens", "insecure", "refused"),
    [
        ("127.0.0.1", (), False, False),
        ("localhost", (), False, False),
        ("::1", (), False, False),
        ("0.0.0.0", (), False, True),
        ("192.168.1.5", (), False, True),
        ("0.0.0.0", ("t",), False, False),
        ("0.0.0.0", (), True, False),
    ],
)
def test_serve_refuses_to_bind_beyond_loopback_without_a_token(
    host: str, tokens: tuple[str, ...], insecure: bool, refused: bool
) -> None:
    from hiveq.api.serve import check_bind

    msg = check_bind(Settings().with_(api_tokens=tokens), host, insecure)
    assert (msg is not None) == refused
    if msg:
        assert "HIVEQ_API_TOKENS" in msg and "--insecure" in msg


def test_serve_exits_non_zero_before_listening(capsys: pytest.CaptureFixture[str]) -> None:
    from hiveq.api.serve import serve

    with pytest.raises(SystemExit) as exit_:
        serve(Settings(), host="0.0.0.0", port=free_port(), insecure=False)
    assert exit_.value.code == 2
    assert "refusing to listen on 0.0.0.0 without an API token" in capsys.readouterr().err


async def test_stalled_redis_is_503_within_two_seconds(private_server: Callable[..., ServerProcess]) -> None:
    srv = private_server("valkey")
    app = create_app(fresh_settings(srv.url))
    async with asgi_client(app) as api:
        assert (await api.get("/health")).status_code == 200
        assert srv.proc is not None
        os.kill(srv.proc.pid, signal.SIGSTOP)  # alive but not answering: only timeouts can tell
        try:
            for method, path in [("GET", "/health"), ("POST", "/tasks")]:
                start = time.monotonic()
                r = await api.request(method, path, json={"description": "x"} if method == "POST" else None)
                assert time.monotonic() - start < 2.0, path
                assert r.status_code == 503, r.text
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)


async def test_openapi_docs_describe_the_task_body(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    body = spec["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TaskRequest"}
    fields = spec["components"]["schemas"]["TaskRequest"]["properties"]
    assert {"description", "priority", "planner", "metadata", "subtasks", "agent"} <= set(fields)
    assert fields["priority"]["minimum"] == 1 and fields["priority"]["maximum"] == 10
