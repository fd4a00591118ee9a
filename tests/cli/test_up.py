"""`hiveq up`: the whole stack in one command; Ctrl-C stops it and a second `up` loses nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from hiveq.cli.up import DEFAULT_REDIS_PORT, hiveq_command
from hiveq.queue.keys import Keyspace
from hiveq.server import free_port
from tests.cli.conftest import Hiveq, base_env, stop
from tests.support.waiting import wait_for


class Up:
    """A running `hiveq up`; its output is collected by a thread so the pipe never fills."""

    def __init__(
        self,
        data_dir: Path,
        api_port: int,
        redis_port: int | None,
        *extra: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`redis_port` None: up's own choice (6390 when free). `cwd`: where up runs and leaves
        .hiveq/stack.json (default: next to the data dir, never the repository)."""
        argv = [sys.executable, "-m", "hiveq", "up", "--workers", "1", "--port", str(api_port)]
        if redis_port is not None:
            argv += ["--redis-port", str(redis_port)]
        argv += ["--data-dir", str(data_dir), *extra]
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd or data_dir.parent,
            env=base_env(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self) -> None:
        banner_end = "Ctrl-C stops everything"  # the banner's last line
        wait_for(lambda: banner_end in self.output or self.proc.poll() is not None, 90, "hiveq up")
        assert self.proc.poll() is None, self.output

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the supervisor (a terminal sends it to the foreground process group)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code


@pytest.mark.slow
def test_up_interrupted_then_started_again_loses_no_job(tmp_path: Path) -> None:
    api_port, redis_port = free_port(), free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    keys = Keyspace("default", "dev")
    # Slow jobs and no shutdown grace: Ctrl-C hands running jobs back at once.
    env = {"HIVEQ_DEMO_DELAY": "1.5", "HIVEQ_SHUTDOWN_GRACE": "0"}
    first = Up(tmp_path / "data", api_port, redis_port, env=env)
    try:
        first.wait_up()
        assert f"http://127.0.0.1:{api_port}/dashboard/" in first.output and url in first.output
        cli = Hiveq(base_env(REDIS_URL=url))
        plans = [cli.json("submit", f"Build a user authentication system #{i}") for i in range(3)]
        jobs = [f"{p['task_id']}.{st['id']}" for p in plans for st in p["plan"]["subtasks"]]
        with Redis.from_url(url, decode_responses=True) as r:
            wait_for(lambda: "active" in [r.hget(keys.job(j), "state") for j in jobs], 60, "a running job")
        assert first.interrupt() == 0, first.output
    finally:
        stop(first.proc, signal.SIGKILL)
    kept = first.output.split("kept for the next start: ")[1].splitlines()[0]
    assert "waiting" in kept and "active" not in kept, first.output  # leases handed back, not lost
    assert first.output.rstrip().endswith("stopped")

    second = Up(tmp_path / "data", api_port, redis_port, env=env)
    try:
        second.wait_up()
        with Redis.from_url(url, decode_responses=True) as r:

            def all_succeeded() -> bool:
                return all(r.hget(keys.task(p["task_id"]), "status") == "succeeded" for p in plans)

            wait_for(all_succeeded, 90, "every task to succeed after the restart")
            for j in jobs:  # each job ran to success exactly once, across both runs
                log = [json.loads(e) for e in r.lrange(keys.job_log(j), 0, -1)]
                assert [e["to"] for e in log if e["type"] == "job"].count("succeeded") == 1, log
        assert second.interrupt() == 0, second.output
    finally:
        stop(second.proc, signal.SIGKILL)


@pytest.mark.slow
def test_up_reload_with_polling_restarts_api_and_workers_when_a_python_file_changes(tmp_path: Path) -> None:
    api_port = free_port()
    up = Up(tmp_path / "data", api_port, free_port(), "--reload", "--reload-poll", cwd=tmp_path)
    try:
        up.wait_up()
        wait_for(lambda: "reload: watching" in up.output, 30, "the file watcher")
        assert "(polling)" in up.output
        started = up.output.count("worker started")
        edits = iter(range(10**6))

        def edit_and_check() -> bool:
            # The watcher takes its first snapshot just after printing; keep editing until it
            # has seen a change, so an edit made before that snapshot cannot be missed.
            (tmp_path / "my_agents.py").write_text(f"VALUE = {next(edits)}\n")
            return "restarting API and workers" in up.output

        wait_for(edit_and_check, 30, "the reload")
        wait_for(lambda: up.output.count("worker started") > started, 60, "the worker to start again")
        wait_for(lambda: up.output.count("Uvicorn running") >= 2, 60, "the API to start again")
        assert up.interrupt() == 0, up.output
    finally:
        stop(up.proc, signal.SIGKILL)


