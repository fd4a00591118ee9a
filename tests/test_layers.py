"""The layers stay true: contract -> engine -> worker / API -> CLI (docs/architecture.md).

Read from the source (every `import` of every module, wherever it sits in the file) and checked
once more at run time for the two promises users feel: the SDK loads neither redis-py nor the
engine, and the engine never loads the agents.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "hiveq"
ENGINE = {
    "hiveq.queue",
    "hiveq.plan",
    "hiveq.submit",
    "hiveq.aggregate",
    "hiveq.diagnose",
    "hiveq.archive",
    "hiveq.schedule",
}
BASE = {"hiveq.contract", "hiveq.settings", "hiveq.logs"}
# part -> the parts it may import (besides itself). The CLI and the package face may use anything.
ALLOWED: dict[str, set[str]] = {
    "hiveq.contract": set(),
    "hiveq.settings": {"hiveq.contract"},
    "hiveq.logs": {"hiveq.contract"},
    "hiveq.server": {"hiveq.contract"},
    "hiveq.client": {"hiveq.contract"},
    "hiveq.dashboard": set(),
    **{part: BASE | ENGINE for part in ENGINE},
    "hiveq.agents": BASE,
    "hiveq.worker": BASE | ENGINE | {"hiveq.agents"},
    "hiveq.api": BASE | ENGINE | {"hiveq.dashboard"},
}


def part_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imports() -> dict[str, set[str]]:
    """module -> every hiveq module it imports."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        out[module] = {m for m in found if m == "hiveq" or m.startswith("hiveq.")}
    return out


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_layers_below_it(part: str) -> None:
    bad = [
        f"{module} imports {dep}"
        for module, deps in imports().items()
        if part_of(module) == part
        for dep in sorted(deps)
        if part_of(dep) != part and part_of(dep) not in ALLOWED[part]
    ]
    assert not bad, f"{part} may import only {sorted(ALLOWED[part])}: " + "; ".join(bad)


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement` (no test imports around)."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_sdk_loads_only_the_contract_and_httpx() -> None:
    loaded = loaded_after("import hiveq.client")
    assert "httpx" in loaded
    assert not {m for m in loaded if m == "redis" or m.startswith("redis.")}
    assert {m for m in loaded if m.startswith("hiveq.")} <= {"hiveq.client"} | {
        m for m in loaded if m.startswith("hiveq.contract")
    }


def test_the_engine_never_loads_the_agents_or_the_package_face_names() -> None:
    loaded = loaded_after("import hiveq.submit, hiveq.queue.maintain, hiveq.diagnose.doctor, hiveq.aggregate")
    assert not {m for m in loaded if m.startswith(("hiveq.agents", "hiveq.worker", "hiveq.client"))}
