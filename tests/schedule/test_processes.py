"""Schedules with real processes racing on the real scripts: two worker processes and an API
process all fire schedules. Each tick of a seconds cron submits exactly one task (its runs counted
per tick outside hiveq's namespace), and after a downtime only the latest missed tick fires."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx
import pytest
from redis.asyncio import Redis

from hiveq.contract.views import ScheduleRequest
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import read_events
from hiveq.schedule import store
from hiveq.schedule.cron import iso
from hiveq.server import free_port
from tests.support.agents import tick_runs_key
from tests.support.waiting import until
from tests.support.worker import ROOT, spawn_worker, stop_proc, worker_env

pytestmark = pytest.mark.slow

EVERY_2S = "*/2 * * * * *"
TASK = {"description": "tick", "subtasks": [{"id": "run", "agent": "t.tick"}]}
FAST = {"HIVEQ_REAP_INTERVAL": "0.1"}


@contextmanager
def three_processes(b: Broker) -> Iterator[str]:
    """Two workers serving t.tick and one API process (`hiveq serve`); yields the API's URL."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "hiveq", "serve", "--port", str(port)],
        cwd=ROOT,
        env=worker_env(b.settings, **FAST),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers = [spawn_worker(b.settings, "t.tick", HIVEQ_REAP_INTERVAL="0.1") for _ in range(2)]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        codes = [stop_proc(p) for p in [*workers, api]]
        assert codes[:2] == [0, 0] and codes[2] in (0, -15), codes  # uvicorn may end on the SIGTERM


async def up(b: Broker, url: str) -> None:
    await until(lambda: _two_workers(b), 60, "both workers to register")

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(url + "/health")).status_code == 200
        except httpx.HTTPError:
            return False

    await until(answers, 60, "the API to answer", interval_s=0.1)


async def _two_workers(b: Broker) -> bool:
    return int(await b.redis.zcard(b.keys.workers)) == 2


async def fired_ticks(b: Broker) -> dict[int, str]:
    """tick ms -> task id of every task a schedule fired; fails on a tick with two tasks."""
    out: dict[int, str] = {}
    ticks_iso: dict[str, int] = {}
    page = await inspect.list_tasks(b, None, 0, 10_000)
    for t in page.items:
        tick = t.metadata.get("schedule_tick")
        if tick is not None:
            assert tick not in ticks_iso, f"tick {tick} has two tasks"
            ticks_iso[str(tick)] = 1
            out[_ms(str(tick))] = t.id
    return out


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


async def all_ran(b: Broker, ids: list[str]) -> bool:
    for t in ids:
        if (await inspect.get_task(b, t)).status != "succeeded":
            return False
    return True


async def runs_per_tick(b: Broker) -> dict[str, int]:
    r = Redis.from_url(b.settings.redis_url, decode_responses=True)
    try:
        key = tick_runs_key(b.settings.namespace)
        got = await r.hgetall(key)
        await r.delete(key)
        return {str(k): int(v) for k, v in got.items()}
    finally:
        await r.aclose()


async def holders(b: Broker) -> dict[str, int]:
    _, events = await read_events(b, "0", count=100_000)
    out: dict[str, int] = {}
    for e in events:
        if e.type == "schedule" and isinstance(e.data, dict) and e.data.get("by"):
            out[e.data["by"]] = out.get(e.data["by"], 0) + 1
    return out


async def test_each_tick_fires_exactly_once_with_two_workers_and_an_api_running(broker: Broker) -> None:
    b = broker
    with three_processes(b) as url:
        await up(b, url)
        view, _ = await store.put(b, "often", ScheduleRequest(cron=EVERY_2S, task=TASK))
        first = view.next_run_ms
        assert first is not None

        async def six() -> bool:
            return (await store.get(b, "often")).fired >= 6

        await until(six, 60, "six ticks to fire", interval_s=0.1)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.delete("/schedules/often")).status_code == 200
        ticks = await fired_ticks(b)
        await until(lambda: all_ran(b, list(ticks.values())), 60, "every fired task to run")
    assert sorted(ticks) == [first + 2000 * k for k in range(len(ticks))], "a tick fired no task"
    assert len(ticks) >= 6
    runs = await runs_per_tick(b)
    assert runs == {iso(t): 1 for t in ticks}  # each tick's job ran once: no double fire
    by = await holders(b)
    assert sum(by.values()) == len(ticks)
    print(f"\nticks fired by: {by}")


async def test_after_a_downtime_only_the_latest_missed_tick_fires_then_each_tick_once(broker: Broker) -> None:
    b = broker
    await b.redis.sadd(b.keys.agents, "t.tick")  # served before the downtime
    view, _ = await store.put(b, "often", ScheduleRequest(cron=EVERY_2S, task=TASK))
    first = view.next_run_ms
    assert first is not None

    async def passed() -> bool:
        return await store.server_ms(b) > first + 6_500  # ticks first … first + 6 s went by

    await until(passed, 30, "three ticks to pass with nothing running", interval_s=0.1)
    with three_processes(b) as url:
        await up(b, url)

        async def three() -> bool:
            return (await store.get(b, "often")).fired >= 3

        await until(three, 60, "three ticks to fire", interval_s=0.1)
        await store.remove(b, "often")
        ticks = await fired_ticks(b)
        await until(lambda: all_ran(b, list(ticks.values())), 60, "every fired task to run")
        s_missed = await _missed(b)
    order = sorted(ticks)
    assert order[0] >= first + 6_000  # the first fire after the downtime is its latest tick…
    assert s_missed == (order[0] - first) // 2000  # …and every earlier one was skipped, counted
    assert order == [order[0] + 2000 * k for k in range(len(order))]  # then each tick once
    assert await runs_per_tick(b) == {iso(t): 1 for t in ticks}


async def _missed(b: Broker) -> int:
    _, events = await read_events(b, "0", count=100_000)
    return sum(
        int(e.data.get("missed") or 0) for e in events if e.type == "schedule" and isinstance(e.data, dict)
    )
