"""The examples are files that run, and the README quotes them as they are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "durable_report.py"


@pytest.mark.slow
def test_the_durable_report_example_spawns_waits_for_approval_and_streams_its_report() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVEQ_", "REDIS_URL"))}
    res = subprocess.run(
        [sys.executable, str(EXAMPLE), "vector databases", "--approve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    lines = out.splitlines()
    researched = [line for line in lines if line.startswith("researching: ")]
    assert len(researched) == 3  # three researchers, spawned at run time, each once
    ready = lines.index("3 findings ready; waiting for approval")
    sent = lines.index("[approval sent: the planner resumes]")
    report = lines.index("# vector databases")
    assert max(lines.index(r) for r in researched) < ready < sent < report  # streamed in order
    assert [line for line in lines[report + 1 :] if line.startswith("- ")][:1] == [
        "- What is vector databases? (offline stand-in) notes on 'What is vector databases?'"
    ]
    assert "succeeded: 4/4 subtasks succeeded" in out and "published, approved by --approve" in out


def test_the_readme_quotes_the_durable_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n# examples/durable_report.py\n(.*?)```", readme, flags=re.S)
    source = EXAMPLE.read_text()
    for block in code.split("\n...\n"):
        assert block.strip() in source, block
