"""One archiver at a time: a second one waits; when the first is SIGKILLed mid-batch (a real
process), the second takes over within seconds and replays what the first had read but not
acknowledged, leaving no duplicate and nothing missing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest
from redis import exceptions as rex
from sqlalchemy import func, select

from hiveq.archive.archiver import LEASE_MS, Archiver
from hiveq.archive.schema import events, tasks
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.keys import ARCHIVE_GROUP
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.archive.conftest import archived_settings, drain
from tests.archive.test_archiver import stream_events
from tests.cli.conftest import ROOT, base_env
from tests.support.waiting import until

TASKS = 4000


async def test_a_second_archiver_waits_while_the_first_holds_the_lease(
    stack: tuple[Broker, Archiver],
) -> None:
    b, first = stack
    second = Archiver(b.settings, block_ms=10)
    await second.connect()
    try:
        assert not await second.take()
        assert (await archiving.lease(b, "someone", "keep", LEASE_MS)).holder == first.ident
        await first.close()  # a clean stop gives the lease up at once
        assert await second.take()
    finally:
        await second.close()
        second.engine.dispose()


@pytest.mark.slow
async def test_a_sigkilled_archiver_is_replaced_and_its_batch_replayed_without_loss_or_duplicates(
    server: ServerProcess, archive_url: str
) -> None:
    s = archived_settings(server.url, archive_url)
    b = await Broker.connect(s, role="test")
    sub = [SubtaskSpec(id="a", agent="t.noop")]
    for at in range(0, TASKS, 50):  # one stream entry per call: many entries
        await asyncio.gather(
            *(enqueue(b, [TaskSubmission(description=f"k{i}", subtasks=sub)]) for i in range(at, at + 50))
        )
    proc = spawn_archiver(s)
    try:
        await until(lambda: _pending(b), timeout_s=60, interval_s=0.001, what="the archiver mid-batch")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert await _pending(b) > 0  # it died holding a batch it had not acknowledged
        successor = Archiver(s, block_ms=10)
        await successor.connect()
        try:
            await until(successor.take, timeout_s=(LEASE_MS / 1000) + 5, what="the successor takes the lease")
            await drain(successor)
            with successor.engine.connect() as c:
                archived = c.scalar(
                    select(func.count()).select_from(events).where(events.c.ns == s.namespace)
                )
                n_tasks = c.scalar(select(func.count()).select_from(tasks).where(tasks.c.ns == s.namespace))
            assert archived == len(await stream_events(b))  # each event once: none missing, none twice
            assert n_tasks == TASKS
            assert await _pending(b) == 0
        finally:
            await successor.close()
            successor.engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
        await purge_namespace(b.redis, b.keys)
        await b.close()


def spawn_archiver(s: Settings) -> subprocess.Popen[bytes]:
    """`hiveq archiver` as its own process."""
    env = base_env(
        REDIS_URL=s.redis_url, HIVEQ_APP=s.app, HIVEQ_ENV=s.env, HIVEQ_ARCHIVE_URL=s.archive.archive_url or ""
    )
    return subprocess.Popen(
        [sys.executable, "-m", "hiveq", "archiver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def _pending(b: Broker) -> int:
    try:
        return int((await b.redis.xpending(b.keys.events, ARCHIVE_GROUP))["pending"])
    except rex.ResponseError:  # the group does not exist yet
        return 0
