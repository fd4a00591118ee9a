"""register_worker.lua and deregister_worker.lua: workers announce themselves and leave."""

from __future__ import annotations

import os

from hiveq.queue.broker import Broker
from hiveq.queue.registry import agent_module, deregister_worker, list_workers, register_worker
from tests.queue.helpers import stream_events


async def test_register_records_who_the_worker_is_and_its_agents(any_broker: Broker) -> None:
    b = any_broker
    info = await register_worker(b, "w1", ["beta", "alpha"], 4)
    [w] = await list_workers(b)
    assert (w.id, w.pid, w.agents, w.concurrency, w.running) == ("w1", os.getpid(), ["alpha", "beta"], 4, 0)
    assert w.client == info.client and w.client.startswith("127.0.0.1:")
    assert w.started_ms > 0 and w.last_heartbeat_ms == w.started_ms
    assert await b.redis.smembers(b.keys.agents) == {"alpha", "beta"}
    # The address recorded is this connection's, as CLIENT LIST shows it with our client name.
    clients = await b.redis.client_list()
    assert any(c["addr"] == w.client and c["name"] == b.client_name for c in clients)
    [ev] = [e for e in await stream_events(b) if e.type == "worker"]
    assert (ev.worker, ev.frm, ev.to, ev.pid, ev.data) == (
        "w1",
        "",
        "alive",
        os.getpid(),
        {"agents": ["alpha", "beta"]},
    )


async def test_the_module_of_a_user_agent_is_kept_after_its_worker_leaves(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w1", ["summarise", "demo"], 1, modules={"summarise": "my_agents"})
    await deregister_worker(b, "w1", "stopped")
    assert await agent_module(b, "summarise") == "my_agents"  # what `hiveq why` suggests for --module
    assert await agent_module(b, "demo") is None  # built-ins need no module
    await register_worker(b, "w2", ["summarise"], 1, modules={"summarise": "team.agents"})
    assert await agent_module(b, "summarise") == "team.agents"  # the latest worker's word


async def test_deregister_removes_the_worker_with_an_event(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w1", ["a"], 1)
    await register_worker(b, "w2", ["a"], 1)
    await deregister_worker(b, "w1", "SIGTERM")
    assert [w.id for w in await list_workers(b)] == ["w2"]
    assert not await b.redis.exists(b.keys.worker("w1"))
    ev = [e for e in await stream_events(b) if e.type == "worker"][-1]
    assert (ev.worker, ev.frm, ev.to, ev.reason) == ("w1", "alive", "stopped", "SIGTERM")


async def test_every_connection_is_named_for_client_list(any_broker: Broker) -> None:
    b = any_broker
    assert await b.redis.client_getname() == b.client_name
    assert b.client_name.startswith(f"hiveq:{b.settings.app}:{b.settings.env}:test")
