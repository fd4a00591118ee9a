"""./.hiveq/stack.json: `hiveq up`'s record of its stack, used by commands in that folder when
REDIS_URL is not set; a stale one (its `up` is gone) is ignored with a note."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hiveq.cli import stackfile
from hiveq.cli.common import GlobalOptions, settings_from
from hiveq.cli.stackfile import StackState
from hiveq.cli.up import refuse_second_stack_here
from hiveq.contract.errors import Conflict
from hiveq.contract.redact import redact


def state(pid: int, url: str = "redis://127.0.0.1:6391/0") -> StackState:
    return StackState(
        pid=pid,
        started_ms=1_700_000_000_000,
        redis_url=url,
        api_url="http://127.0.0.1:8001",
        app="shop",
        env="dev",
        embedded=True,
    )


@pytest.fixture
def live_up() -> Iterator[int]:
    """A running process whose command line says hiveq, standing in for a live `hiveq up`."""
    code = "import time; print('ready', flush=True); time.sleep(120)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "hiveq-up-stand-in"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"  # running, with its own argv
    yield proc.pid
    proc.kill()
    proc.wait()
    proc.stdout.close()


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_the_file_is_written_0600_and_read_back_while_its_up_runs(tmp_path: Path, live_up: int) -> None:
    path = stackfile.write(state(live_up), tmp_path)
    assert path == tmp_path / ".hiveq" / "stack.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a given REDIS_URL may hold a password
    found = stackfile.find(tmp_path)
    assert found.state == state(live_up)
    assert found.note is not None and "(redis://127.0.0.1:6391/0, namespace shop:dev)" in found.note


def test_a_file_left_by_a_dead_up_is_ignored_with_a_note(tmp_path: Path) -> None:
    pid = dead_pid()
    stackfile.write(state(pid), tmp_path)
    found = stackfile.find(tmp_path)
    assert found.state is None
    assert found.note is not None and f"pid {pid}" in found.note and "no longer running" in found.note


def test_a_file_that_is_not_a_stack_file_is_ignored_with_a_note(tmp_path: Path) -> None:
    (tmp_path / ".hiveq").mkdir()
    (tmp_path / ".hiveq" / "stack.json").write_text("{not json")
    found = stackfile.find(tmp_path)
    assert found.state is None and found.note is not None and "cannot be read" in found.note
    (tmp_path / ".hiveq" / "stack.json").write_text(json.dumps({"format": 99}))
    assert "not a format-1 stack file" in str(stackfile.find(tmp_path).note)


def test_up_removes_only_its_own_file(tmp_path: Path) -> None:
    stackfile.write(state(12345), tmp_path)
    stackfile.remove(tmp_path, pid=999)  # another up's file: kept
    assert stackfile.state_path(tmp_path).exists()
    stackfile.remove(tmp_path, pid=12345)
    assert not stackfile.state_path(tmp_path).exists()


def test_the_printed_url_never_carries_a_password() -> None:
    for url in ("redis://user:s3cret@db.example:6380/2", "rediss://:s3cret@db.example"):
        assert "s3cret" not in redact(url) and "db.example" in redact(url)
    assert redact("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_commands_in_the_folder_use_the_live_stack_and_say_so_unless_redis_url_is_set(
    tmp_path: Path, live_up: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stackfile.write(state(live_up, "redis://:s3cret@127.0.0.1:6391/0"), tmp_path)
    monkeypatch.chdir(tmp_path)
    s = settings_from(GlobalOptions(), env={})
    assert (s.redis_url, s.namespace) == ("redis://:s3cret@127.0.0.1:6391/0", "shop:dev")
    err = capsys.readouterr().err
    assert "using the stack started by `hiveq up` in ./.hiveq (redis://:***@127.0.0.1:6391/0" in err
    assert "s3cret" not in err
    assert settings_from(GlobalOptions(app="other"), env={}).namespace == "other:dev"  # --app still wins
    capsys.readouterr()
    given = settings_from(GlobalOptions(), env={"REDIS_URL": "redis://127.0.0.1:7000/0"})
    assert given.redis_url == "redis://127.0.0.1:7000/0" and capsys.readouterr().err == ""
    assert settings_from(GlobalOptions(), env={}, from_stack=False).redis_url == "redis://127.0.0.1:6379/0"


def test_a_second_up_in_a_folder_whose_up_still_runs_is_refused_naming_it(
    tmp_path: Path, live_up: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    refuse_second_stack_here()  # no file: fine
    stackfile.write(state(live_up))
    with pytest.raises(
        Conflict, match=f"a `hiveq up` \\(pid {live_up}, API http://127.0.0.1:8001\\) already runs"
    ):
        refuse_second_stack_here()
    stackfile.write(state(dead_pid()))
    refuse_second_stack_here()  # a stale file does not block the next start
