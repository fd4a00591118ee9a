"""`hiveq up`: the whole stack in one command; Ctrl-C stops it and a second `up` loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hiveq.server import free_port
from tests.cli.conftest import ROOT, Hiveq, base_env, stop, wait_for


class Up:
    """A running `hiveq up`; its output is collected by a thread so the pipe never fills."""

    def __init__(self, data_dir: Path, api_port: int, redis_port: int, **env: str) -> None:
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
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=base_env(**env),
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
        wait_for(lambda: "hiveq is up" in self.output or self.proc.poll() is not None, 90, "hiveq up")
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
    cli = Hiveq(base_env(REDIS_URL=url))
    # Slow jobs and no shutdown grace: Ctrl-C hands running jobs back at once.
    env = {"HIVEQ_DEMO_DELAY": "1.5", "HIVEQ_SHUTDOWN_GRACE": "0"}
    first = Up(tmp_path / "data", api_port, redis_port, **env)
    try:
        first.wait_up()
        assert f"http://127.0.0.1:{api_port}/dashboard/" in first.output and url in first.output
        tasks = [cli.json("submit", f"Build a user authentication system #{i}")["task_id"] for i in range(3)]

        def some_running() -> bool:
            states = [s["state"] for t in tasks for s in cli.json("task", t)["subtasks"]]
            return "active" in states

        wait_for(some_running, 60, "a job to be running")
        assert first.interrupt() == 0, first.output
    finally:
        stop(first.proc, signal.SIGKILL)
    assert "stopped" in first.output and "kept for the next start" in first.output
    assert "active" not in first.output.split("kept for the next start")[1].splitlines()[0]

    second = Up(tmp_path / "data", api_port, redis_port, **env)
    try:
        second.wait_up()

        def all_done() -> list[dict[str, Any]] | None:
            views = [cli.json("task", t) for t in tasks]
            return views if all(v["status"] == "succeeded" for v in views) else None

        views = wait_for(all_done, 90, "every task to succeed after the restart")
        for v in views:
            for sub in v["subtasks"]:
                history = cli.json("trace", str(sub["job_id"]))["events"]
                assert [e["to"] for e in history].count("succeeded") == 1, json.dumps(history)
        assert second.interrupt() == 0, second.output
    finally:
        stop(second.proc, signal.SIGKILL)
