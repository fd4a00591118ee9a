"""A worker in this event loop lives through a foreign value on one agent's queue key: it keeps
serving its other agent, says so once (not per retry), and serves the paused agent again as soon
as the value is set aside."""

from __future__ import annotations

import logging

import pytest

from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.repair import find_foreign, set_aside
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


async def succeeded(b: Broker, job_ids: list[str]) -> bool:
    return all(j.state == JobState.SUCCEEDED for j in await inspect.get_jobs(b, job_ids))


async def test_a_foreign_queue_key_pauses_one_agent_and_the_worker_serves_the_other(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    b = broker
    key = b.keys.queue("t.noop")
    caplog.set_level(logging.WARNING, logger="hiveq.worker")
    async with worker_in_process(b.settings, ["t.echo", "t.noop"], concurrency=2) as worker:
        await b.redis.lpush(key, "x")
        first = await submit(b, "t.echo", [1, 2, 3])
        await until(lambda: succeeded(b, first.job_ids), 20, "t.echo's jobs")
        await until(lambda: [r for r in caplog.records if key in r.getMessage()], 20, "the key to be named")
        # Claims go on meanwhile (and retry the key); it is named once (tests/worker/
        # test_foreign_value.py holds the key 30 s over many retries).
        second = await submit(b, "t.echo", [4])
        await until(lambda: succeeded(b, second.job_ids), 20, "more of t.echo's jobs")
        named = [r for r in caplog.records if key in r.getMessage()]
        assert len(named) == 1, [r.getMessage() for r in named]
        assert "holds a list" in named[0].getMessage() and "hiveq repair" in named[0].getMessage()
        assert "still serving t.echo" in named[0].getMessage()
        assert not worker.done()

        [foreign] = await find_foreign(b)
        await set_aside(b, foreign)
        later = await submit(b, "t.noop", [None])
        await until(lambda: succeeded(b, later.job_ids), 20, "t.noop's job after the repair")
        assert any("usable again" in r.getMessage() for r in caplog.records)
        assert not worker.done()
