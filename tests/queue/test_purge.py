"""purge: one namespace is removed with SCAN; other namespaces and foreign keys survive."""

from __future__ import annotations

from redis.asyncio import Redis

from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import register_worker
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.queue.helpers import enqueue_task, st


async def _populate(b: Broker) -> None:
    await register_worker(b, "w", ["a"], 1)
    await enqueue_task(b, st("x"), st("y", deps=("x",)), idem="k")
    await claim(b, "w", ["a"], 1)


async def test_purge_removes_only_our_namespace(any_server: ServerProcess) -> None:
    mine = await Broker.connect(fresh_settings(any_server.url), role="test")
    theirs = await Broker.connect(fresh_settings(any_server.url), role="test")
    raw = Redis.from_url(any_server.url, decode_responses=True)
    foreign = f"work_queue:{mine.settings.app}"  # a generic name another app might use
    try:
        await _populate(mine)
        await _populate(theirs)
        await raw.lpush(foreign, "celery-job")
        before = [k async for k in raw.scan_iter(match=mine.keys.prefix + "*")]
        assert len(before) >= 10
        removed = await purge_namespace(raw, Keyspace(mine.settings.app, mine.settings.env))
        assert removed == len(before)
        assert [k async for k in raw.scan_iter(match=mine.keys.prefix + "*")] == []
        assert len([k async for k in raw.scan_iter(match=theirs.keys.prefix + "*")]) >= 10
        assert await raw.lrange(foreign, 0, -1) == ["celery-job"]
    finally:
        await purge_namespace(raw, theirs.keys)
        await raw.delete(foreign)
        await raw.aclose()
        await mine.close()
        await theirs.close()
