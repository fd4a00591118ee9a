"""archive_lease.lua: one archiver holds the lease; while it does, meta says an archive is
attached, and every client stops trimming the event stream (broker.events_cap)."""

from __future__ import annotations

from hiveq.queue import archiving
from hiveq.queue.broker import NO_TRIM, Broker


async def test_take_keep_and_drop_belong_to_the_holder_alone(any_broker: Broker) -> None:
    b = any_broker
    assert await archiving.lease(b, "one", "take", 5000, "sqlite") == archiving.LeaseState(True, "one", True)
    assert await archiving.lease(b, "one", "take", 5000, "sqlite") == archiving.LeaseState(True, "one", False)
    assert await archiving.lease(b, "two", "take", 5000, "sqlite") == archiving.LeaseState(False, "one")
    assert await archiving.lease(b, "two", "keep", 5000, "sqlite") == archiving.LeaseState(False, "one")
    assert (await archiving.lease(b, "one", "keep", 5000, "sqlite")).held
    assert 4000 < await b.redis.pttl(b.keys.archiver) <= 5000
    assert await archiving.lease(b, "two", "drop", 0) == archiving.LeaseState(False, "one")
    assert await archiving.lease(b, "one", "drop", 0) == archiving.LeaseState(False, "")
    assert await b.redis.hget(b.keys.meta, "archive") == "sqlite"  # still attached: others take over
    assert (await archiving.lease(b, "two", "take", 5000, "postgresql")).held


async def test_while_attached_scripts_stop_trimming_and_detach_brings_the_cap_back(
    any_broker: Broker,
) -> None:
    b = any_broker
    assert await b.events_cap() == b.settings.retention.events_maxlen
    await archiving.lease(b, "one", "take", 5000, "sqlite")
    b._cap_read_at = float("-inf")  # as if ARCHIVE_FLAG_REFRESH_S had passed
    assert await b.events_cap() == NO_TRIM
    assert await archiving.lease(b, "cli", "detach", 0) == archiving.LeaseState(False, "one")  # refused
    await archiving.lease(b, "one", "drop", 0)
    assert await archiving.lease(b, "cli", "detach", 0) == archiving.LeaseState(False, "")
    assert not await b.redis.hexists(b.keys.meta, "archive")
    b._cap_read_at = float("-inf")
    assert await b.events_cap() == b.settings.retention.events_maxlen
