"""`hiveq up`: the whole stack in one command; Ctrl-C stops it and a second `up` loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from redis import Redis

from hiveq.queue.keys import Keyspace
from hiveq.server import free_port
from tests.cli.conftest import ROOT, Hiveq, base_env, stop
from tests.support.waiting import wait_for


class Up:
    """A running `hiveq up`; its output is collected by a thread so the pipe never fills."""

    def __init__(
        self,
        data_dir: Path,
        api_port: int,
        redis_port: int,
        *extra: str,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
    ) -> None:
        argv = [
            sys.executable,
            "-m",
            "hiveq",
            "up",
            "--workers",
            "1",
            "--port",
            str(api_port),
            "--redis-port",
            str(redis_port),
            "--data-dir",
            str(data_dir),
            *extra,
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
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
