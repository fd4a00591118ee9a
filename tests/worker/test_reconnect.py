"""reconnect: the delays between a loop's attempts to reach Redis grow, are capped and jittered, and
start over once Redis answers; the link says "lost" and "restored" once per outage, and a stale
pooled connection after a server restart is not taken for an outage."""

from __future__ import annotations

import logging

import pytest

from hiveq.server import ServerProcess, free_port
from hiveq.worker.reconnect import Link, ReconnectDelay, reachable

LOG = logging.getLogger("tests.reconnect")


def test_delays_double_from_base_up_to_the_cap_each_jittered_down_to_half() -> None:
    delay = ReconnectDelay(base=0.1, cap=0.5)
    for nominal in (0.1, 0.2, 0.4, 0.5, 0.5, 0.5):
        d = delay.next_delay()
        assert nominal / 2 <= d <= nominal, (nominal, d)


def test_delays_are_jittered_so_loops_failing_together_do_not_retry_together() -> None:
    delays = {ReconnectDelay(base=1.0, cap=1.0).next_delay() for _ in range(20)}
    assert len(delays) > 1


def test_reset_starts_the_next_outage_again_from_the_base_delay() -> None:
    delay = ReconnectDelay(base=0.1, cap=10.0)
    for _ in range(6):
        delay.next_delay()
    delay.reset()
    assert delay.next_delay() <= 0.1


def test_delays_stay_at_the_cap_however_long_the_outage() -> None:
    delay = ReconnectDelay(base=0.05, cap=2.0)
    assert max(delay.next_delay() for _ in range(1000)) <= 2.0


async def test_the_probe_tells_a_live_server_from_a_closed_port(server: ServerProcess) -> None:
    assert await reachable(server.url, "hiveq:test-probe")
    assert not await reachable(f"redis://127.0.0.1:{free_port()}/0", "hiveq:test-probe")


async def test_an_outage_is_logged_once_when_lost_and_once_when_restored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link(LOG, f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        for _ in range(3):  # every loop reports the same outage
            await link.failed("Connection refused")
        assert not link.up and link.outages == 1
        link.restored()
        link.restored()
    lines = [r.getMessage() for r in caplog.records if r.name == LOG.name]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Redis lost at") and "Connection refused" in lines[0]
    assert lines[1].startswith("Redis restored at")
    assert link.up and link.generation == 1


async def test_a_stale_pooled_connection_is_dropped_without_calling_it_an_outage(
    server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[bool] = []

    async def drop_idle() -> None:
        dropped.append(True)

    link = Link(LOG, server.url, drop_idle=drop_idle)
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        await link.failed("Connection closed by server")
    assert link.up and link.outages == 0 and link.generation == 0
    assert dropped == [True]
    warnings = [r for r in caplog.records if r.name == LOG.name and r.levelno >= logging.WARNING]
    assert warnings == []
