"""A job stolen under `hiveq submit --wait`: a red line naming job, key and culprit and exit 1;
`hiveq recover` brings it back and `hiveq watch` sees the task through. Real processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from hiveq.contract.errors import ExitCode
from hiveq.queue.keys import Keyspace
from hiveq.server import ServerProcess
from tests.cli.conftest import Hiveq, WorkerFactory
from tests.queue.helpers import bzpopmin
from tests.support.waiting import until

pytestmark = pytest.mark.slow
SEED = "Build a user authentication system"


@pytest.fixture
async def thief(server: ServerProcess) -> AsyncIterator[Redis]:
    r = Redis.from_url(server.url, decode_responses=True, client_name="rogue-thief")
    yield r
    await r.aclose()


async def test_submit_wait_shows_the_theft_in_red_and_fails_then_recover_and_watch_finish_it(
    hiveq: Hiveq, worker: WorkerFactory, thief: Redis
) -> None:
    keys = Keyspace(hiveq.env["HIVEQ_APP"], hiveq.env["HIVEQ_ENV"])
    worker("--agents", "demo")
    hiveq.wait_agent("demo")
    take = asyncio.create_task(bzpopmin(thief, keys.queue("demo"), 60))

    async def blocked() -> bool:
        return any(
            c.get("name") == "rogue-thief" and "b" in c.get("flags", "") for c in await thief.client_list()
        )

    await until(blocked, 20, "the thief to block on the demo queue")
    res = await asyncio.to_thread(hiveq, "submit", SEED, "--wait", timeout=120)
    stolen = await take
    assert stolen is not None and stolen.endswith(".design")
    assert res.returncode == ExitCode.FAILURE, res.stdout + res.stderr
    red = [line for line in res.stdout.splitlines() if "✘ design" in line and "vanished from" in line]
    assert red, res.stdout
    assert keys.queue("demo") in red[0] and "rogue-thief" in red[0] and f"hiveq recover {stolen}" in red[0]
    assert "cannot finish: 1 subtask(s) vanished" in res.stdout

    task_id = stolen.partition(".")[0]
    shown = hiveq("watch", task_id)  # already stalled: says so again and exits 1 at once
    assert shown.returncode == ExitCode.FAILURE and "✘ design" in shown.stdout
    back = hiveq("recover", "--all")
    assert back.returncode == 0 and f"job {stolen}: recovered -> waiting" in back.stdout, (
        back.stdout + back.stderr
    )
    done = hiveq("watch", task_id, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4/4 subtasks succeeded" in done.stdout


def test_recover_refuses_a_job_that_did_not_vanish_and_needs_a_job_or_all(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker("--agents", "demo")
    hiveq.wait_agent("demo")
    task_id = hiveq.json("submit", SEED)["task_id"]
    res = hiveq("recover", f"{task_id}.design")
    assert res.returncode == ExitCode.CONFLICT and ", not vanished" in res.stderr, res.stderr
    assert hiveq("recover").returncode == ExitCode.USAGE
    assert hiveq("recover", "t0.nope").returncode == ExitCode.NOT_FOUND
    nothing = hiveq("recover", "--all")
    assert nothing.returncode == 0 and "no vanished jobs" in nothing.stdout
