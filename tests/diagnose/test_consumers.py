"""The MONITOR sample tells ours from theirs even for clients that disconnect before CLIENT LIST is
read: a short-lived hiveq connection of this namespace is ours, a short-lived foreign one is named."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Verdict
from hiveq.queue.broker import Broker
from tests.queue.helpers import enqueue_task, st
from tests.support.waiting import until


async def _monitoring(b: Broker) -> bool:
    return any(r.get("cmd") == "monitor" for r in await b.redis.client_list())


async def _touch(url: str, name: str, key: str) -> str:
    r = Redis.from_url(url, decode_responses=True, client_name=name)
    try:
        addr = str((await r.client_info())["addr"])
        await r.zrange(key, 0, -1)
        return addr
    finally:
        await r.aclose()


async def test_short_lived_clients_are_attributed_by_the_name_they_set(broker: Broker) -> None:
    await enqueue_task(broker, st("x"))
    queue = broker.keys.queue("a")
    doctor = asyncio.create_task(run_doctor(broker, sample_s=1.5, remember=False))
    await until(lambda: _monitoring(broker), 20, "the MONITOR sample to start")
    ours = await _touch(broker.settings.redis_url, broker.keys.client_name("cli", "9"), queue)
    theirs = await _touch(broker.settings.redis_url, "sneaky-script", queue)
    report = await doctor
    consumers = report.check("foreign consumers")
    assert consumers.verdict == Verdict.FAIL
    text = "\n".join(consumers.lines())
    assert f"{theirs} name='sneaky-script' (gone from CLIENT LIST) ran zrange×1 on {queue}" in text
    assert ours not in text
    sample = "\n".join(report.check("monitor sample").lines())
    assert ours in sample  # seen, and recognised as ours
