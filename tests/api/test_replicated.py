"""HIVEQ_MIN_REPLICAS: a 201 means the task is on the primary AND on that many replicas (WAIT on
the script's connection). Without the replicas, POST /tasks answers 503 `not_replicated`: the
task may exist, and a retry with the same Idempotency-Key is safe."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis

from hiveq.api.app import create_app
from hiveq.client import rebuild_error
from hiveq.contract.errors import NotReplicated
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.api.live import asgi_client
from tests.conftest import fresh_settings
from tests.support.waiting import wait_for

TASK = {"description": "Build a user authentication system"}


def replica_of(make: Callable[..., ServerProcess], primary: ServerProcess) -> ServerProcess:
    replica = make("redis", extra=["--replicaof", "127.0.0.1", str(primary.port)])

    def synced() -> bool:
        with Redis(port=replica.port, decode_responses=True) as r:
            return bool(r.info("replication").get("master_link_status") == "up")

    wait_for(synced, 20, "the replica to sync")
    return replica


async def test_with_min_replicas_a_submit_is_acknowledged_only_once_a_replica_has_it(
    private_server: Callable[..., ServerProcess],
) -> None:
    primary = private_server("redis")
    replica = replica_of(private_server, primary)
    s = fresh_settings(primary.url, min_replicas=1, replica_timeout_ms=300)
    async with asgi_client(create_app(s, watch=False)) as api:
        ok = await api.post("/tasks", json=TASK, headers={"Idempotency-Key": "k-ok"})
        assert ok.status_code == 201, ok.text
        with Redis(port=replica.port, decode_responses=True) as r:  # on the replica already
            assert r.hget(f"hiveq:{{{s.app}:{s.env}}}:task:{ok.json()['task_id']}", "description")

        replica.stop()
        r = await api.post("/tasks", json=TASK, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["code"] == "not_replicated"
        assert "0 of 1 replica(s)" in err["message"] and "HIVEQ_MIN_REPLICAS" in err["message"]
        assert "the task may exist; retry with the same Idempotency-Key" in err["message"]
        assert isinstance(rebuild_error(r.status_code, r.text), NotReplicated)  # the SDK knows it
        b = await Broker.connect(s, role="test")
        try:
            page = await inspect.list_tasks(b, limit=1)
            assert page.total == 2 and page.items[0].idempotency_key == "k-1"  # written on the primary
            again = await api.post("/tasks", json=TASK, headers={"Idempotency-Key": "k-1"})
            assert again.status_code == 200 and again.json()["task_id"] == page.items[0].id
            assert (await inspect.list_tasks(b)).total == 2  # the retry made no second task
        finally:
            await b.close()
