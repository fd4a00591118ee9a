"""The real `hiveq` command in subprocesses, with real worker processes, against a real server."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys

import pytest
from redis.asyncio import Redis

from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from tests.cli.conftest import ROOT, Collected, Hiveq, WorkerFactory
from tests.support.waiting import wait_for

SEED = "Build a user authentication system"
SUBTASKS = ("design", "implement", "test", "document")


@pytest.mark.slow
def test_submit_wait_shows_progress_exits_0_and_trace_names_the_worker_that_ran_each_job(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker()
    res = hiveq("submit", SEED, "--priority", "1", "--wait")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for sub in SUBTASKS:  # in a pipe: one line per transition
        assert f"{sub}: waiting -> active worker" in out
        assert f"{sub}: active -> succeeded" in out
    assert "Who ran what" in out
    assert "4/4 subtasks succeeded" in out.splitlines()[-1]
    task_id = out.split()[1]

    (w,) = hiveq.json("workers")["workers"]
    trace = hiveq("trace", f"{task_id}.design")
    assert trace.returncode == 0, trace.stderr
    assert "new -> waiting" in trace.stdout and "enqueued by hiveq:" in trace.stdout
    active = next(line for line in trace.stdout.splitlines() if "waiting -> active" in line)
    for field in (w["id"], w["host"], str(w["pid"]), w["client"]):
        assert field in active, (field, active)
    history = [e for e in hiveq.json("trace", f"{task_id}.design")["events"] if e["type"] == "job"]
    assert [e["to"] for e in history] == ["waiting", "active", "succeeded"]
    assert {history[1]["worker"], history[2]["worker"]} == {w["id"]}


@pytest.mark.slow
def test_submit_wait_exits_1_and_shows_the_dead_letter_when_the_task_fails(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker("--module", "tests.cli.agents")
    hiveq.wait_agent("always_fails")
    res = hiveq("submit", SEED, "--agent", "always_fails", "--wait", env={"HIVEQ_MAX_ATTEMPTS": "1"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "design: active -> dead" in res.stdout and "always_fails refuses design" in res.stdout
    assert "implement: blocked -> cancelled" in res.stdout
    assert "failed" in res.stdout.splitlines()[-1]
    (dead,) = hiveq.json("dlq", "list")["items"]
    assert dead["subtask_id"] == "design"
    purged = hiveq("dlq", "purge", dead["id"])
    assert purged.returncode == 0, purged.stderr


@pytest.mark.slow
def test_trace_and_dlq_list_show_the_agent_traceback_of_each_failed_attempt(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker("--module", "tests.cli.agents", env={"HIVEQ_BACKOFF_BASE": "0.01"})
    hiveq.wait_agent("always_fails")
    res = hiveq("submit", "two tries", "--agent", "always_fails", "--wait", env={"HIVEQ_MAX_ATTEMPTS": "2"})
    assert res.returncode == 1, res.stdout + res.stderr
    (dead,) = hiveq.json("dlq", "list")["items"]
    (last,) = dead["tracebacks"]  # the dead-letter list carries the last attempt's traceback
    assert (last["attempt"], last["failure"]) == (2, 2)

    trace = hiveq("trace", dead["id"])
    assert trace.returncode == 0, trace.stderr
    out = trace.stdout
    assert "agent tracebacks (the last 2 failed attempts kept)" in out
    assert "attempt 1 (failure 1)" in out and "attempt 2 (failure 2)" in out
    assert out.count("Traceback (most recent call last):") == 2
    assert out.count('tests/cli/agents.py", line') == 2 and "in always_fails" in out
    assert out.count(f"RuntimeError: always_fails refuses {dead['subtask_id']} (test agent)") >= 2
    assert [t["failure"] for t in hiveq.json("trace", dead["id"])["job"]["tracebacks"]] == [1, 2]
    source = (ROOT / "tests" / "cli" / "agents.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "raise RuntimeError" in text)
    listed = hiveq("dlq", "list").stdout
    assert f"agents.py:{line} in always_fails" in listed, listed


def test_errors_are_one_line_without_a_traceback_and_the_exit_code_says_why(hiveq: Hiveq) -> None:
    cases: list[tuple[tuple[str, ...], dict[str, str], int, str]] = [
        (("task", "tnope"), {}, 3, "unknown task id 'tnope'"),
        (
            ("tasks",),
            {"REDIS_URL": "redis://127.0.0.1:1/0"},
            5,
            "Redis at redis://127.0.0.1:1/0 is unreachable",
        ),
        (("tasks",), {"REDIS_URL": "http://localhost"}, 2, "REDIS_URL='http://localhost' is not a Redis URL"),
        (("submit", "   "), {}, 2, "description: must not be empty"),
        (("tasks", "--limit", "x"), {}, 2, "Invalid value for '--limit'"),
    ]
    for args, env, code, message in cases:
        res = hiveq(*args, env=env)
        assert res.returncode == code, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, res.stderr)
        assert "Traceback" not in res.stdout + res.stderr
    debug = hiveq("--debug", "task", "tnope")
    assert debug.returncode == 3 and "Traceback" in debug.stderr and "unknown task id" in debug.stderr


def follow_until_hint(hiveq: Hiveq, *args: str, env: dict[str, str]) -> Collected:
    """Start a command that waits on a task; return once it printed its hint (then it is stopped)."""
    proc = Collected(
        subprocess.Popen(
            [sys.executable, "-m", "hiveq", *args],
            env={**hiveq.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    )
    try:
        wait_for(lambda: "hint:" in proc.stderr or proc.proc.poll() is not None, 60, "the hint")
        assert proc.proc.poll() is None, proc.stdout + proc.stderr  # still waiting: nothing runs it
    finally:
        proc.close()
    return proc


@pytest.mark.slow
def test_a_wrong_namespace_without_workers_hints_at_the_live_workers_of_the_right_one(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker()
    hiveq.wait_agent("demo")
    right_app = hiveq.env["HIVEQ_APP"]
    wrong = {"HIVEQ_APP": "shop" + secrets.token_hex(3)}
    try:
        waiting = follow_until_hint(hiveq, "submit", SEED, "--wait", env=wrong)
        task_id = waiting.stdout.split()[1]
        (hint,) = [line for line in waiting.stderr.splitlines() if line.startswith("hint:")]
        assert f"no live worker in namespace {wrong['HIVEQ_APP']}:test serves agent(s) demo" in hint
        assert f"{right_app}:test (1 worker(s) serving demo, llm)" in hint
        assert f"set HIVEQ_APP={right_app} HIVEQ_ENV=test" in hint

        watching = follow_until_hint(hiveq, "watch", task_id, env=wrong)
        assert f"{right_app}:test (1 worker(s)" in watching.stderr

        res = hiveq("why", f"{task_id}.design", env=wrong)
        assert res.returncode == 0, res.stderr
        assert "start one with `hiveq worker --agents demo`" in res.stdout
        assert f"If you meant {right_app}:test, set HIVEQ_APP={right_app}" in res.stdout
    finally:
        asyncio.run(purge(hiveq.env["REDIS_URL"], Keyspace(wrong["HIVEQ_APP"], "test")))


async def purge(url: str, keys: Keyspace) -> None:
    r = Redis.from_url(url, decode_responses=True)
    await purge_namespace(r, keys)
    await r.aclose()
