"""Redis restarted without persistence: the loss report lists exactly the accepted tasks that
were unfinished, and `hiveq recover --from-archive` resubmits them (same ids, idempotency keys)
so that they run to success."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from hiveq.archive.archiver import Archiver
from hiveq.archive.loss import lost_tasks
from hiveq.archive.read import Archive
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.archive.conftest import archived_settings, drain
from tests.cli.conftest import ROOT, base_env
from tests.support.waiting import until
from tests.support.worker import worker_in_process


def hiveq_cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = base_env(
        REDIS_URL=s.redis_url, HIVEQ_APP=s.app, HIVEQ_ENV=s.env, HIVEQ_ARCHIVE_URL=s.archive.archive_url or ""
    )
    return subprocess.run(
        [sys.executable, "-m", "hiveq", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _all(b: Broker, ids: list[str], status: str) -> bool:
    got = [await b.redis.hget(b.keys.task(t), "status") for t in ids]
    return all(g == status for g in got)


@pytest.mark.slow
async def test_a_restart_without_persistence_is_reported_by_task_and_recovered(
    private_server: Callable[..., ServerProcess], archive_url: str
) -> None:
    srv = private_server("valkey")  # no AOF: a restart comes back empty
    s = archived_settings(srv.url, archive_url)
    b = await Broker.connect(s, role="test")
    a = Archiver(s, block_ms=10)
    reader = Archive.of(s)
    assert reader is not None
    await a.connect()
    assert await a.take()
    try:
        echo = [SubtaskSpec(id="a", agent="t.echo", input=1)]
        done = await enqueue(b, [TaskSubmission(description=f"done {i}", subtasks=echo) for i in range(3)])
        async with worker_in_process(s, ["t.echo"]):
            await until(lambda: _all(b, [t.task_id for t in done], "succeeded"), what="the first tasks done")
        graph = [*echo, SubtaskSpec(id="b", agent="t.echo", depends_on=["a"])]
        open_ = await enqueue(
            b,
            [
                TaskSubmission(description="waiting 1", subtasks=echo, idempotency_key="order-7"),
                TaskSubmission(description="waiting 2", subtasks=graph, metadata={"customer": "acme"}),
                TaskSubmission(description="waiting 3", subtasks=echo, priority=1),
            ],
        )
        unfinished = sorted(t.task_id for t in open_)
        await drain(a)

        srv.restart()  # every key is gone
        for pool in (b.redis.connection_pool, a.b.redis.connection_pool):
            await pool.disconnect()  # the old connections died with the server
        assert await b.redis.dbsize() == 0
        assert sorted(t.task_id for t in await lost_tasks(b, reader)) == unfinished

        doctor = hiveq_cli(s, "doctor", "--json")
        loss = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "data loss")
        assert loss["verdict"] == "fail" and sorted(e.split()[0] for e in loss["evidence"]) == unfinished
        res = hiveq_cli(s, "recover", "--from-archive", "--yes", "--json")
        assert res.returncode == 0, res.stderr
        assert sorted(json.loads(res.stdout)["recovered"]) == unfinished
        assert await b.redis.get(b.keys.idempotency("order-7")) == open_[0].task_id
        assert json.loads(hiveq_cli(s, "recover", "--from-archive", "--yes", "--json").stdout)["lost"] == []

        async with worker_in_process(s, ["t.echo"]):
            await until(lambda: _all(b, unfinished, "succeeded"), what="the recovered tasks succeeded")
        assert json.loads(await b.redis.hget(b.keys.task(open_[1].task_id), "metadata") or "{}") == {
            "customer": "acme"
        }
        assert await a.take()  # the restart took the lease with it (the workers' archiver left)
        await drain(a)
        assert await lost_tasks(b, reader) == []
    finally:
        reader.close()
        await a.close()
        a.engine.dispose()
        await b.close()
