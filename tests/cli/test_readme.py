"""The README's agent example is code that runs: `hiveq worker --module my_agents`, started in the
folder that holds it (as the README says, with no PYTHONPATH), loads it and runs a task with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, Hiveq, WorkerFactory


@pytest.mark.slow
def test_the_readme_agent_example_runs_a_task_to_success(
    hiveq: Hiveq, worker: WorkerFactory, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n# my_agents.py\n(.*?)```", readme, flags=re.S)
    (tmp_path / "my_agents.py").write_text(code)
    # The console script, in the agent's folder; tmp_path is not on PYTHONPATH.
    worker("--module", "my_agents", cwd=tmp_path, script=True)
    hiveq.wait_agent("summarise")
    res = hiveq("submit", "Build a user authentication system", "--agent", "summarise", "--wait")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "design: 10% reading" in res.stdout and "4/4 subtasks succeeded" in res.stdout
    assert "canned" not in res.stdout  # only the demo agent's results are called canned
    document = next(line for line in res.stdout.splitlines() if line.startswith("✔ Document"))
    assert "document after ['test']: Build a user authentication system; input {" in document
