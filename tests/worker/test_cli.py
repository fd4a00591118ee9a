"""`hiveq worker` and `python -m hiveq.worker`: options reach the worker; bad ones fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiveq.contract.states import JobState
from hiveq.logs import bound_logger, setup_logging
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from tests.support.waiting import until
from tests.support.worker import ROOT, spawn_worker, stop_proc, submit, worker_env


def test_unknown_agent_is_a_configuration_error_naming_it(broker: Broker) -> None:
    env = worker_env(broker.settings)
    out = subprocess.run(
        [sys.executable, "-m", "hiveq", "worker", "--agents", "t.nope", "--module", "tests.support.agents"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "'t.nope'" in out.stderr and "--module" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
async def test_worker_log_lines_name_job_task_agent_attempt_worker(broker: Broker, tmp_path: Path) -> None:
    enq = await submit(broker, "t.flaky", [{}], max_attempts=1)
    log = tmp_path / "w.log"
    proc = spawn_worker(broker.settings, "t.flaky", log=log)
    try:

        async def dead() -> bool:
            return (await inspect.get_job(broker, enq.job_ids[0])).state == JobState.DEAD

        await until(dead, 30, "the job to fail")
    finally:
        assert stop_proc(proc) == 0
    text = log.read_text()
    assert "agent raised RuntimeError" in text
    line = next(ln for ln in text.splitlines() if "agent raised" in ln)
    for field in (f"job={enq.job_ids[0]}", f"task={enq.task_id}", "agent=t.flaky", "attempt=1", "worker="):
        assert field in line


def test_json_log_lines_carry_the_bound_fields(capsys: pytest.CaptureFixture[str]) -> None:
    import sys as _sys

    setup_logging("info", "json", stream=_sys.stderr)
    try:
        bound_logger("hiveq.test", worker_id="w1").bind(
            job_id="t1.a", task_id="t1", agent="demo", attempt=2
        ).info("hello %s", "there")
    finally:
        setup_logging("warning", "text", stream=_sys.stderr)
    row = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert row["msg"] == "hello there" and row["level"] == "info"
    assert (row["worker_id"], row["job_id"], row["task_id"], row["agent"], row["attempt"]) == (
        "w1",
        "t1.a",
        "t1",
        "demo",
        2,
    )
