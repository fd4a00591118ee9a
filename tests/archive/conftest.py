"""Archive fixtures: a real SQLite file and a real PostgreSQL database per test session.

PostgreSQL is the machine's server on 127.0.0.1:5432 (trust auth): each session creates its own
database `hiveq_test_<random>` through the `postgres` database and drops it at the end; tests that
cut a database off (the outage test) create one of their own the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from redis.asyncio import Redis

from hiveq.archive.archiver import Archiver
from hiveq.archive.read import Archive
from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.conftest import fresh_settings
from tests.support.waiting import until

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ARCHIVE_KINDS = ("sqlite", "postgresql")


def create_database() -> tuple[str, str]:
    """A new empty PostgreSQL database: (name, URL)."""
    name = "hiveq_test_" + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name, url = create_database()
    yield url
    drop_database(name)


@pytest.fixture(params=ARCHIVE_KINDS)
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each archive test runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def archived_settings(redis_url: str, archive_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "archive_url": archive_url,
        "demo_delay_s": 0.0,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "reap_interval_s": 0.05,
    }
    return fresh_settings(redis_url, **{**base, **overrides})


@pytest.fixture
async def stack(server: ServerProcess, archive_url: str) -> AsyncIterator[tuple[Broker, Archiver]]:
    """A broker and an archiver (holding the lease) in a fresh namespace with an archive."""
    s = archived_settings(server.url, archive_url, redis_retention_s=1)
    b = await Broker.connect(s, role="test")
    a = Archiver(s, block_ms=10)
    await a.connect()
    assert await a.take()
    try:
        yield b, a
    finally:
        await a.close()
        a.engine.dispose()
        r = Redis.from_url(server.url, decode_responses=True)
        await purge_namespace(r, Keyspace(s.app, s.env))
        await r.aclose()
        await b.close()


@pytest.fixture
def reader(stack: tuple[Broker, Archiver]) -> Iterator[Archive]:
    """The reading side of the same archive, as the API and the CLI open it."""
    a = Archive.of(stack[0].settings)
    assert a is not None
    yield a
    a.close()


async def drain(a: Archiver, rounds: int = 1000) -> int:
    """Archive until the stream holds nothing unarchived; returns the entries archived."""
    total = 0
    for _ in range(rounds):
        n = await a.step()
        total += n
        if n == 0 and (await archiving.lag(a.b)).seconds == 0 and not a._replay:
            return total
    raise AssertionError(f"the archiver did not catch up: {await archiving.lag(a.b)} replay={a._replay}")


async def redis_ms(b: Broker) -> int:
    now_s, now_us = await b.redis.time()
    return int(now_s) * 1000 + int(now_us) // 1000


async def clock_passes(b: Broker, ms: int) -> None:
    """Until Redis's clock is past `ms` (retention counts in Redis time)."""
    await until(lambda: _past(b, ms), what=f"Redis time past {ms}")


async def _past(b: Broker, ms: int) -> bool:
    return await redis_ms(b) > ms
