"""Redis keeps live work plus a short tail: once archived, a finished task leaves Redis after
HIVEQ_REDIS_RETENTION and leaves nothing behind, yet the API and the CLI still show it, its
results and its whole custody history, as they did while it was live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, cast

from hiveq.aggregate import task_view
from hiveq.api.app import create_app
from hiveq.archive.archiver import Archiver
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import inspect, maintain
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.events import job_history
from tests.api.live import asgi_client
from tests.archive.conftest import clock_passes, drain
from tests.cli.conftest import ROOT, base_env
from tests.support.waiting import until
from tests.support.worker import worker_in_process


async def run_one(b: Broker, description: str, metadata: dict[str, Any] | None = None) -> str:
    subs = [
        SubtaskSpec(id="a", agent="t.echo", input="one"),
        SubtaskSpec(id="b", agent="t.echo", depends_on=["a"]),
    ]
    (t,) = await enqueue(b, [TaskSubmission(description=description, metadata=metadata or {}, subtasks=subs)])
    async with worker_in_process(b.settings, ["t.echo"]):
        await until(lambda: _status(b, t.task_id, "succeeded"), what="the task succeeded")
    return t.task_id


async def _status(b: Broker, task_id: str, status: str) -> bool:
    return bool(await b.redis.hget(b.keys.task(task_id), "status") == status)


async def keys_about(b: Broker, task_id: str) -> list[str]:
    found = [k async for k in b.redis.scan_iter(match=f"{b.keys.prefix}*{task_id}*")]
    for zset in (b.keys.tasks, b.keys.finished, b.keys.jobs, b.keys.succeeded):
        for member in cast("list[str]", await b.redis.zrange(zset, 0, -1)):
            if task_id in member:
                found.append(f"{zset} member {member}")
    return found


def cli(settings: Any, *args: str) -> Any:
    env = base_env(
        REDIS_URL=settings.redis_url,
        HIVEQ_APP=settings.app,
        HIVEQ_ENV=settings.env,
        HIVEQ_ARCHIVE_URL=settings.archive.archive_url,
    )
    res = subprocess.run(
        [sys.executable, "-m", "hiveq", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


async def test_after_the_tail_expires_api_and_cli_show_the_task_results_and_history(
    stack: tuple[Broker, Archiver],
) -> None:
    b, a = stack
    task_id = await run_one(b, "quarterly zebra report", {"customer": "acme"})
    live_view = (await task_view(b, task_id)).model_dump(mode="json")
    job_ids = [s["job_id"] for s in live_view["subtasks"]]
    live_jobs = {j: (await inspect.get_job(b, j)).model_dump(mode="json") for j in job_ids}
    live_history = {
        j: [e.model_dump(mode="json", by_alias=True) for e in await job_history(b, j)] for j in job_ids
    }
    await drain(a)
    finished = int(await b.redis.zscore(b.keys.finished, task_id) or 0)
    await clock_passes(b, finished + 1000)
    assert await maintain.expire_finished(b) == 1
    assert await keys_about(b, task_id) == []  # the tail expired: nothing of it is left in Redis

    async with asgi_client(create_app(b.settings)) as api:
        got = await api.get(f"/tasks/{task_id}")
        assert got.status_code == 200 and got.json() == live_view
        for j in job_ids:
            assert (await api.get(f"/jobs/{j}")).json() == live_jobs[j]
            hist = (await api.get(f"/jobs/{j}/history")).json()
            assert hist == {"job_id": j, "events": live_history[j]}
        found = (await api.get("/tasks", params={"q": "ZEBRA", "meta": "customer:acme"})).json()
        assert [t["id"] for t in found["items"]] == [task_id] and found["total"] == 1
        assert (await api.get("/tasks", params={"q": "zebra", "meta": "customer:other"})).json()["total"] == 0
        assert (await api.get("/tasks/t0000000000000000")).status_code == 404

    view = cli(b.settings, "task", task_id)
    assert view == live_view
    trace = cli(b.settings, "trace", job_ids[1])
    assert trace["events"] == live_history[job_ids[1]] and trace["job"] == live_jobs[job_ids[1]]
    listed = cli(b.settings, "tasks", "--search", "zebra")
    assert [t["id"] for t in listed["items"]] == [task_id]


async def test_an_unarchived_finished_task_stays_in_redis_however_old(stack: tuple[Broker, Archiver]) -> None:
    b, a = stack
    task_id = await run_one(b, "not archived yet")
    finished = int(await b.redis.zscore(b.keys.finished, task_id) or 0)
    await clock_passes(b, finished + 1000)
    assert await maintain.expire_finished(b) == 0  # past the tail, but the archive lacks it
    assert await b.redis.exists(b.keys.task(task_id))
    await drain(a)
    assert await maintain.expire_finished(b) == 1


async def test_without_an_archive_finished_tasks_keep_the_usual_retention(broker: Broker) -> None:
    task_id = await run_one(broker, "no archive here")
    finished = int(await broker.redis.zscore(broker.keys.finished, task_id) or 0)
    await clock_passes(broker, finished + 1000)
    assert await maintain.expire_finished(broker) == 0  # HIVEQ_RETENTION_SECONDS (7 days) applies
    assert await broker.redis.exists(broker.keys.task(task_id))
    assert os.environ.get("HIVEQ_ARCHIVE_URL") is None
