"""A 30 s outage of the archive database under load, then recovery: nothing is missing. The
database is cut off for this test's own database only (ALLOW_CONNECTIONS false and its backends
terminated); the machine's PostgreSQL server keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import cast

import psycopg
import pytest
from sqlalchemy import func, select

from hiveq.archive.archiver import Archiver
from hiveq.archive.schema import events, tasks
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess
from tests.archive.conftest import PG_ADMIN, archived_settings, create_database, drop_database
from tests.support.waiting import until
from tests.support.worker import worker_in_process

OUTAGE_S = 30.0
RATE = 100  # tasks per second during the whole test


@pytest.fixture
def own_database() -> Iterator[tuple[str, str]]:
    name, url = create_database()
    yield name, url
    drop_database(name)


def cut_off(name: str, allowed: bool) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )


async def load(b: Broker, stop: asyncio.Event, ids: list[str]) -> None:
    """RATE one-job tasks a second until `stop`."""
    sub = [SubtaskSpec(id="a", agent="t.noop")]
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        got = await enqueue(b, [TaskSubmission(description=f"load {n + i}", subtasks=sub) for i in range(10)])
        ids += [e.task_id for e in got]
        n += 10
        ahead = start + n / RATE - time.monotonic()
        if ahead > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), ahead)


async def _all_succeeded(b: Broker, ids: list[str]) -> bool:
    pipe = b.redis.pipeline(transaction=False)
    for tid in ids:
        pipe.hget(b.keys.task(tid), "status")
    return all(s == "succeeded" for s in await pipe.execute())


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_30_s_database_outage_under_load_loses_nothing(
    server: ServerProcess, own_database: tuple[str, str]
) -> None:
    name, url = own_database
    s = archived_settings(server.url, url, events_maxlen=100)  # a small cap: trimming would show
    b = await Broker.connect(s, role="test")
    stop_archiver, stop_load = asyncio.Event(), asyncio.Event()
    archiver = Archiver(s, block_ms=50)
    running = asyncio.create_task(archiver.run(stop_archiver))
    ids: list[str] = []
    try:
        await until(lambda: archiver.held and archiver._migrated, timeout_s=30, what="the archiver started")
        async with worker_in_process(s.with_(archive_url=None), ["t.noop"], concurrency=20):
            loading = asyncio.create_task(load(b, stop_load, ids))
            await until(lambda: len(ids) >= 2 * RATE, timeout_s=30, what="load running")
            cut_off(name, allowed=False)
            outage_start = time.monotonic()
            failures_before = archiver.counters.failures
            await until(
                lambda: _lag_over(b, 10.0),
                timeout_s=OUTAGE_S,
                what="the archive falling behind in the outage",
            )
            length = await b.redis.xlen(b.keys.events)
            assert length > 10 * 100  # the stream keeps every unarchived entry (cap 100)
            # The outage lasts OUTAGE_S whatever happens meanwhile: a duration, not a wait for an event.
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_start)))
            assert archiver.counters.failures > failures_before
            cut_off(name, allowed=True)
            await until(lambda: len(ids) >= (OUTAGE_S + 4) * RATE, timeout_s=30, what="load after the outage")
            stop_load.set()
            await loading
            await until(lambda: _all_succeeded(b, ids), timeout_s=60, what="every task done")
        await until(lambda: _caught_up(b), timeout_s=90, what="the archive caught up")
        with archiver.engine.connect() as c:
            archived = dict(
                cast(
                    "list[tuple[str, str]]",
                    c.execute(select(tasks.c.id, tasks.c.status).where(tasks.c.ns == s.namespace)).all(),
                )
            )
            job_events = c.scalar(
                select(func.count())
                .select_from(events)
                .where(events.c.ns == s.namespace, events.c.type == "job")
            )
        assert set(archived) == set(ids) and set(archived.values()) == {"succeeded"}
        # Each one-job task: enqueued -> waiting, waiting -> active, active -> succeeded.
        assert job_events == 3 * len(ids)
    finally:
        stop_archiver.set()
        await asyncio.wait_for(running, 30)
        await purge_namespace(b.redis, b.keys)
        await b.close()


async def _lag_over(b: Broker, seconds: float) -> bool:
    return (await archiving.lag(b)).seconds > seconds


async def _caught_up(b: Broker) -> bool:
    lag = await archiving.lag(b)
    return lag.seconds == 0 and lag.pending == 0