@contextmanager
def port_taken(port: int) -> Iterator[None]:
    """Another tool listens on `port` (this test, or whoever already holds it)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            pass  # someone else holds it: taken all the same
        yield


def in_folder(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `hiveq` command in a second terminal opened in `folder`: no REDIS_URL, no HIVEQ_*."""
    return subprocess.run(
        [sys.executable, "-m", "hiveq", *args],
        cwd=folder,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_up_takes_a_free_port_when_6390_is_taken_and_commands_in_its_folder_find_its_stack(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    state_file = tmp_path / ".hiveq" / "stack.json"
    with port_taken(DEFAULT_REDIS_PORT):
        up = Up(tmp_path / "data", api_port, None, cwd=tmp_path)
        try:
            up.wait_up()
            state = json.loads(state_file.read_text())
            assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
            port = urlsplit(state["redis_url"]).port
            assert port is not None and port != DEFAULT_REDIS_PORT, state
            assert (state["pid"], state["api_url"], state["embedded"]) == (
                up.proc.pid,
                f"http://127.0.0.1:{api_port}",
                True,
            )
            assert f"Redis      {state['redis_url']}" in up.output

            # A task sent to up's API, then read by a second terminal without REDIS_URL.
            posted = httpx.post(f"http://127.0.0.1:{api_port}/tasks", json={"description": "from the API"})
            assert posted.status_code == 201, posted.text
            listed = in_folder(tmp_path, "tasks", "--json")
            assert listed.returncode == 0, listed.stderr
            assert posted.json()["task_id"] in [t["id"] for t in json.loads(listed.stdout)["items"]]
            assert listed.stderr.strip().splitlines() == [
                f"using the stack started by `hiveq up` in ./.hiveq (redis://127.0.0.1:{port}/0, "
                "namespace default:dev)"
            ]

            # The banner's command works as printed, in that folder, without REDIS_URL.
            lines = up.output.splitlines()
            printed = lines[next(i for i, ln in enumerate(lines) if ln.startswith("In another terminal")) + 1]
            assert printed.strip().endswith('submit "Build a user authentication system" --wait'), printed
            ran = subprocess.run(
                printed.strip(),
                shell=True,
                cwd=tmp_path,
                env=base_env(),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert ran.returncode == 0 and "4/4 subtasks succeeded" in ran.stdout, ran.stdout + ran.stderr
            assert "GET /tasks" not in up.output and "POST /tasks" not in up.output  # no access log
            assert up.interrupt() == 0, up.output
        finally:
            stop(up.proc, signal.SIGKILL)
    assert not state_file.exists()  # stopped: the next command in that folder no longer uses it


@pytest.mark.slow
def test_up_access_log_shows_requests_only_when_asked(tmp_path: Path) -> None:
    api_port = free_port()
    up = Up(tmp_path / "data", api_port, free_port(), "--access-log")
    try:
        up.wait_up()
        assert httpx.get(f"http://127.0.0.1:{api_port}/tasks").status_code == 200
        wait_for(lambda: '"GET /tasks HTTP/1.1" 200' in up.output, 30, "the access log line")
        assert up.interrupt() == 0, up.output
    finally:
        stop(up.proc, signal.SIGKILL)


def test_up_reload_without_watchfiles_says_how_to_install_it_before_starting_anything(tmp_path: Path) -> None:
    hidden = tmp_path / "no-watchfiles"
    hidden.mkdir()
    # Earlier on the path than the installed package: `import watchfiles` fails as if it were absent.
    (hidden / "watchfiles.py").write_text("raise ImportError('watchfiles hidden by the test')\n")
    env = base_env(PYTHONPATH=f"{hidden}{os.pathsep}{base_env()['PYTHONPATH']}")
    res = subprocess.run(
        [sys.executable, "-m", "hiveq", "up", "--reload", "--port", str(free_port()), "--data-dir", "data"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "--reload needs the watchfiles package" in line and 'pip install -e ".[reload]"' in line
    assert "hiveq is up" not in res.stdout and not (tmp_path / "data").exists()  # nothing started


def test_the_banner_prints_hiveq_as_a_new_terminal_in_this_folder_can_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = Path(sys.executable).with_name("hiveq")
    venv = script.parent.parent
    monkeypatch.chdir(venv.parent)  # where `python3 -m venv .venv` was run
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert hiveq_command() == f"{venv.name}/bin/hiveq"  # e.g. .venv/bin/hiveq, as the README says
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))  # activated here, but not in the next terminal
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert hiveq_command() == f"{venv.name}/bin/hiveq"
    monkeypatch.delenv("VIRTUAL_ENV")  # on PATH for every terminal (e.g. a pipx or system install)
    assert hiveq_command() == "hiveq"
