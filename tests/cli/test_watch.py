"""`hiveq watch` rides out a Redis blip (a restart with AOF) and follows the task to its end."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hiveq.server import ServerProcess
from tests.cli.conftest import Collected, Hiveq, base_env, stop
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_watch_reconnects_after_a_redis_restart_and_follows_the_task_to_its_final_event(
    private_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = private_server(persistent=True)  # AOF: the restarted server keeps jobs and events
    hq = Hiveq(base_env(REDIS_URL=srv.url, HIVEQ_APP="w" + secrets.token_hex(4), HIVEQ_ENV="test"))
    argv = [
        sys.executable,
        "-m",
        "hiveq",
        "worker",
        "--module",
        "tests.support.agents",
        "--agents",
        "t.sleep",
    ]
    gate = tmp_path / "gate"  # the jobs (plan -> execute -> review) start once it exists
    env = {"HIVEQ_TEST_SLEEP": "0.2", "HIVEQ_TEST_GATE": str(gate)}
    first = hq.spawn(argv, env)
    hq.wait_agent("t.sleep")  # known to the namespace, so submit accepts it
    stop(first)  # and gone again: the task waits until watch is following it
    worker: subprocess.Popen[str] | None = None
    watch: Collected | None = None
    try:
        task_id = hq.json("submit", "watch me through a restart", "--agent", "t.sleep")["task_id"]
        watch = Collected(
            subprocess.Popen(
                [sys.executable, "-m", "hiveq", "watch", task_id],
                env=hq.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
        w = watch
        wait_for(lambda: "hint: no live worker" in w.stderr, 30, "watch to follow the waiting task")
        worker = hq.spawn(argv, env)
        wait_for(lambda: "waiting -> active worker" in w.stdout, 30, "watch to show a claim")
        srv.stop()  # SIGTERM: the server writes its AOF and exits
        wait_for(lambda: "reconnecting" in w.stderr, 30, "watch to notice the outage")
        assert w.proc.poll() is None, w.stdout + w.stderr  # still watching, not exit 5
        srv.start()
        gate.touch()
        assert w.wait(90) == 0, w.stdout + w.stderr
    finally:
        if watch is not None:
            watch.close()
        if worker is not None:
            stop(worker)
    out, err = watch.stdout, watch.stderr
    assert f"Redis at {srv.url} is unreachable" in err and "Redis is back after" in err, err
    assert "review: active -> succeeded" in out and f"task {task_id}: running -> succeeded" in out, out
    assert "3/3 subtasks succeeded" in out.splitlines()[-1]
