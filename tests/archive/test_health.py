"""The archive's own health: hiveq_archive_lag_seconds, the doctor's `archive` check, and
`hiveq archiver --status`; a bad HIVEQ_ARCHIVE_URL is refused without echoing it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from hiveq.api.app import create_app
from hiveq.archive.archiver import Archiver
from hiveq.contract.errors import ConfigError
from hiveq.diagnose.doctor import run_doctor
from hiveq.queue import archiving
from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.api.live import asgi_client
from tests.archive.conftest import drain
from tests.archive.test_read import seed
from tests.cli.conftest import ROOT, base_env


def archiver_status(s: Settings) -> Any:
    """`hiveq archiver --status --json`, as its own process."""
    env = base_env(
        REDIS_URL=s.redis_url, HIVEQ_APP=s.app, HIVEQ_ENV=s.env, HIVEQ_ARCHIVE_URL=s.archive.archive_url or ""
    )
    res = subprocess.run(
        [sys.executable, "-m", "hiveq", "archiver", "--status", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def lag_metric(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("hiveq_archive_lag_seconds "):
            return float(line.split()[1])
    return None


async def test_lag_shows_in_metrics_doctor_and_status_and_drops_to_zero_when_caught_up(
    stack: tuple[Broker, Archiver],
) -> None:
    b, a = stack
    await seed(b, 5)
    await archiving.ensure_group(b)
    async with asgi_client(create_app(b.settings)) as api:
        before = lag_metric((await api.get("/metrics")).text)
        assert before is not None and before >= 0
        await drain(a)
        assert lag_metric((await api.get("/metrics")).text) == 0.0
    check = (await run_doctor(b)).check("archive")
    assert check.verdict == "ok" and a.ident in check.summary
    got = archiver_status(b.settings)
    assert (got["attached"], got["archiver"], got["lag_seconds"]) == (True, a.ident, 0)
    assert got["archive"]["tasks"] == 5


async def test_an_attached_archive_without_an_archiver_fails_the_doctor(
    stack: tuple[Broker, Archiver],
) -> None:
    b, a = stack
    await a.close()  # the archiver stops; the namespace stays attached
    await seed(b, 1)
    check = (await run_doctor(b)).check("archive")
    assert check.verdict == "fail" and "no archiver is running" in check.summary
    assert "hiveq archiver" in check.fix


async def test_without_an_archive_the_doctor_says_so_and_no_lag_metric_is_shown(broker: Broker) -> None:
    assert (await run_doctor(broker)).check("archive").verdict == "ok"
    async with asgi_client(create_app(broker.settings)) as api:
        assert lag_metric((await api.get("/metrics")).text) is None


@pytest.mark.parametrize("url", ["mysql://root:hunter2@db/x", "hunter2@db", "redis://localhost"])
def test_a_bad_archive_url_is_refused_by_name_without_its_text(url: str) -> None:
    with pytest.raises(ConfigError, match="HIVEQ_ARCHIVE_URL") as caught:
        Settings.from_env({"HIVEQ_ARCHIVE_URL": url})
    assert "hunter2" not in str(caught.value)


def test_archive_settings_read_their_variables() -> None:
    s = Settings.from_env(
        {
            "HIVEQ_ARCHIVE_URL": "postgresql://u@h/db",
            "HIVEQ_REDIS_RETENTION": "60",
            "HIVEQ_ARCHIVE_RETENTION": "86400",
        }
    )
    assert (s.archive.archive_url, s.archive.redis_retention_s, s.archive.archive_retention_s) == (
        "postgresql://u@h/db",
        60,
        86400,
    )
    with pytest.raises(ConfigError, match="HIVEQ_REDIS_RETENTION"):
        Settings.from_env({"HIVEQ_REDIS_RETENTION": "0"})
