"""Neighbours: a namespace whose jobs nobody runs hears which other namespaces on the same Redis
have live workers, and which command starts a worker for its agents (with `--module`)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from hiveq.diagnose.neighbours import neighbours, start_worker_command, unserved_hint
from hiveq.diagnose.why import why
from hiveq.queue.broker import Broker
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import deregister_worker, register_worker
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.queue.helpers import enqueue_task, st


@pytest.fixture
async def other(server: ServerProcess) -> AsyncIterator[Broker]:
    """A live worker in another namespace of the same server, named as real workers name theirs."""
    async with worker_namespace(server.url) as b:
        yield b


@asynccontextmanager
async def worker_namespace(url: str) -> AsyncIterator[Broker]:
    s = fresh_settings(url)
    b = await Broker.connect(s, role="worker", ident="w-elsewhere")
    await register_worker(b, "w-elsewhere", ["demo", "summarise-x"], 2)
    try:
        yield b
    finally:
        r = Redis.from_url(url, decode_responses=True)
        await purge_namespace(r, Keyspace(s.app, s.env))
        await r.aclose()
        await b.close()


async def test_live_workers_of_other_namespaces_are_found_with_their_agents(
    broker: Broker, other: Broker
) -> None:
    found = {n.namespace: n for n in await neighbours(broker, ["summarise-x"])}
    mine = found[other.settings.namespace]
    assert (mine.workers, mine.agents) == (1, ("demo", "summarise-x"))
    assert broker.settings.namespace not in found


async def test_a_namespace_without_workers_gets_a_hint_naming_the_other_namespace(
    broker: Broker, other: Broker
) -> None:
    hint = await unserved_hint(broker, ["summarise-x"])
    assert hint is not None
    assert hint.startswith(
        f"no live worker in namespace {broker.settings.namespace} serves agent(s) summarise-x"
    )
    o = other.settings
    assert f"{o.namespace} (1 worker(s) serving demo, summarise-x)" in hint
    assert f"set HIVEQ_APP={o.app} HIVEQ_ENV={o.env}" in hint
    await register_worker(broker, "w-here", ["summarise-x"], 1)
    assert await unserved_hint(broker, ["summarise-x"]) is None  # served here: nothing to say


async def test_the_start_command_names_the_module_a_custom_agent_came_from(broker: Broker) -> None:
    assert await start_worker_command(broker, ["demo"]) == "hiveq worker --agents demo"
    assert await start_worker_command(broker, ["summarise"]) == (
        "hiveq worker --agents summarise --module <your module>"
    )
    await register_worker(broker, "w", ["summarise"], 1, modules={"summarise": "my_agents"})
    await deregister_worker(broker, "w")
    assert await start_worker_command(broker, ["summarise", "demo"]) == (
        "hiveq worker --agents demo,summarise --module my_agents"
    )


async def test_why_of_a_waiting_custom_job_suggests_its_module_and_the_other_namespace(
    broker: Broker, other: Broker
) -> None:
    await register_worker(broker, "w", ["summarise-x"], 1, modules={"summarise-x": "my_agents"})
    await deregister_worker(broker, "w")  # it served the agent once, then stopped
    res = await enqueue_task(broker, st("a", agent="summarise-x"))
    answer = await why(broker, res.job_ids[0])
    assert answer.summary.startswith(
        "no live worker serves agent summarise-x: start one with "
        "`hiveq worker --agents summarise-x --module my_agents`"
    )
    assert f"If you meant {other.settings.namespace}, set HIVEQ_APP={other.settings.app}" in answer.summary
    assert answer.details["start_worker"] == "hiveq worker --agents summarise-x --module my_agents"
    assert {"namespace": other.settings.namespace, "workers": 1, "agents": ["demo", "summarise-x"]} in (
        answer.details["other_namespaces"]
    )


@pytest.mark.slow
async def test_where_client_list_is_refused_other_namespaces_are_found_by_a_bounded_scan(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server()
    admin = Redis.from_url(srv.url, decode_responses=True)
    password = secrets.token_hex(8)
    await admin.acl_setuser(
        "limited", enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all", "-client|list"]
    )
    limited_url = f"redis://limited:{password}@127.0.0.1:{srv.port}/0"
    try:
        async with worker_namespace(srv.url) as elsewhere:
            b = await Broker.connect(fresh_settings(limited_url), role="cli", check_namespace=False)
            try:
                with pytest.raises(Exception, match="no permissions"):
                    await b.redis.client_list()
                [n] = await neighbours(b)
                assert (n.namespace, n.workers) == (elsewhere.settings.namespace, 1)
            finally:
                await b.close()
    finally:
        await admin.aclose()
