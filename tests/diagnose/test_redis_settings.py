"""Redis settings that lose jobs, a server that refuses CLIENT/MONITOR/CONFIG, bad credentials and
an unreachable server — and `hiveq doctor --json` failing the shell on a fail."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Verdict
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess, free_port
from hiveq.settings import Settings
from tests.conftest import fresh_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def lru_server(private_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server set up the way that lost the seed's jobs: evicting, no persistence."""
    srv = private_server("valkey", extra=["--maxmemory-policy", "allkeys-lru"])
    return srv


@pytest.fixture
async def admin(lru_server: ServerProcess) -> AsyncIterator[Redis]:
    r = Redis.from_url(lru_server.url, decode_responses=True)
    yield r
    await r.aclose()


async def test_eviction_policy_allkeys_lru_fails_and_no_persistence_warns(lru_server: ServerProcess) -> None:
    b = await Broker.connect(fresh_settings(lru_server.url), role="test")
    try:
        report = await run_doctor(b)
    finally:
        await b.close()
    eviction = report.check("eviction policy")
    assert eviction.verdict == Verdict.FAIL
    assert "allkeys-lru" in eviction.summary and "noeviction" in eviction.fix
    assert report.check("persistence").verdict == Verdict.WARN
    assert report.check("connection").verdict == Verdict.OK
    assert not report.ok


async def test_memory_near_maxmemory_fails_with_the_numbers(lru_server: ServerProcess, admin: Redis) -> None:
    used = int((await admin.info("memory"))["used_memory"])
    await admin.config_set("maxmemory", used + 50_000)
    b = await Broker.connect(fresh_settings(lru_server.url), role="test", check_namespace=False)
    try:
        report = await run_doctor(b, remember=False)
    finally:
        await b.close()
    memory = report.check("memory headroom")
    assert memory.verdict == Verdict.FAIL
    assert f"maxmemory={used + 50_000}" in memory.evidence


async def test_doctor_without_client_monitor_or_config_says_so_and_falls_back(
    lru_server: ServerProcess, admin: Redis
) -> None:
    await admin.acl_setuser(
        "limited",
        enabled=True,
        passwords=["+s3cret"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-client|list", "-monitor", "-config"],
    )
    url = lru_server.url.replace("redis://", "redis://limited:s3cret@")
    b = await Broker.connect(fresh_settings(url), role="test")
    try:
        report = await run_doctor(b, sample_s=0.2)
    finally:
        await b.close()
    consumers = report.check("foreign consumers")
    assert consumers.verdict == Verdict.WARN and "CLIENT LIST is not allowed" in consumers.summary
    assert "NOPERM" in consumers.summary.upper() or "permission" in consumers.summary.lower()
    assert report.check("monitor sample").verdict == Verdict.WARN
    # The eviction policy is still proved, from INFO instead of CONFIG GET.
    assert report.check("eviction policy").verdict == Verdict.FAIL
    assert report.check("vanished jobs").verdict == Verdict.OK
    assert "s3cret" not in report.model_dump_json()


async def test_wrong_password_is_one_clear_failing_check(lru_server: ServerProcess, admin: Redis) -> None:
    await admin.acl_setuser("app", enabled=True, passwords=["+right"], keys=["*"], commands=["+@all"])
    url = lru_server.url.replace("redis://", "redis://app:wrong@")
    b = await Broker.connect(fresh_settings(url), role="test", check_namespace=False)
    try:
        report = await run_doctor(b)
    finally:
        await b.close()
    assert [c.name for c in report.checks] == ["connection"]
    assert report.checks[0].verdict == Verdict.FAIL
    assert "refused the credentials" in report.checks[0].summary and "wrong" not in report.redis_url


async def test_unreachable_redis_is_one_clear_failing_check() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", app="nobody", env="test")
    b = await Broker.connect(settings, role="test", check_namespace=False)
    try:
        report = await run_doctor(b)
    finally:
        await b.close()
    assert [(c.name, c.verdict) for c in report.checks] == [("connection", Verdict.FAIL)]
    assert "unreachable" in report.checks[0].summary and report.checks[0].fix


def test_doctor_json_exits_non_zero_on_a_fail(lru_server: ServerProcess) -> None:
    s = fresh_settings(lru_server.url)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hiveq",
            "--redis-url",
            lru_server.url,
            "--app",
            s.app,
            "--env",
            s.env,
            "doctor",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert verdicts["eviction policy"] == "fail"
    assert "Traceback" not in proc.stderr
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "hiveq",
            "--redis-url",
            lru_server.url,
            "--app",
            s.app,
            "--env",
            s.env,
            "why",
            "t0.nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 3 and "unknown job id 't0.nope'" in unknown.stderr


def test_doctor_exits_zero_when_nothing_fails(private_server: Callable[..., ServerProcess]) -> None:
    srv = private_server("redis", persistent=True)
    proc = subprocess.run(
        [sys.executable, "-m", "hiveq", "--redis-url", srv.url, "--app", "healthy", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "eviction policy" in proc.stdout and "0 fail" in proc.stdout
