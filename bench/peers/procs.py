"""Processes of the peer benchmark: per-system virtualenvs, one-phase runs of side.py, and worker
processes that are always stopped (timeout, error, Ctrl-C) before the driver goes on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
REQUIREMENTS = HERE / "requirements"
STOP_GRACE_S = 15.0


@dataclass
class System:
    """One measured system: its adapter module and the interpreter of its virtualenv."""

    name: str
    python: Path
    env: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # side.py's `describe` answer

    @property
    def module(self) -> str:
        return f"{self.name}_peer"


def ensure_venv(name: str) -> Path:
    """The peer's virtualenv under .venvs/, (re)installed when its pinned requirements changed."""
    req = REQUIREMENTS / f"{name}.txt"
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / "installed-requirements.txt"
    if python.exists() and marker.exists() and marker.read_text() == req.read_text():
        return python
    print(f"setting up {venv.relative_to(HERE.parent.parent)} from {req.name} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(req)]
    subprocess.run(pip, check=True)
    marker.write_text(req.read_text())
    return python


def child_env(system: System, base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVEQ_", "REDIS_URL", "PEERS_"))}
    return {**env, **base, **system.env, "PYTHONPATH": str(HERE)}


def side(system: System, env: dict[str, str], phase: str, jobs: int, samples: int = 0) -> dict[str, Any]:
    """Run one phase in the system's interpreter; its last stdout line is the JSON answer."""
    timeout = 120 + jobs / 200 + samples * 0.5
    args = [str(system.python), str(HERE / "side.py"), system.module, phase, str(jobs), str(samples)]
    done = subprocess.run(args, env=env, cwd=HERE, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{system.name} {phase} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> dict[int, str | None]:
    """Every live descendant (pid -> start time), to kill stragglers that left the group."""
    found: dict[int, str | None] = {}
    todo = [pid]
    while todo and len(found) < 1000:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in map(int, task.read_text().split()):
                    if child not in found:
                        found[child] = _start_time(child)
                        todo.append(child)
    return found


class Workers:
    """A system's worker commands, each in its own session, logs to one file."""

    def __init__(self, system: System, env: dict[str, str], argvs: list[list[str]], log: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = log
        bindir = system.python.parent
        try:
            with open(log, "ab") as out:
                for argv in argvs:
                    exe = bindir / argv[0]
                    cmd = [str(exe) if exe.exists() else argv[0], *argv[1:]]
                    self.procs.append(
                        subprocess.Popen(
                            cmd, env=env, cwd=HERE, stdout=out, stderr=out, start_new_session=True
                        )
                    )
        except BaseException:
            self.stop()
            raise

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {p.args[0]} exited with {p.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to each worker's process group, SIGKILL after a grace, then any straggler."""
        stragglers: dict[int, str | None] = {}
        for p in self.procs:
            if p.poll() is None:
                stragglers |= _descendants(p.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for pid, started in stragglers.items():
            if started is not None and _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.procs = []

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
