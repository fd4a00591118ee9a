"""Every key of a namespace hashes to one Redis Cluster slot, so multi-key scripts stay valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.keys import Keyspace
from hiveq.queue.registry import register_worker
from hiveq.queue.retry import Failure, fail
from hiveq.server import ServerProcess, free_port
from tests.queue.helpers import enqueue_task, st


def crc16_xmodem(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), as in the Redis Cluster specification."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """The cluster spec's rule: hash only the first non-empty {...} section when there is one."""
    raw = key.encode()
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc16_xmodem(raw) % 16384


def test_crc16_matches_the_cluster_spec_reference_values() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the spec's check value
    assert key_slot("foo") == 12182 and key_slot("{user1000}.following") == key_slot("{user1000}.followers")


async def test_every_key_of_a_namespace_is_in_one_slot(any_broker: Broker) -> None:
    b = any_broker
    await register_worker(b, "w", ["a", "b"], 2)
    await enqueue_task(b, st("x"), st("y", agent="b", deps=("x",)), st("z"), idem="same-slot")
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e")])
    keys = [k async for k in b.redis.scan_iter(match=b.keys.prefix + "*")]
    kinds = {k.removeprefix(b.keys.prefix).split(":")[0] for k in keys}
    assert {"meta", "jobs", "q", "wake", "job", "task", "idem", "worker", "events", "delayed"} <= kinds
    all_names = keys + list(b.keys.fixed_keys())
    assert {key_slot(k) for k in all_names} == {key_slot(b.keys.prefix)}


async def test_the_computed_slot_matches_a_cluster_enabled_server(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # The cluster bus defaults to port + 10000, which may be taken or above 65535: pick a free one.
    srv = private_server(
        "redis",
        extra=[
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(free_port()),
            "--cluster-config-file",
            str(tmp_path / "nodes.conf"),
        ],
    )
    r = Redis.from_url(srv.url, decode_responses=True)
    try:
        ks = Keyspace("myapp", "prod")
        names = [*ks.fixed_keys(), ks.job("t1.a"), ks.job_log("t1.a"), ks.queue("writer"), ks.task("t1")]
        slots = {int(await r.execute_command("CLUSTER", "KEYSLOT", n)) for n in names}  # type: ignore[no-untyped-call]
        assert slots == {key_slot(ks.prefix)}
    finally:
        await r.aclose()
