"""The seed incident, reproduced with real processes: a foreign consumer BRPOPs `work_queue` on
the same Redis, a rogue process pops one of hiveq's own keys; the doctor names both by address
and client name, and the audit lists the stolen jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Verdict
from hiveq.diagnose.why import why
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import wait_for_work
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import register_worker
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.diagnose.helpers import GENERIC_CONSUMER, THIEF, read_line, script
from tests.queue.helpers import enqueue_task, st
from tests.support.waiting import until

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def hiveq_worker(b: Broker) -> AsyncIterator[str]:
    """A registered hiveq worker of the namespace, blocked on its wake marker like a real one."""
    info = await register_worker(b, "w-live", ["other"], 1)
    wait_conn = Redis.from_url(
        b.settings.redis_url, decode_responses=True, client_name=b.keys.client_name("worker", "w-live")
    )
    task = asyncio.create_task(wait_for_work(b, ["other"], timeout_s=30, conn=wait_conn))
    try:
        yield info.client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await wait_conn.aclose()


@pytest.mark.parametrize("kind", ["valkey", "redis"])
async def test_doctor_names_the_generic_consumer_and_the_thief_and_audit_lists_stolen_jobs(
    private_server: Callable[..., ServerProcess], kind: str
) -> None:
    srv = private_server(kind)
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    try:
        res = await enqueue_task(b, st("a", agent="demo"), st("b", agent="demo"))
        queue = b.keys.queue("demo")
        async with hiveq_worker(b) as worker_addr:
            with (
                script(GENERIC_CONSUMER, srv.url, "celery@web-1") as consumer,
                script(THIEF, srv.url, "rogue-thief", queue) as thief,
            ):
                consumer_addr = await read_line(consumer)
                thief_addr = await read_line(thief)
                # A list pop on hiveq's queue fails loudly instead of stealing.
                assert "WRONGTYPE" in await read_line(thief)
                stolen = {(await read_line(thief)).removeprefix("stole ") for _ in res.job_ids}
                assert stolen == set(res.job_ids)
                await until(lambda: _blocked_in(b, "brpop"), 20, "the generic consumer to block")
                await until(lambda: _blocked_in(b, "bzpopmin"), 20, "our worker to block")

                plain = await run_doctor(b)
                sampled = await run_doctor(b, sample_s=1.5)

        # Without a sample, CLIENT LIST alone names both consumers (a warning: no proof yet).
        consumers = plain.check("foreign consumers")
        assert consumers.verdict == Verdict.WARN
        text = "\n".join(consumers.lines())
        assert f"{consumer_addr} name='celery@web-1'" in text and "brpop" in text
        assert f"{thief_addr} name='rogue-thief'" in text and "zpopmin" in text
        assert worker_addr not in text and "w-live" not in text  # our own worker is not foreign

        # With a MONITOR sample the thief is caught touching our keys: a failure, named.
        caught = sampled.check("foreign consumers")
        assert caught.verdict == Verdict.FAIL
        text = "\n".join(caught.lines())
        assert f"{thief_addr} name='rogue-thief'" in text and queue in text
        assert consumer_addr in text  # still listed, as a consumer on this Redis
        seen = "\n".join(sampled.check("monitor sample").lines())
        assert f"{consumer_addr} name='celery@web-1'" in seen and "work_queue" in seen

        # The audit lists the stolen jobs with their last custody event (enqueued).
        for report in (plain, sampled):
            audit = report.check("vanished jobs")
            assert audit.verdict == Verdict.FAIL
            for job_id in res.job_ids:
                assert any(
                    line.startswith(f"{job_id}: record says waiting") and "-> waiting" in line
                    for line in audit.lines()
                )
        assert not sampled.ok

        answer = await why(b, res.job_ids[0])
        assert answer.state == "waiting"
        assert answer.summary.startswith("vanished") and queue in answer.summary
    finally:
        await purge_namespace(b.redis, b.keys)
        await b.close()


async def _blocked_in(b: Broker, cmd: str) -> bool:
    rows = await b.redis.client_list()
    return any("b" in r.get("flags", "") and r.get("cmd") == cmd for r in rows)
