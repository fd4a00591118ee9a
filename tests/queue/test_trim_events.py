"""trim_events.lua: the archiver trims what it archived, never an entry its consumer group still
holds unacknowledged; with an archive attached, scripts themselves trim nothing."""

from __future__ import annotations

from typing import cast

from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.conftest import _broker
from tests.queue.helpers import enqueue_task, st


async def ids(b: Broker) -> list[str]:
    return [e for e, _ in cast("list[tuple[str, dict[str, str]]]", await b.redis.xrange(b.keys.events))]


async def test_nothing_is_trimmed_past_the_oldest_unacknowledged_entry(any_broker: Broker) -> None:
    b = any_broker
    for _ in range(300):
        await enqueue_task(b, st("x"))
    await archiving.ensure_group(b)
    entries = await archiving.read(b, 300, None, pending=False)
    await archiving.ack(b, [e for e, _ in entries[:100]])  # archived the first 100 only
    last = entries[-1][0]
    await archiving.trim_events(b, last)  # asks for everything before the newest to go
    left = await ids(b)
    assert left[left.index(entries[100][0]) :] == [e for e, _ in entries[100:]]  # the 200 are kept
    assert entries[0][0] not in left  # a whole node of archived entries went
    await archiving.ack(b, [e for e, _ in entries[100:]])
    assert await archiving.trim_events(b, last) >= 0
    assert (await ids(b))[-1] == last


async def test_a_trim_without_the_group_or_with_a_bad_bound_deletes_nothing(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    assert await archiving.trim_events(b, "99999999999999-0") == 0  # no group: nothing archived
    await archiving.ensure_group(b)
    assert await archiving.trim_events(b, "not-an-id") == 0
    assert await b.redis.xlen(b.keys.events) == 1


async def test_with_an_archive_attached_the_stream_keeps_every_entry_until_archived(
    server: ServerProcess,
) -> None:
    async for b in _broker(server.url, events_maxlen=100):
        await archiving.lease(b, "archiver", "take", 60_000, "sqlite")
        b._cap_read_at = float("-inf")
        for _ in range(1000):
            await enqueue_task(b, st("x"))
        assert await b.redis.xlen(b.keys.events) == 1000  # the archiver is away: all kept
        await archiving.lease(b, "archiver", "drop", 0)
        await archiving.lease(b, "cli", "detach", 0)
        b._cap_read_at = float("-inf")
        await enqueue_task(b, st("x"))
        assert await b.redis.xlen(b.keys.events) < 1000  # detached: the cap is back
