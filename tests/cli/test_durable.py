"""Durable agents from the command line: `hiveq why` says what a suspended job waits for,
`hiveq signal` ends the wait (or leaves the signal for a later one), `hiveq watch --output` prints
the streamed output live, `hiveq trace` shows the waits and signals."""

from __future__ import annotations

import json
import sys

import pytest

from tests.cli.conftest import Hiveq, WorkerFactory, stop
from tests.support.waiting import wait_for

SEED = "Build a user authentication system"


@pytest.mark.slow
def test_why_signal_watch_output_and_trace_follow_a_job_that_waits_for_a_person(
    hiveq: Hiveq, worker: WorkerFactory
) -> None:
    worker("--module", "tests.support.agents", "--agents", "t.approval")
    hiveq.wait_agent("t.approval")
    sub = hiveq("submit", SEED, "--agent", "t.approval", "--json")
    assert sub.returncode == 0, sub.stderr
    task = json.loads(sub.stdout)["task_id"]
    watch = hiveq.spawn([sys.executable, "-m", "hiveq", "watch", task, "--output"])
    for later in ("implement", "test", "document"):  # blocked for now: each signal is kept for it
        kept = hiveq("signal", f"{task}.{later}", "approval", "--data", f'"for {later}"')
        assert kept.returncode == 0 and "kept (1 waiting) until the job waits for it" in kept.stdout, kept

    def suspended() -> str | None:
        answer = hiveq.json("why", f"{task}.design")
        return answer["summary"] if answer["state"] == "suspended" else None

    why = wait_for(suspended, 30, "design to wait for its approval")
    assert "waiting for signal 'approval'" in why and f"hiveq signal {task}.design approval" in why
    sent = hiveq("signal", f"{task}.design", "approval", "--data", '{"ok": 1}')
    assert sent.returncode == 0 and "delivered; the job resumes" in sent.stdout, sent
    try:
        out, _ = watch.communicate(timeout=60)  # it ends by itself when the task has finished
    finally:
        stop(watch)
    assert watch.returncode == 0, out
    assert "design: signal approval from the CLI" in out and "the job resumes" in out
    assert "got {'ok': 1}\n" in out and "got 'for document'\n" in out  # the streamed output, live
    assert out.count("asking\n") == 4  # the resumed design replays its wait: nothing emitted twice
    assert "implement: waiting -> active" in out and "4/4 subtasks succeeded" in out
    trace = hiveq("trace", f"{task}.design")
    assert trace.returncode == 0, trace.stderr
    assert "active -> suspended" in trace.stdout and "waiting for signal approval" in trace.stdout
    assert "signal approval" in trace.stdout and "suspended -> waiting" in trace.stdout
    bad = hiveq("signal", f"{task}.design", "approval", "--data", "{nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--data" in bad.stderr
    finished = hiveq("signal", f"{task}.design", "approval")
    assert finished.returncode == 4 and "has finished" in finished.stderr
