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
from hiveq.queue.registry import agent_module, list_workers
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


SCRIPT = Path(sys.executable).with_name("hiveq")  # the console script: no cwd on sys.path by itself
AGENT_MODULE = """
from hiveq import AgentContext, agent


@agent("here.echo")
async def echo(ctx: AgentContext) -> object:
    return ctx.input
"""


def env_without_pythonpath(broker: Broker, **extra: str) -> dict[str, str]:
    env = worker_env(broker.settings, **extra)
    env.pop("PYTHONPATH")
    return env


def spawn_script(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: install hiveq (pip install -e .)"
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(SCRIPT), *args], cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )


async def test_hiveq_agent_modules_imports_from_the_folder_the_worker_starts_in(
    broker: Broker, tmp_path: Path
) -> None:
    (tmp_path / "my_agents.py").write_text(AGENT_MODULE)
    env = env_without_pythonpath(broker, HIVEQ_AGENT_MODULES="my_agents")
    log = tmp_path / "worker.log"
    proc = spawn_script(["worker", "--agents", "here.echo"], tmp_path, env, log)
    try:

        async def registered() -> bool:
            return any("here.echo" in w.agents for w in await list_workers(broker)) or proc.poll() is not None

        await until(registered, 30, "the worker to register here.echo")
        assert proc.poll() is None, log.read_text()
    finally:
        assert stop_proc(proc) == 0
    assert await agent_module(broker, "here.echo") == "my_agents"  # what `hiveq why` will suggest


def test_a_missing_agent_module_is_one_line_naming_it_and_the_folder_searched(
    broker: Broker, tmp_path: Path
) -> None:
    out = subprocess.run(
        [str(SCRIPT), "worker", "--module", "my_agentz"],
        cwd=tmp_path,
        env=env_without_pythonpath(broker),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "'my_agentz'" in line and f"current directory {tmp_path}" in line and "my_agentz.py" in line
    assert "Traceback" not in out.stderr


def test_an_agent_module_that_raises_on_import_is_named_with_its_error(
    broker: Broker, tmp_path: Path
) -> None:
    (tmp_path / "broken_agents.py").write_text("import no_such_dependency_xyz\n")
    out = subprocess.run(
        [str(SCRIPT), "worker", "--module", "broken_agents"],
        cwd=tmp_path,
        env=env_without_pythonpath(broker),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "'broken_agents'" in line and "No module named 'no_such_dependency_xyz'" in line


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
