"""Sentinel: `redis+sentinel://` URLs work for the engine, the CLI and workers, and a SIGKILL of the
primary under load with HIVEQ_MIN_REPLICAS=1 loses no acknowledged task (1 primary, 1 replica,
3 sentinels, all real processes on loopback)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiveq.contract.errors import ConfigError
from hiveq.contract.redisurl import parse_sentinel_url
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.cli.conftest import ROOT, base_env
from tests.cluster.load import Load
from tests.support.topology import SentinelSet, wait
from tests.support.waiting import until


def test_a_sentinel_url_names_its_sentinels_service_database_and_credentials() -> None:
    u = parse_sentinel_url("redis+sentinel://app:p%40ss@10.0.0.1:26379,10.0.0.2:26380/mymaster/2")
    assert u.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (u.service, u.db, u.username, u.password, u.tls) == ("mymaster", 2, "app", "p@ss", False)
    assert Settings.from_env({"REDIS_URL": "redis+sentinel://h:1/svc"}).redis_url.startswith("redis+sentinel")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379", "service name"),
        ("redis+sentinel://h:26379/svc/x", "database number"),
        ("redis+sentinel://:secret@h:notaport/svc", "is not host:port"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_naming_the_rule_without_its_password(
    url: str, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"REDIS_URL": url})
    assert says in str(err.value)
    assert "secret" not in str(err.value)
    assert "redis+sentinel://[user:password@]host:port" in str(err.value)


async def test_the_engine_and_the_cli_work_through_sentinel(sentinels: SentinelSet) -> None:
    s = Settings(redis_url=sentinels.url, app="sent", env="test")
    b = await Broker.connect(s, role="test")
    try:
        env = base_env(REDIS_URL=sentinels.url, HIVEQ_APP=s.app, HIVEQ_ENV=s.env)
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hiveq", "doctor", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        checks = {c["name"]: c for c in json.loads(run.stdout)["checks"]}
        assert checks["connection"]["verdict"] == "ok"
        assert checks["replication"]["verdict"] == "warn"  # a replica, HIVEQ_MIN_REPLICAS=0
        assert "split brain" in checks["replication"]["summary"]
    finally:
        await b.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_a_killed_sentinel_primary_under_load_loses_no_acknowledged_task(
    sentinels: SentinelSet, tmp_path: Path
) -> None:
    s = Settings(redis_url=sentinels.url, app="load", env="test").with_(
        min_replicas=1, replica_timeout_ms=1000, lease_s=10.0, max_deliveries=10
    )
    load = Load(s, tmp_path)
    b = await Broker.connect(s, role="test-producer")
    try:
        load.start_workers()
        producer = asyncio.create_task(load.produce(b, 450))
        await until(lambda: len(load.acked) >= 150 or producer.done(), 60, "load before the fault")
        assert not producer.done()
        old = sentinels.primary
        old.stop(kill=True)
        wait(lambda: sentinels.current_primary_port() == sentinels.replica.port, 60, "a promotion")
        # Restarted, the old primary is demoted by the sentinels and becomes the new one's replica;
        # until then nothing can be confirmed by a replica, so nothing is acknowledged.
        old.start()
        await asyncio.wait_for(producer, 240)
        load.check_workers_alive()
        assert await load.lost(b) == []  # every acknowledged task is on the new primary
        await until(lambda: load.all_finished(b), 120, "every acknowledged task to finish")
        load.check_workers_alive()
        tasks = [await inspect.get_task(b, t) for t in load.acked.values()]
        assert {t.status for t in tasks} == {"succeeded"}
    finally:
        print(load.report("sentinel kill"))
        logs = load.stop()
        await b.close()
    assert "Traceback" not in logs, logs[-4000:]
    runs = load.executions()
    jobs = [f"{tid}.s" for tid in load.acked.values()]
    assert len(jobs) == 450
    assert [j for j in jobs if runs[j] == 0] == []
    assert {j: n for j, n in runs.items() if n > 1} == {}
