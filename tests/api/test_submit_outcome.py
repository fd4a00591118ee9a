"""A 503 on POST /tasks says whether the task may exist: Redis cut after the script ran (its
answer lost) is "may exist, retry with the Idempotency-Key"; Redis refusing the connection is
"not created"."""

from __future__ import annotations

from collections.abc import Callable

from hiveq.api.app import create_app
from hiveq.client import rebuild_error
from hiveq.contract.errors import OutcomeUnknown, RedisUnavailable
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.api.live import asgi_client
from tests.conftest import fresh_settings
from tests.support.proxy import ReplyCutter

TASK = {"description": "Build a user authentication system"}


async def test_reply_lost_after_the_script_ran_says_the_task_may_exist_and_a_keyed_retry_finds_it(
    broker: Broker,
) -> None:
    port = int(broker.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    async with ReplyCutter(port).running() as proxy:
        app = create_app(broker.settings.with_(redis_url=proxy.url))
        async with asgi_client(app) as api:
            assert (await api.post("/tasks", json=TASK)).status_code == 201  # warm: script loaded
            proxy.arm("EVALSHA")
            r = await api.post("/tasks", json=TASK, headers={"Idempotency-Key": "k-1"})
            assert proxy.cut.is_set()
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "outcome_unknown"
            assert (
                "failed after the task was sent" in err["message"] and "the task may exist" in err["message"]
            )
            assert "retry with the same Idempotency-Key" in err["message"]
            # Counted in Redis itself, not through the API: the script did run.
            page = await inspect.list_tasks(broker, limit=1)
            assert page.total == 2 and page.items[0].idempotency_key == "k-1"
            again = await api.post("/tasks", json=TASK, headers={"Idempotency-Key": "k-1"})
            assert again.status_code == 200 and again.json()["duplicate"] is True
            assert again.json()["task_id"] == page.items[0].id
            assert (await inspect.list_tasks(broker)).total == 2  # the retry made no second task

            proxy.arm("EVALSHA")
            r = await api.post("/tasks", json=TASK)  # without a key: how to find it, and how to be safe
            assert r.json()["error"]["code"] == "outcome_unknown"
            assert "look for it" in r.json()["error"]["message"]
            assert "send an Idempotency-Key" in r.json()["error"]["message"]


async def test_connection_refused_before_sending_says_the_task_was_not_created(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server("valkey")
    app = create_app(fresh_settings(srv.url))
    async with asgi_client(app) as api:
        assert (await api.post("/tasks", json=TASK)).status_code == 201
        srv.stop(kill=True)
        # A pooled connection that died with the server cannot be told from one cut after sending
        # (the first write on it says "may exist"); once the pool knows, connecting is refused.
        assert (await api.get("/health")).status_code == 503
        for headers in ({}, {"Idempotency-Key": "k-2"}):
            r = await api.post("/tasks", json=TASK, headers=headers)
            assert r.status_code == 503
            err = r.json()["error"]
            assert err["code"] == "redis_unavailable", err
            assert "the task was not created; submit it again when Redis is back" in err["message"]


def test_sdk_rebuilds_outcome_unknown_as_a_redis_unavailable() -> None:
    body = '{"error": {"code": "outcome_unknown", "message": "the task may exist", "field": null}}'
    exc = rebuild_error(503, body)
    assert isinstance(exc, OutcomeUnknown) and isinstance(exc, RedisUnavailable)
    assert str(exc) == "the task may exist"
