"""`hiveq demo`: the README's first command runs the seed task end to end and stops."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.cli.conftest import ROOT, base_env


@pytest.mark.slow
def test_demo_runs_the_seed_task_to_completion_and_prints_who_ran_what() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hiveq", "demo", "--workers", "2"],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "Build a user authentication system" in out
    for sub in ("design", "implement", "test", "document"):
        assert f"{sub}: waiting -> active worker" in out  # the live view, one line per transition
        assert re.search(rf"│ {sub}\s+│ demo\s+│ succeeded\s+│\s+1 │ \S+\s+│ \S+\s+│\s+\d+ │", out), out
    assert "4/4 subtasks succeeded" in out
    assert "note: 4 of these results are canned, not real work: produced by hiveq's built-in demo" in out
    assert out.rstrip().endswith("demo finished; the stack is stopped")
    assert "Traceback" not in out + res.stderr
