"""Shared Redis: other applications' keys are shown as information with the risk explained, and
the doctor itself never writes into a database it merely inspects."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from redis.asyncio import Redis

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Verdict
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.conftest import fresh_settings
from tests.queue.helpers import enqueue_task, st

SHARED_REDIS = "redis://127.0.0.1:6379/0"


async def test_other_apps_keys_are_listed_by_kind_with_the_risk_explained(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server("valkey")
    other = Redis.from_url(srv.url, decode_responses=True)
    await other.lpush("work_queue", "job-of-another-app")
    await other.lpush("celery", "{}")
    await other.set("rq:job:123", "x")
    await other.set("bull:emails:wait", "x")
    await other.hset("hiveq:{shop:prod}:meta", "app", "shop")
    await other.set("session:42", "x")
    await other.aclose()
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    try:
        await enqueue_task(b, st("x"))
        report = await run_doctor(b, remember=False)
    finally:
        await b.close()
    shared = report.check("shared redis")
    assert shared.verdict == Verdict.OK  # information, not a failure
    assert "shared with other applications" in shared.summary and "cannot pop" in shared.summary
    assert set(shared.evidence) == {
        "generic queue name 'work_queue': 1 key(s)",
        "generic queue name 'celery': 1 key(s)",
        "rq:* keys (another queue framework): 1 key(s)",
        "bull:* keys (another queue framework): 1 key(s)",
        "hiveq namespace shop:prod: 1 key(s)",
        "other keys: 1 key(s)",
    }
    assert report.check("key types").verdict == Verdict.OK


async def test_doctor_on_the_shared_redis_is_read_only_for_an_unused_namespace() -> None:
    settings = Settings(redis_url=SHARED_REDIS, app="doc" + secrets.token_hex(4), env="test")
    b = await Broker.connect(settings, role="doctor", check_namespace=False)
    try:
        report = await run_doctor(b)
        left = [k async for k in b.redis.scan_iter(match=b.keys.prefix + "*")]
    finally:
        await b.close()
    assert left == []
    assert report.check("namespace").verdict == Verdict.WARN
    assert "has not been used yet" in report.check("namespace").summary
    assert report.check("connection").verdict == Verdict.OK
