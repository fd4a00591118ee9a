"""Faults of a Redis Cluster under load, with HIVEQ_MIN_REPLICAS=1: a manual `CLUSTER FAILOVER`,
a SIGKILL of the namespace's primary, and a slot migration. Workers keep running (no exit, no
traceback), every acknowledged task finishes, and no job runs twice (counted outside Redis)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis import Redis

from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.cluster.load import Load
from tests.support.topology import Cluster, Node, app_on, slot_of, wait
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
TASKS = 450
FAULT_AT = 150  # acknowledged tasks before the fault


def setup(c: Cluster, folder: Path) -> tuple[Settings, Node]:
    """A namespace on a primary other than the URL's node (the URL's node stays up)."""
    home = next(n for n in c.primaries() if n.port != c.nodes[0].port)
    s = Settings(redis_url=c.url, app=app_on(c, home), env="test").with_(
        min_replicas=1, replica_timeout_ms=1000, lease_s=10.0, max_deliveries=10
    )
    return s, home


async def run_with_fault(c: Cluster, folder: Path, fault: str) -> Load:
    s, home = setup(c, folder)
    load = Load(s, folder)
    b = await Broker.connect(s, role="test-producer")
    try:
        load.start_workers()
        producer = asyncio.create_task(load.produce(b, TASKS))
        await until(lambda: len(load.acked) >= FAULT_AT or producer.done(), 60, "load before the fault")
        assert not producer.done()
        if fault == "failover":
            replica = c.replica_of(home)
            with replica.client() as r:
                assert r.execute_command("CLUSTER", "FAILOVER") == "OK"
            wait(lambda: replica.role() == "master", 30, "the replica to take over")
        elif fault == "kill":
            replica = c.replica_of(home)
            home.kill()
            wait(lambda: replica.role() == "master", 30, "the replica to be promoted")
            # Restarted, the old primary rejoins as the new primary's replica: until then no
            # write can be confirmed by a replica (HIVEQ_MIN_REPLICAS=1), so none is acknowledged.
            home.start()
            wait(lambda: home.role() == "slave", 30, "the old primary to rejoin as a replica")
        elif fault == "migrate":
            target = next(n for n in c.primaries() if n.port not in (home.port, c.nodes[0].port))
            took = await asyncio.to_thread(migrate_slot, c, slot_of(s.app), home, target)
            print(f"slot migration took {took * 1000:.0f} ms")
        await asyncio.wait_for(producer, 180)
        load.check_workers_alive()
        await until(lambda: load.all_finished(b), 120, "every acknowledged task to finish")
        load.check_workers_alive()
    finally:
        print(load.report(fault))
        logs = load.stop()
        await b.close()
    assert "Traceback" not in logs, logs[-4000:]
    runs = load.executions()
    jobs = [f"{tid}.s" for tid in load.acked.values()]
    assert len(jobs) == TASKS
    assert [j for j in jobs if runs[j] == 0] == []  # every acknowledged task's job ran
    assert {j: n for j, n in runs.items() if n > 1} == {}  # and none ran twice
    return load


async def test_a_cluster_failover_under_load_loses_no_acknowledged_task_and_runs_none_twice(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    load = await run_with_fault(own_cluster, tmp_path, "failover")
    assert len(load.acked) == TASKS


async def test_a_killed_primary_under_load_loses_no_acknowledged_task_and_runs_none_twice(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    load = await run_with_fault(own_cluster, tmp_path, "kill")
    assert len(load.acked) == TASKS


async def test_a_slot_migration_under_load_stalls_briefly_and_no_worker_exits(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    load = await run_with_fault(own_cluster, tmp_path, "migrate")
    assert len(load.acked) == TASKS


def migrate_slot(c: Cluster, slot: int, source: Node, target: Node) -> float:
    """Move `slot` from `source` to `target` the way redis-cli --cluster reshard does (IMPORTING,
    MIGRATING, MIGRATE in batches, SETSLOT NODE everywhere); returns how long it took."""
    started = time.monotonic()
    with source.client() as src, target.client() as dst:
        source_id, target_id = source.node_id(), target.node_id()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 20)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *keys)
        for n in c.primaries():  # SETSLOT is for primaries only; replicas follow
            with Redis(port=n.port, decode_responses=True) as r:
                r.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return time.monotonic() - started
