"""HIVEQ_MIN_REPLICAS on the worker: a claim no replica confirmed is handed back unstarted (a
failover could lose its lease and the job would run twice), the worker keeps running and says
why, and once a replica is back the job runs exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.api.test_replicated import replica_of
from tests.conftest import fresh_settings
from tests.queue.helpers import state_of
from tests.support.agents import executions_key
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


async def test_unconfirmed_claims_are_handed_back_and_the_job_runs_once_when_a_replica_is_back(
    private_server: Callable[..., ServerProcess], caplog: pytest.LogCaptureFixture
) -> None:
    primary = private_server("redis")
    s = fresh_settings(primary.url, min_replicas=1, replica_timeout_ms=100)
    producer = await Broker.connect(s.with_(min_replicas=0), role="test")
    raw = Redis.from_url(primary.url, decode_responses=True)
    try:
        done = await submit(producer, "t.count", [{}])
        job = done.job_ids[0]
        with caplog.at_level(logging.WARNING):
            async with worker_in_process(s, ["t.count"], concurrency=2) as w:
                await until(lambda: "claim step was written" in caplog.text, 20, "the worker to say why")
                # Each refused claim leases the job for one WAIT, then hands it back: it is seen
                # waiting again (not left leased), and it never starts.
                await until(lambda: _is(state_of(producer, job), "waiting"), 20, "the job to be handed back")
                assert await raw.get(executions_key(s.namespace, job)) is None  # never started
                replica_of(private_server, primary)
                await until(lambda: state_of(producer, job), 30, "the job to run", interval_s=0.05)
                await until(lambda: _is(state_of(producer, job), "succeeded"), 30, "the job to succeed once")
                assert not w.done()  # the worker never exited
        assert await raw.get(executions_key(s.namespace, job)) == "1"
        assert "Traceback" not in caplog.text
    finally:
        await raw.aclose()
        await producer.close()


async def _is(value: object, want: str) -> bool:
    got = await value  # type: ignore[misc]
    return bool(got == want)
